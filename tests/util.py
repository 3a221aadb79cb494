"""Helpers for driving the real CLI in tests."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def rows(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


class _Stdin(io.TextIOWrapper):
    pass


def invoke(args: list[str], stdin: str | bytes | None = None) -> Result:
    """Run ``in2x ARGS`` in this process through the real entry point (``cli.main``).

    stdin/stdout/stderr are replaced by in-memory streams with real ``.buffer`` attributes, so
    the code paths are the ones a shell pipeline exercises.
    """
    from in2x_cli import cli, console

    data = stdin.encode("utf-8") if isinstance(stdin, str) else (stdin or b"")
    fake_in = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    out_buf, err_buf = io.BytesIO(), io.BytesIO()
    fake_out = io.TextIOWrapper(out_buf, encoding="utf-8", write_through=True)
    fake_err = io.TextIOWrapper(err_buf, encoding="utf-8", write_through=True)
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = fake_in, fake_out, fake_err
    console._console = None  # rebind rich to the fake stderr
    code = 0
    try:
        cli.main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        fake_out.flush()
        fake_err.flush()
        sys.stdin, sys.stdout, sys.stderr = saved
        console._console = None
        console.set_verbosity(1)
    return Result(code, out_buf.getvalue().decode("utf-8"), err_buf.getvalue().decode("utf-8"))


def run_subprocess(args: list[str], stdin: str | bytes | None = None, timeout: float = 120, env: dict[str, str] | None = None) -> Result:
    """Run ``python -m in2x_cli ARGS`` as a separate process (signals, imports, pipes)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **(env or {})}
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-m", "in2x_cli", *args], input=data, capture_output=True, timeout=timeout, env=full_env, cwd=str(REPO)
    )
    return Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def assert_user_error(res: Result, *fragments: str) -> None:
    """Exit status 2, one ``in2x: error:`` line naming the fragments, no traceback."""
    assert res.code == 2, (res.code, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr
    err_lines = [ln for ln in res.stderr.splitlines() if ln.startswith("in2x: error:")]
    assert len(err_lines) == 1, res.stderr
    for frag in fragments:
        assert frag in err_lines[0], (frag, err_lines[0])


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
