"""One GPU node, one run: is the GPU stack real? (issue 15). Run by ``bench/gpu_check.sh`` after it
installed ``.[gpu]`` under ``constraints/gpu.txt``; prints one JSON object with pass/fail per part:

    env        nvidia-smi's GPUs = torch's, versions of the stack, faiss sees a GPU
    sft        ``in2x sft`` on the tiny model, bf16 on cuda
    grpo       ``in2x grpo --rollout-engine vllm`` (TRL's colocated vLLM) on the tiny model
    translate  ``in2x translate --backend vllm`` on the tiny model
    cluster    ``in2x cluster --algorithm kmeans``: must run on faiss-GPU (its metadata says gpu: true)
    mfu        ``bench/train_gpu.py``: tokens/s and MFU of ``in2x sft`` on a Qwen2.5-0.5B-shaped model
               (random init, bf16, packed 4,096-token rows); passes at MFU >= 0.40

Each part is a subprocess with its own time limit (the whole check is meant to fit 8 minutes on one
H100/H200). Usage: python bench/gpu_check.py [--parts env,sft,...] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PARTS = ("env", "sft", "grpo", "translate", "cluster", "mfu")
GOAL_MFU = 0.40


def in2x(*args: str, timeout: int, work: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "IN2X_NO_PROGRESS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "in2x_cli", *args], env=env, cwd=str(work), capture_output=True, text=True, timeout=timeout)


def _check(proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}")


def part_env(work: Path) -> dict[str, Any]:
    import torch

    from in2x_cli.devices import driver_gpu_count

    info: dict[str, Any] = {"driver_gpus": driver_gpu_count(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
                            "cuda_available": torch.cuda.is_available(), "device_count": torch.cuda.device_count()}  # fmt: skip
    for name in ("transformers", "trl", "accelerate", "peft", "vllm", "deepspeed", "faiss"):
        try:
            info[name] = __import__(name).__version__
        except Exception as exc:  # noqa: BLE001 - report, do not stop
            info[name] = f"missing ({type(exc).__name__})"
    from in2x_cli.core.cluster import faiss_gpu_count

    info["faiss_gpus"] = faiss_gpu_count()
    info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    info["ok"] = bool(info["cuda_available"] and info["device_count"] == info["driver_gpus"] and info["faiss_gpus"] > 0
                      and not str(info["vllm"]).startswith("missing"))  # fmt: skip
    return info


def tiny_model(work: Path) -> Path:
    model = work / "tiny"
    if not (model / "config.json").exists():
        _check(in2x("tiny-model", str(model), "--train-steps", "100", timeout=300, work=work))
    return model


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _corpus(name: str) -> list[dict[str, Any]]:
    from in2x_cli.tiny import load_corpus

    return list(load_corpus(name))


def part_sft(work: Path) -> dict[str, Any]:
    rows = [{"messages": [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["response"]}]} for r in _corpus("instructions")[:64]]
    out = work / "sft"
    _check(in2x("sft", str(_write(work / "chat.jsonl", rows)), "--model", str(tiny_model(work)), "-o", str(out), "--overwrite",
                "--device", "cuda", "--precision", "bf16", "--max-steps", "10", "--batch-size", "8", "--max-length", "256",
                "--report-to", "none", "--logging-steps", "1", timeout=240, work=work))  # fmt: skip
    from in2x_cli.train.rundir import read_metrics

    losses = [r["loss"] for r in read_metrics(out) if "loss" in r]
    return {"ok": len(losses) == 10 and losses[-1] < losses[0], "loss_first": losses[0], "loss_last": losses[-1]}


def part_grpo(work: Path) -> dict[str, Any]:
    rows = [{"instruction": f"What is {i} + {i}? Put the answer in \\boxed{{}}.", "answer": str(2 * i)} for i in range(16)]
    out = work / "grpo"
    proc = in2x("grpo", str(_write(work / "prompts.jsonl", rows)), "--model", str(tiny_model(work)), "-o", str(out), "--overwrite",
                "--reward", "math_exact", "--reward", "format", "--rollout-engine", "vllm", "--vllm-gpu-memory", "0.3",
                "-G", "4", "--rollout-batch", "4", "--minibatch", "2", "--batch-size", "4", "--max-steps", "4",
                "--max-completion-tokens", "64", "--report-to", "none", "--logging-steps", "1", timeout=300, work=work)  # fmt: skip
    _check(proc)
    prov = json.loads((out / "in2x_provenance.json").read_text())
    return {"ok": "vLLM (colocate)" in proc.stderr and (out / "model.safetensors").exists(), "steps": prov.get("extra", {}).get("steps")}


def part_translate(work: Path) -> dict[str, Any]:
    rows = [{"src": r["en"], "src_lang": "en", "tgt_lang": "ja"} for r in _corpus("parallel")[:32]]
    out = work / "mt.jsonl"
    t0 = time.perf_counter()
    _check(in2x("translate", str(_write(work / "src.jsonl", rows)), "--model", str(tiny_model(work)), "--backend", "vllm",
                "--gpu-memory-utilization", "0.5", "--max-tokens", "64", "-o", str(out), timeout=240, work=work))  # fmt: skip
    hyps = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return {"ok": len(hyps) == len(rows) and all(isinstance(h.get("hyp"), str) for h in hyps), "rows": len(hyps), "seconds": round(time.perf_counter() - t0, 1)}


def part_cluster(work: Path) -> dict[str, Any]:
    out = work / "clusters.jsonl"
    from in2x_cli.tiny import corpus_dir

    proc = in2x("cluster", str(corpus_dir() / "instructions.jsonl"), "--algorithm", "kmeans", "--k", "8", "-o", str(out), timeout=180, work=work)
    _check(proc)
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    gpu = bool(meta.get("clustering", {}).get("gpu"))
    return {"ok": gpu and "runs on CPU" not in proc.stderr, "faiss_gpu": gpu}


def part_mfu(work: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "train_gpu.py"), "--steps", "30"], capture_output=True, text=True, timeout=300, cwd=str(REPO))
    _check(proc)
    res = json.loads(proc.stdout[proc.stdout.index("{") :])
    mfu = res.get("mfu_median")
    return {"ok": mfu is not None and mfu >= GOAL_MFU, "tokens_per_second": res.get("tokens_per_second_median"), "mfu": mfu, "goal_mfu": GOAL_MFU, "device": res.get("device")}


RUNNERS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "env": part_env, "sft": part_sft, "grpo": part_grpo, "translate": part_translate, "cluster": part_cluster, "mfu": part_mfu,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--work", default=None)
    args = ap.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="in2x-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name in args.parts.split(","):
        t0 = time.perf_counter()
        try:
            results[name] = RUNNERS[name](work)
        except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[-1500:]}"}
        results[name]["seconds"] = results[name].get("seconds", round(time.perf_counter() - t0, 1))
        print(f"gpu_check: {name}: {'PASS' if results[name]['ok'] else 'FAIL'} ({results[name]['seconds']} s)", file=sys.stderr, flush=True)
    results["all_ok"] = all(r["ok"] for r in results.values() if isinstance(r, dict))
    print(json.dumps(results, indent=2, default=str))
    return 0 if results["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
