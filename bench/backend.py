"""Batched, length-sorted generation vs one prompt at a time, same prompts, same model.

Baseline: the same TransformersBackend with batch_size=1 (what a naive loop over prompts does).
Goal: throughput ratio >= 4x. Prints JSON.
"""

from __future__ import annotations

import argparse

from common import best_of, emit, tiny_model

from in2x_cli.backends import SamplingParams, load_backend
from in2x_cli.tiny import load_corpus


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    model = tiny_model()
    rows = load_corpus("parallel")
    convs = []
    for i in range(args.prompts):
        r = rows[i % len(rows)]
        text = " ".join([r["en"]] * (1 + i % 4))  # mixed prompt lengths
        convs.append([{"role": "user", "content": f"Translate into Japanese:\n{text}"}])
    params = SamplingParams(n=1, temperature=0.7, max_tokens=args.max_tokens, seed=0)
    batched = load_backend("transformers", str(model), batch_size=args.batch_size)
    single = load_backend("transformers", str(model), batch_size=1)
    out = batched.chat(convs, params)
    tokens = sum(len(c[0].token_ids) for c in out)
    t_batched = best_of(lambda: batched.chat(convs, params), repeats=2)
    t_single = best_of(lambda: single.chat(convs, params), repeats=1)
    emit(
        {
            "bench": "backend",
            "what": "transformers backend generation throughput, tiny Qwen2 model",
            "baseline": "same backend, one prompt at a time (batch_size=1)",
            "prompts": args.prompts,
            "max_tokens": args.max_tokens,
            "generated_tokens": tokens,
            "batched_seconds": round(t_batched, 3),
            "one_at_a_time_seconds": round(t_single, 3),
            "ratio": round(t_single / t_batched, 2),
            "goal": ">= 4.0",
        }
    )


if __name__ == "__main__":
    main()
