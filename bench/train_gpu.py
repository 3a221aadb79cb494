"""GPU check for issue 5: ``in2x sft`` throughput and MFU on a randomly initialised
Qwen2.5-0.5B-shaped model in bf16 (goal: MFU ≥ 40 % on an H100). Needs no weights and no hub.

What it does
    1. writes a model directory with a Qwen2.5-0.5B config (hidden 896, 24 layers, 14 heads,
       2 KV heads, FFN 4864, vocab 151,936, tied embeddings) and the tiny byte-level tokenizer
       (its ids are < 1,000, a subset of the vocabulary; the LM head still costs the full 151,936);
    2. writes packed-length chat data (mixed-length conversations from the bundled corpus);
    3. runs the real command in a subprocess:
       ``in2x sft chat.jsonl --model cfg --random-init --precision bf16 --max-length 4096
       --batch-size 4 --max-steps 40 --attn-implementation sdpa --logging-steps 5 --report-to none``
    4. reads ``metrics.jsonl`` and reports the median ``tokens_per_second`` and ``mfu`` over the
       logged steps after the first 10 (warm-up), with the device name, as JSON.

MFU = tokens/s · (6N + 12·L·d·T) / peak bf16 FLOP/s (see ``in2x_cli.train.common.flops_per_token``;
H100 SXM peak 989.4 TFLOP/s dense).

Running it on the device machine (its image has torch + transformers, not TRL): carry wheels::

    .venv/bin/pip download trl==1.16.0 --no-deps -d wheels/      # here (also peft/datasets if absent)
    # on the device, from the repo root:
    pip install --no-deps wheels/*.whl && python bench/train_gpu.py

Usage: python bench/train_gpu.py [--steps 40] [--max-length 4096] [--batch-size 4] [--attn sdpa]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, emit  # noqa: E402

QWEN25_05B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "vocab_size": 151936,
    "hidden_act": "silu",
    "dtype": "bfloat16",
    "use_cache": True,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--max-length", type=int, default=4096)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    args = ap.parse_args()

    missing = [m for m in ("torch", "transformers", "trl", "accelerate", "datasets", "peft") if _missing(m)]
    if missing:
        print(f"missing packages: {', '.join(missing)} (carry wheels, see the docstring)", file=sys.stderr)
        return 2
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark only runs on a GPU machine", file=sys.stderr)
        return 2

    from in2x_cli.tiny import build_tokenizer

    work = Path(tempfile.mkdtemp(prefix="in2x-gpu-"))
    model_dir = work / "qwen25-05b-shape"
    model_dir.mkdir()
    tok = build_tokenizer()
    tok.save_pretrained(str(model_dir))
    cfg = dict(QWEN25_05B, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id)
    (model_dir / "config.json").write_text(json.dumps(cfg, indent=2))

    sys.path.insert(0, str(REPO / "bench"))
    from train import mixed_length_chats

    # enough conversations for steps x batch rows of max_length tokens (~300 tokens each on average)
    n = max(400, args.steps * args.batch_size * args.max_length // 250)
    data = work / "chat.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mixed_length_chats(n)), encoding="utf-8")

    out = work / "run"
    cmd = [
        sys.executable, "-m", "in2x_cli", "sft", str(data), "--model", str(model_dir), "--random-init",
        "--output", str(out), "--precision", "bf16", "--device", "cuda", "--max-length", str(args.max_length),
        "--batch-size", str(args.batch_size), "--max-steps", str(args.steps), "--epochs", "1",
        "--attn-implementation", args.attn, "--logging-steps", "5", "--save-steps", str(10**6),
        "--report-to", "none", "--lr", "1e-4",
    ]  # fmt: skip
    if args.gradient_checkpointing:
        cmd.append("--gradient-checkpointing")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "IN2X_NO_PROGRESS": "1"}
    proc = subprocess.run(cmd, env=env, cwd=str(REPO), capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        return proc.returncode

    from in2x_cli.train.common import read_metrics

    rows = [r for r in read_metrics(out) if "loss" in r and r["step"] > 10]
    tps = [r["tokens_per_second"] for r in rows if "tokens_per_second" in r]
    mfus = [r["mfu"] for r in rows if "mfu" in r]
    emit(
        {
            "benchmark": "in2x sft throughput, random-init Qwen2.5-0.5B shape, bf16",
            "command": " ".join(cmd[1:]),
            "device": torch.cuda.get_device_name(0),
            "steps": args.steps,
            "tokens_per_step": args.batch_size * args.max_length,
            "tokens_per_second_median": statistics.median(tps) if tps else None,
            "mfu_median": statistics.median(mfus) if mfus else None,
            "goal_mfu": 0.40,
            "logged_rows": rows,
        }
    )
    return 0


def _missing(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return True
    return False


if __name__ == "__main__":
    sys.exit(main())
