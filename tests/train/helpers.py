"""Shared by the training command tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.util import REPO


def train_until_checkpoint(args: list[str], run: Path, step: int = 2, timeout: float = 120) -> subprocess.Popen:
    """Start ``in2x ARGS -o RUN`` in a subprocess (stderr piped) and return it once
    ``checkpoint-STEP`` is complete, so that the caller can interrupt it there."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "IN2X_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "in2x_cli", *args, "-o", str(run)], env=env, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while not (run / f"checkpoint-{step}" / "trainer_state.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc
