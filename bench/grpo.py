"""`in2x grpo` (TIC-GRPO) vs a TRL GRPOTrainer script, each run the way a user runs it: ``in2x grpo
PROMPTS -m MODEL -r grpo:favour_the ...`` as a subprocess, and ``python trl_grpo.py``
(GRPOTrainer + GRPOConfig with the same batch plan) as a subprocess.

Both get the same tiny model, prompts, reward function (``favour_the`` below, imported by both
from this file), batch plan (off-policy: rollout batch 8 prompts, minibatch 4: two updates per
rollout batch, so both compute π_old), generation length, entropy bonus, learning rate and seed;
the difference is the trainer (in2x's: trajectory ratio, dual clip, length-corrected advantages,
extra metrics; TRL's: loss_type "dapo", token ratio). Throughput = optimizer steps / the trainer's
training-loop time (``train_runtime``); process wall time is reported next to it. Runs alternate
``--repeats`` times, best of each (a shared CPU is noisy).

Goal: steps/s ratio in2x / TRL >= 0.95. Prints JSON.

    python bench/grpo.py [--quick] [--steps 8] [--generations 8] [--max-tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO, emit, tiny_model

BENCH = Path(__file__).resolve().parent


def favour_the(prompts: Any, completions: Any, **_: Any) -> list[float]:
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [min(t.count("the"), 3) / 3 for t in texts]


TRL_GRPO = r"""
import json, sys, torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer
from grpo import favour_the
model_dir, prompts, out, cfg_json, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
torch.set_num_threads(threads)
rows = [{"prompt": [{"role": "user", "content": json.loads(l)["instruction"]}]} for l in open(prompts, encoding="utf-8")]
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
trainer = GRPOTrainer(model=model, reward_funcs=[favour_the], args=GRPOConfig(output_dir=out, **json.loads(cfg_json)),
                      train_dataset=Dataset.from_list(rows), processing_class=tok)
metrics = trainer.train().metrics
lengths = [r["completions/mean_length"] for r in trainer.state.log_history if "completions/mean_length" in r]
print(json.dumps({"train_runtime": metrics["train_runtime"], "steps": trainer.state.global_step,
                  "mean_completion_length": sum(lengths) / len(lengths) if lengths else None}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 = stable timings on a shared CPU)")
    ap.add_argument("--quick", action="store_true", help="--steps 4 --repeats 1")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.repeats = 4, 1

    from in2x_cli.tiny import load_corpus
    from in2x_cli.train.grpo import plan_batches

    rollout, minibatch = 8, 4
    model_dir = tiny_model()
    work = Path(tempfile.mkdtemp(prefix="in2x-bench-grpo-"))
    prompts = work / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"instruction": r["instruction"]}, ensure_ascii=False) + "\n"
                               for r in load_corpus("instructions")[:64]), encoding="utf-8")
    plan = plan_batches(rollout_batch=rollout, minibatch=minibatch, num_generations=args.generations,
                        per_device_batch=args.generations, world_size=1)
    trl_cfg = {
        "use_cpu": True, "report_to": "none", "save_strategy": "no", "logging_steps": 1, "disable_tqdm": True, "seed": 0,
        "num_generations": args.generations, "per_device_train_batch_size": plan.per_device_batch,
        "gradient_accumulation_steps": plan.gradient_accumulation_steps, "steps_per_generation": plan.steps_per_generation,
        "max_steps": args.steps, "max_completion_length": args.max_tokens, "learning_rate": 1e-5, "epsilon_high": 0.28,
        "entropy_coef": 0.01, "temperature": 1.0, "remove_unused_columns": False,
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(BENCH)]), "OMP_NUM_THREADS": str(args.threads),
           "IN2X_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"}

    def run(kind: str, i: int) -> dict:
        from in2x_cli.train.rundir import read_metrics

        out = work / f"{kind}{i}"
        if kind == "trl":
            cmd = [sys.executable, "-c", TRL_GRPO, str(model_dir), str(prompts), str(out), json.dumps(trl_cfg), str(args.threads)]
        else:
            cmd = [sys.executable, "-m", "in2x_cli", "-q", "grpo", str(prompts), "-m", str(model_dir), "-o", str(out), "--overwrite",
                   "-r", "grpo:favour_the", "-G", str(args.generations), "--rollout-batch", str(rollout), "--minibatch", str(minibatch),
                   "--batch-size", str(args.generations), "--max-completion-tokens", str(args.max_tokens), "--max-steps", str(args.steps),
                   "--lr", "1e-5", "--epsilon-high", "0.28", "--entropy-coef", "0.01", "--temperature-start", "1",
                   "--temperature-end", "1", "--seed", "0", "--save-steps", "1000000", "--logging-steps", "1",
                   "--report-to", "none", "--device", "cpu"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO))
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"{kind} run failed:\n{proc.stderr[-3000:]}")
        if kind == "trl":
            doc = json.loads(proc.stdout.strip().splitlines()[-1])
            return {"train_seconds": doc["train_runtime"], "steps": doc["steps"], "process_seconds": wall,
                    "mean_completion_length": doc["mean_completion_length"]}
        rows = read_metrics(out)
        final = [r for r in rows if "train_runtime" in r and "loss" not in r][-1]
        lengths = [r["completions/mean_length"] for r in rows if "completions/mean_length" in r]
        return {"train_seconds": final["train_runtime"], "steps": args.steps, "process_seconds": wall,
                "mean_completion_length": sum(lengths) / len(lengths) if lengths else None}

    runs: dict[str, list[dict]] = {"trl": [], "in2x": []}
    for i in range(args.repeats):
        for kind in runs:
            runs[kind].append(run(kind, i))
    best = {k: min(v, key=lambda r: r["train_seconds"]) for k, v in runs.items()}
    steps_per_s = {k: b["steps"] / b["train_seconds"] for k, b in best.items()}
    emit({
        "bench": "grpo",
        "what": "optimizer steps/s of a GRPO run on the tiny Qwen2 model (CPU): rollouts + rewards + loss + update, through the CLI",
        "baseline": "a trl.GRPOTrainer script with the same GRPOConfig batch plan (loss_type dapo, token ratio)",
        "config": {"steps": args.steps, "num_generations": args.generations, "rollout_batch_prompts": rollout, "minibatch_prompts": minibatch,
                   "updates_per_rollout": plan.updates_per_rollout, "max_completion_tokens": args.max_tokens,
                   "torch_threads": args.threads, "repeats": args.repeats},
        "steps_per_second": {k: round(v, 3) for k, v in steps_per_s.items()},
        "process_seconds": {k: round(min(r["process_seconds"] for r in v), 2) for k, v in runs.items()},
        "all_train_seconds": {k: [round(r["train_seconds"], 2) for r in v] for k, v in runs.items()},
        # generation dominates a step on CPU: a run whose completions end sooner (EOS) does less work
        "mean_completion_length": {k: (round(b["mean_completion_length"], 2) if b["mean_completion_length"] is not None else None)
                                   for k, b in best.items()},
        "ratio": round(steps_per_s["in2x"] / steps_per_s["trl"], 3),
        "goal": ">= 0.95",
    })


if __name__ == "__main__":
    main()
