"""``in2x synthesize`` throughput: batched backend calls vs one request at a time.

The same pipeline (answer mode with the critic: answer, critic answer, critic verdict, and a
verdict retry where the reply holds no JSON) over the same instructions from the bundled corpus,
with the tiny model. Baseline: --batch-size 1 (one request per backend call, what a loop over rows
does). Both runs must produce identical rows (per-request seeds). Prints JSON with requests/s.
"""

from __future__ import annotations

import argparse
import time

from common import emit, tiny_model

from in2x_cli.backends import load_backend
from in2x_cli.io.jsonl import Line
from in2x_cli.prompts import synthesize_prompts
from in2x_cli.synth.config import SynthConfig
from in2x_cli.synth.pipeline import Synthesizer
from in2x_cli.synth.schedule import BlockRunner
from in2x_cli.tiny import load_corpus


def run_once(
    model: str, backend, lines: list[Line], batch_size: int, args: argparse.Namespace
) -> tuple[list[dict], int, float]:
    cfg = SynthConfig(
        mode="answer",
        model=model,
        input="bench",
        batch_size=batch_size,
        critic_model=model if args.critic else None,
        answer_temperature=0.7,
        answer_max_tokens=args.max_tokens,
        judge_max_tokens=args.max_tokens,
    )
    synth = Synthesizer(cfg, backend, synthesize_prompts(), critic=backend if args.critic else None)
    rows: list[dict] = []
    t0 = time.perf_counter()
    BlockRunner(synth).run_blocks(lines=lines, write=lambda c: rows.append(synth.row(c)))
    return rows, synth.stats.backend_requests, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--train-steps",
        type=int,
        default=60,
        help="warm-up steps for the tiny model (0 = random weights: every reply hits --max-tokens)",
    )
    ap.add_argument("--no-critic", dest="critic", action="store_false")
    args = ap.parse_args()
    model = str(tiny_model(args.train_steps))
    corpus = load_corpus("instructions")
    lines = [Line("bench", i + 1, corpus[(i * 7) % len(corpus)]) for i in range(args.rows)]  # mixed zh/en/ja
    batched = load_backend("transformers", model, batch_size=args.batch_size)
    single = load_backend("transformers", model, batch_size=1)
    run_once(model, batched, lines[:4], args.batch_size, args)  # warm-up (first-call allocations)
    rows_b, req_b, t_b = min(
        (run_once(model, batched, lines, args.batch_size, args) for _ in range(2)), key=lambda r: r[2]
    )
    rows_1, req_1, t_1 = run_once(model, single, lines, 1, args)
    assert rows_b == rows_1, "batched and one-at-a-time runs must give the same rows"
    assert req_b == req_1
    emit(
        {
            "bench": "synthesize",
            "what": "in2x synthesize answer"
            + (" + critic" if args.critic else "")
            + ", tiny Qwen2 model, CPU",
            "baseline": "same pipeline, one request per backend call (--batch-size 1)",
            "rows": args.rows,
            "requests": req_b,
            "max_tokens": args.max_tokens,
            "train_steps": args.train_steps,
            "batch_size": args.batch_size,
            "batched_seconds": round(t_b, 3),
            "one_at_a_time_seconds": round(t_1, 3),
            "batched_requests_per_s": round(req_b / t_b, 1),
            "one_at_a_time_requests_per_s": round(req_1 / t_1, 1),
            "ratio": round(t_1 / t_b, 2),
            "identical_rows": True,
        }
    )


if __name__ == "__main__":
    main()
