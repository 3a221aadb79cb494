"""`in2x sft` (packed, and unpacked) vs a TRL SFTTrainer script (unpacked), each run the way a
user runs it: ``in2x sft DATA -m MODEL ...`` as a subprocess, and ``python trl_sft.py`` (SFTTrainer
+ SFTConfig on the same conversations) as a subprocess. Tiny model, CPU, one epoch, same data,
same per-step budget of 8 × ``--max-length`` positions, same learning rate and schedule, same
torch threads (``--threads``, 1 by default: steadier on a shared machine).

Throughput = real (non-padding) tokens of the epoch (conversation lengths cut at --max-length,
the same for all runs) / the trainer's own training-loop time (``train_runtime``: in2x's
metrics.jsonl, TRL's ``trainer.train()`` metrics); the process wall time (imports, model load,
tokenisation, saving included) is reported next to it. Runs alternate ``--repeats`` times, best of
each. TRL trains on every token (its default for "messages" data without generation tags) while
in2x masks to assistant tokens: the loss mask does not change the compute.
Goal (issue 5/19): in2x packed >= 1.8x TRL unpacked.

Usage: python bench/train.py [--quick] [--conversations 160] [--max-length 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, emit, tiny_model  # noqa: E402  (bench/common.py sets sys.path and offline env)


def mixed_length_chats(n: int, seed: int = 0) -> list[dict]:
    """Conversations whose assistant turn concatenates k corpus responses, k log-uniform in 1..32:
    lengths spread log-uniformly from ~50 to ~2,000 tokens, like SFT data that mixes short answers
    with document-level translations (the paper's SFT mix)."""
    from in2x_cli.tiny import load_corpus

    pool = load_corpus("instructions")
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        k = min(32, int(2 ** rng.uniform(0, 5)))
        parts = rng.sample(pool, k)
        rows.append(
            {
                "id": f"b{i}",
                "lang": parts[0]["lang"],
                "messages": [
                    {"role": "user", "content": parts[0]["instruction"]},
                    {"role": "assistant", "content": "\n".join(p["response"] for p in parts)},
                ],
            }
        )
    return rows


TRL_SFT = r"""
import json, sys, torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
model_dir, data, out, max_length, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
rows = [{"messages": json.loads(l)["messages"]} for l in open(data, encoding="utf-8")]
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
cfg = SFTConfig(output_dir=out, max_length=max_length, packing=False, per_device_train_batch_size=8, num_train_epochs=1,
                learning_rate=1e-3, lr_scheduler_type="cosine", warmup_steps=0.03, use_cpu=True, report_to="none",
                save_strategy="no", seed=0, logging_steps=10, disable_tqdm=True)
trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok)
metrics = trainer.train().metrics
trainer.save_model(out)
print(json.dumps({"train_runtime": metrics["train_runtime"], "steps": trainer.state.global_step}))
"""


def run_in2x(model: Path, data: Path, out: Path, *, packing: bool, max_length: int, env: dict) -> dict:
    from in2x_cli.train.rundir import read_metrics

    cmd = [sys.executable, "-m", "in2x_cli", "-q", "sft", str(data), "-m", str(model), "-o", str(out), "--overwrite",
           "--packing" if packing else "--no-packing", "--max-length", str(max_length), "--batch-size", "8", "--lr", "1e-3",
           "--lr-scheduler-type", "cosine", "--warmup-steps", "0.03", "--epochs", "1", "--seed", "0", "--save-steps", "1000000",
           "--logging-steps", "10", "--report-to", "none", "--device", "cpu"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"in2x sft failed:\n{proc.stderr[-2000:]}")
    final = [r for r in read_metrics(out) if "train_runtime" in r and "loss" not in r][-1]
    return {"train_seconds": final["train_runtime"], "process_seconds": wall}


def run_trl(model: Path, data: Path, out: Path, *, max_length: int, threads: int, env: dict) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", TRL_SFT, str(model), str(data), str(out), str(max_length), str(threads)],
                          capture_output=True, text=True, env=env, cwd=str(REPO))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"TRL SFTTrainer script failed:\n{proc.stderr[-2000:]}")
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"train_seconds": doc["train_runtime"], "process_seconds": wall, "steps": doc["steps"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=160)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="--conversations 48 --max-length 512 --repeats 1")
    args = ap.parse_args()
    if args.quick:
        args.conversations, args.max_length, args.repeats = 48, 512, 1
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(args.threads), "IN2X_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"}

    model = tiny_model()
    work = Path(tempfile.mkdtemp(prefix="in2x-bench-train-"))
    rows = mixed_length_chats(args.conversations)
    data = work / "chat.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model))
    conv_lengths = [len(tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"]) for r in rows]
    real_tokens = sum(min(n, args.max_length) for n in conv_lengths)
    lengths = sorted(conv_lengths)

    kinds = {
        "trl_unpacked": lambda i: run_trl(model, data, work / f"trl{i}", max_length=args.max_length, threads=args.threads, env=env),
        "in2x_unpacked": lambda i: run_in2x(model, data, work / f"unpacked{i}", packing=False, max_length=args.max_length, env=env),
        "in2x_packed": lambda i: run_in2x(model, data, work / f"packed{i}", packing=True, max_length=args.max_length, env=env),
    }
    all_runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for i in range(args.repeats):
        for k, fn in kinds.items():
            all_runs[k].append(fn(i))
    best = {}
    for k, runs in all_runs.items():
        b = min(runs, key=lambda r: r["train_seconds"])
        best[k] = {
            **{key: round(v, 2) for key, v in b.items()},
            "tokens_per_second": round(real_tokens / b["train_seconds"], 1),
            "tokens_per_process_second": round(real_tokens / min(r["process_seconds"] for r in runs), 1),
            "all_train_seconds": [round(r["train_seconds"], 2) for r in runs],
        }
    emit(
        {
            "bench": "train",
            "what": "SFT one epoch, tiny model, CPU: in2x sft (CLI) vs a TRL SFTTrainer script, real tokens/s",
            "baseline": "TRL SFTTrainer (unpacked, right-padded batches of 8) run as a script",
            "torch_threads": args.threads,
            "repeats": args.repeats,
            "conversations": len(rows),
            "max_length": args.max_length,
            "real_tokens": real_tokens,
            "conversation_tokens": {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1], "total": sum(lengths)},
            **best,
            "speedup_vs_trl": round(best["in2x_packed"]["tokens_per_second"] / best["trl_unpacked"]["tokens_per_second"], 3),
            "unpacked_ratio_in2x_over_trl": round(best["in2x_unpacked"]["tokens_per_second"] / best["trl_unpacked"]["tokens_per_second"], 3),
            "speedup_vs_trl_process_wall": round(best["in2x_packed"]["tokens_per_process_second"] / best["trl_unpacked"]["tokens_per_process_second"], 3),
            "goal": "speedup_vs_trl >= 1.8",
        }
    )


if __name__ == "__main__":
    main()
