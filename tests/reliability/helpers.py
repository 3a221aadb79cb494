"""Shared by the reliability suites: the clean-failure contract, file digests, case counters,
subprocess control (start, poll, kill) and peak-memory probes.

The clean-failure contract every command keeps on bad input (tests/reliability/test_fuzz.py):
exit status 2 (0 when the generated input happens to be valid), exactly one ``in2x: error:``
line naming the file (as ``FILE:LINE``, with the right line, when the mutation broke one line),
no traceback, nothing left where the output would have gone (no output, no ``*.partial``, no
``*.meta.json``), inputs byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests.util import REPO, Result

# Generated cases per command, printed in the terminal summary (tests/reliability/conftest.py)
# and written to $IN2X_RELIABILITY_REPORT when set (bench/reliability.py reads it).
CASES: Counter[str] = Counter()
OUTCOMES: dict[str, Counter[str]] = {}

# Fuzz budget: hypothesis examples per command = base x IN2X_FUZZ_SCALE (the bench raises it).
FUZZ_SCALE = float(os.environ.get("IN2X_FUZZ_SCALE", "1"))


def examples(base: int) -> int:
    return max(1, int(round(base * FUZZ_SCALE)))


def count_case(command: str, outcome: str) -> None:
    CASES[command] += 1
    OUTCOMES.setdefault(command, Counter())[outcome] += 1


def report_cases() -> dict[str, Any]:
    return {cmd: {"cases": CASES[cmd], **dict(OUTCOMES.get(cmd, {}))} for cmd in sorted(CASES)}


# --------------------------------------------------------------------------- files


def digest_tree(*paths: Path) -> dict[str, str]:
    """sha256 of every file under the given files/directories (to prove inputs were not touched)."""
    out: dict[str, str] = {}
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in Path(directory).rglob("*"))


ERROR_LINE = re.compile(r"^in2x: error: ")


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ERROR_LINE.match(ln)]


def check_contract(
    res: Result,
    *,
    out_dir: Path,
    inputs_before: dict[str, str],
    names: Iterable[str] = (),
    line: int | None = None,
    allow_success: bool = True,
) -> str:
    """Assert the clean-failure contract; return "ok" (exit 0) or "error" (exit 2).

    ``out_dir`` is a directory that held nothing before the command and must hold nothing after a
    failure. ``names``: the error line must contain at least one of them (the offending file).
    ``line``: the mutated line; the error must then name it as ``FILE:LINE`` for one of ``names``.
    """
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert res.code in ((0, 2) if allow_success else (2,)), (res.code, res.stderr[-3000:])
    after = digest_tree(*(Path(p) for p in inputs_before)) if inputs_before else {}
    assert after == inputs_before, "an input file was modified"
    if res.code == 0:
        assert not [p for p in listing(out_dir) if p.endswith(".partial")], listing(out_dir)
        return "ok"
    errs = error_lines(res.stderr)
    assert len(errs) == 1, res.stderr[-3000:]
    names = list(names)
    if names:
        hit = [n for n in names if n in errs[0]]
        assert hit, (names, errs[0])
        if line is not None:
            # a mutation of one line must be reported at that line: FILE:LINE, not just FILE
            at_line = [n for n in hit if re.search(re.escape(n) + rf":{line}(?!\d)", errs[0])]
            assert at_line, (f"expected {hit[0]}:{line}", errs[0])
    assert listing(out_dir) == [], f"left behind after a failure: {listing(out_dir)} ({errs[0]})"
    return "error"


# --------------------------------------------------------------------------- subprocesses


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "IN2X_NO_PROGRESS": "1"}
    env.update(extra)
    return env


def spawn(
    args: list[str], *, env: dict[str, str] | None = None, stdout: Any = subprocess.DEVNULL, module: str = "in2x_cli"
) -> subprocess.Popen:
    """``python -m in2x_cli ARGS`` (stderr piped for diagnostics); ``module`` may name a wrapper
    that calls the same entry point (tests/reliability/slow_cli.py)."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], env=env or cli_env(), cwd=str(REPO), stdout=stdout, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, preexec_fn=_default_signals,
    )


def _default_signals() -> None:
    """Children start with SIGINT/SIGTERM at their defaults: a shell's background job (``make bench &``)
    inherits SIGINT ignored, and Python then leaves it ignored, so a SIGINT kill point would test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def wait_for(proc: subprocess.Popen, ready: Callable[[], bool], *, timeout: float = 120, poll: float = 0.01) -> bool:
    """Poll until ``ready()``; False when the process ended first (it finished too fast)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            return ready()
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting; stderr: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        time.sleep(poll)
    return True


def stop(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 120) -> tuple[int, str]:
    """Send ``sig`` (if still running) and collect the exit status and stderr."""
    if proc.poll() is None:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err.decode("utf-8", "replace")


def count_lines(path: Path) -> int:
    """Complete lines in a file (0 when missing): how far a streaming writer got."""
    try:
        with open(path, "rb") as fh:
            return fh.read().count(b"\n")
    except FileNotFoundError:
        return 0


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


def safetensors_equal(a: Path, b: Path) -> list[str]:
    """Names of tensors that differ between two model directories (empty: bit-identical)."""
    import torch
    from safetensors.torch import load_file

    def load(d: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in sorted(Path(d).glob("*.safetensors")):
            out.update(load_file(str(f)))
        return out

    x, y = load(a), load(b)
    assert x.keys() == y.keys(), (sorted(x), sorted(y))
    return [k for k in x if not torch.equal(x[k], y[k])]


# --------------------------------------------------------------------------- memory


def peak_memory(args: list[str], report: Path, *, env: dict[str, str] | None = None, timeout: float = 300) -> dict[str, Any]:
    """Run ``in2x ARGS`` in a fresh interpreter (tests/reliability/rss_probe.py) and return its
    exit status, peak RSS and peak anonymous (heap) memory in KiB."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.rss_probe", str(report), *args], env=env or cli_env(), cwd=str(REPO),
        capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    data = json.loads(Path(report).read_text())
    data["stderr"] = proc.stderr.decode("utf-8", "replace")[-2000:]
    return data
