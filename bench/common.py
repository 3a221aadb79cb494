"""Shared bench helpers: timing, machine description, tiny model, JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("IN2X_NO_PROGRESS", "1")
# One intra-op thread by default: on a shared 2-core machine, two OpenMP threads spin-waiting on
# each other made a tiny model's matmuls up to 150x slower whenever another process ran, which
# turned ratios into noise. IN2X_BENCH_THREADS=N measures with N threads instead.
os.environ["OMP_NUM_THREADS"] = os.environ.get("IN2X_BENCH_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def best_of(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Minimum wall time over repeats (the least-disturbed run on a shared machine)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def tiny_model(train_steps: int = 0) -> Path:
    from in2x_cli.tiny import TinyConfig, build_tiny_model

    d = Path(tempfile.mkdtemp(prefix="in2x-bench-")) / "tiny"
    return build_tiny_model(d, TinyConfig(seed=0, train_steps=train_steps))


def emit(result: dict[str, Any]) -> None:
    result.setdefault("machine", machine())
    print(json.dumps(result, ensure_ascii=False, indent=2))
