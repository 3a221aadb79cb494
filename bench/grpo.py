"""Training throughput of in2x grpo (TIC-GRPO loss) vs plain TRL GRPOTrainer, same config.

Both trainers get the same tiny model, prompts, reward function, batch plan (off-policy: two
updates per rollout batch, so both compute π_old), generation length, entropy bonus and seed; the
only difference is the trainer class (our subclass: shaped advantages, trajectory ratio, dual
clip, extra metrics). A second in2x variant installs the per-batch temperature dispatcher on the
fused log-prob head (what --temperature-start != --temperature-end uses) while keeping the
temperature constant, so it samples exactly the same rollouts: its ratio is the dispatcher's cost
alone (an actual decay changes the sampled workload itself). Runs alternate and each keeps its
best time (a shared CPU is noisy).

Baseline: trl.GRPOTrainer (loss_type "dapo", token-level ratio). Goal: steps/s ratio >= 0.95.
Prints JSON.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from typing import Any

from common import emit, tiny_model


def favour_the(prompts: Any, completions: Any, **_: Any) -> list[float]:
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [min(t.count("the"), 3) / 3 for t in texts]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 = stable timings on a shared CPU)")
    args = ap.parse_args()

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from in2x_cli.rewards import Reward
    from in2x_cli.tiny import load_corpus
    from in2x_cli.train.grpo import TICGRPOConfig, TICGRPOTrainer, TRLRewardAdapter, plan_batches
    from in2x_cli.train.options import checkpointing_args

    torch.set_num_threads(args.threads)
    model_dir = tiny_model()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    rows = [{"prompt": [{"role": "user", "content": r["instruction"]}], "row": "{}"} for r in load_corpus("instructions")[:64]]
    dataset = Dataset.from_list(rows)
    plan = plan_batches(rollout_batch=8, minibatch=4, num_generations=args.generations, per_device_batch=args.generations, world_size=1)
    common_kw = {
        "use_cpu": True,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        "disable_tqdm": True,
        "seed": 0,
        "num_generations": args.generations,
        "per_device_train_batch_size": plan.per_device_batch,
        "gradient_accumulation_steps": plan.gradient_accumulation_steps,
        "steps_per_generation": plan.steps_per_generation,
        "max_steps": args.steps,
        "max_completion_length": args.max_tokens,
        "learning_rate": 1e-5,
        "epsilon_high": 0.28,
        "entropy_coef": 0.01,
        "temperature": 1.0,
        **checkpointing_args(False),
        "remove_unused_columns": False,
    }

    def run(kind: str) -> float:
        out = tempfile.mkdtemp(prefix="in2x-bench-grpo-")
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        if kind == "trl":
            trainer: Any = GRPOTrainer(model=model, reward_funcs=[favour_the], args=GRPOConfig(output_dir=out, **common_kw), train_dataset=dataset, processing_class=tok)
        else:
            cfg = TICGRPOConfig(output_dir=out, **common_kw)
            reward = TRLRewardAdapter(Reward("favour_the", 1.0, lambda p, c, **f: favour_the(p, c)))
            trainer = TICGRPOTrainer(model=model, reward_funcs=[reward], args=cfg, train_dataset=dataset, processing_class=tok)
            if kind == "in2x_temperature_dispatch":
                trainer._install_temperature_heads()
        trainer.remove_callback(PrinterCallback)  # it prints log dicts on stdout, which carries the JSON
        t0 = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - t0
        shutil.rmtree(out, ignore_errors=True)
        return elapsed

    kinds = ["trl", "in2x", "in2x_temperature_dispatch"]
    run("trl")  # warm-up: imports, first-call overheads
    best = {k: float("inf") for k in kinds}
    for _ in range(args.repeats):
        for k in kinds:
            best[k] = min(best[k], run(k))
    steps_per_s = {k: args.steps / v for k, v in best.items()}
    emit(
        {
            "bench": "grpo",
            "what": "optimizer steps/s of a GRPO run on the tiny Qwen2 model (CPU): rollouts + rewards + loss + update",
            "baseline": "trl.GRPOTrainer with the same GRPOConfig (loss_type dapo, token ratio)",
            "config": {
                "steps": args.steps,
                "num_generations": args.generations,
                "rollout_batch_prompts": 8,
                "minibatch_prompts": 4,
                "updates_per_rollout": plan.updates_per_rollout,
                "max_completion_tokens": args.max_tokens,
                "torch_threads": args.threads,
                "repeats": args.repeats,
            },
            "steps_per_second": {k: round(v, 3) for k, v in steps_per_s.items()},
            "ratio": round(steps_per_s["in2x"] / steps_per_s["trl"], 3),
            "ratio_with_temperature_dispatch": round(steps_per_s["in2x_temperature_dispatch"] / steps_per_s["trl"], 3),
            "goal": ">= 0.95",
        }
    )


if __name__ == "__main__":
    main()
