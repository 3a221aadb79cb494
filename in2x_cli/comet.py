"""Client for the COMET worker (``cometenv/worker.py``) running in the COMET environment.

One worker process per model, loaded once, serving every batch: ``in2x eval`` (COMET metrics),
``in2x translate --mbr-utility comet`` and the ``translation_comet`` GRPO reward all use
``get_client``. The COMET environment is found through ``IN2X_COMET_PYTHON`` or a ``.venv-comet``
next to the in2x checkout (created by ``make comet-env``).
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from in2x_cli.errors import UserError

WORKER = Path(__file__).with_name("cometenv") / "worker.py"
REQUEST_ROWS = 512  # rows per request: bounds the worker's memory, keeps the pipe moving


def comet_python() -> str:
    """The COMET environment's interpreter, or a UserError saying how to create it."""
    env = os.environ.get("IN2X_COMET_PYTHON")
    if env:
        if not os.path.isfile(env):
            raise UserError(f"IN2X_COMET_PYTHON points to {env}, which does not exist")
        return env
    for base in (Path(__file__).resolve().parent.parent, Path.cwd()):
        cand = base / ".venv-comet" / "bin" / "python"
        if cand.is_file():
            return str(cand)
    raise UserError(
        "no COMET environment found: run `make comet-env` in the in2x checkout, or set IN2X_COMET_PYTHON "
        "to the python of an environment with unbabel-comet installed (it cannot share in2x's: transformers<5)"
    )


def comet_available() -> bool:
    try:
        comet_python()
    except UserError:
        return False
    return True


class CometClient:
    """A running COMET worker. ``score`` takes rows with ``src``, ``mt`` and (for reference-based
    models) ``ref``; returns one float per row, in order."""

    def __init__(
        self, model: str, *, gpus: int | None = None, batch_size: int = 16, python: str | None = None, matmul_precision: str = "highest",
        half: bool = False,
    ) -> None:
        self.model = str(Path(model).resolve()) if os.path.exists(model) else model
        py = python or comet_python()
        if gpus is None:
            gpus = 1 if os.environ.get("CUDA_VISIBLE_DEVICES", "") not in ("", "-1") or _has_nvidia() else 0
        self._log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        env = dict(os.environ)
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        if gpus:  # under torchrun each rank's worker scores on that rank's GPU, not all on GPU 0
            from in2x_cli.devices import visible_devices_for_child

            env.update(visible_devices_for_child())
        self.worker_env = {k: env[k] for k in ("CUDA_VISIBLE_DEVICES",) if k in env}
        self._proc = subprocess.Popen(
            [py, str(WORKER), "--model", self.model, "--gpus", str(gpus), "--batch-size", str(batch_size), "--matmul-precision", matmul_precision,
             *(["--half"] if half else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self._next_id = 0
        hello = self._read()
        if hello.get("error"):
            self.close()
            raise UserError(f"COMET: {hello['error']}")
        self.requires_references = bool(hello.get("requires_references", True))
        self.checkpoint = hello.get("checkpoint")
        self.comet_version = str(hello.get("comet_version") or "unknown")  # unbabel-comet in the worker's environment
        self.matmul_precision = str(hello.get("matmul_precision") or matmul_precision)
        self.dtype = str(hello.get("dtype") or ("float16" if half else "float32"))

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(timeout=30)
            raise UserError(f"COMET worker for {self.model!r} exited (status {self._proc.returncode}): {self._stderr_tail()}")
        return json.loads(line)

    def _stderr_tail(self, n: int = 3) -> str:
        self._log.seek(0)
        lines = [ln.strip() for ln in self._log.read().splitlines() if ln.strip()]
        return " | ".join(lines[-n:]) or "no output"

    def score(self, rows: Sequence[dict[str, str]]) -> list[float]:
        if self.requires_references and any("ref" not in r or r["ref"] is None for r in rows):
            raise UserError(f"COMET model {self.model!r} is reference-based: every row needs a reference")
        out: list[float] = []
        for start in range(0, len(rows), REQUEST_ROWS):
            chunk = [
                {k: ("" if r.get(k) is None else str(r[k])) for k in (("src", "mt", "ref") if self.requires_references else ("src", "mt"))}
                for r in rows[start : start + REQUEST_ROWS]
            ]
            self._next_id += 1
            stdin: IO[str] = self._proc.stdin  # type: ignore[assignment]
            try:
                stdin.write(json.dumps({"id": self._next_id, "data": chunk}, ensure_ascii=False) + "\n")
                stdin.flush()
            except BrokenPipeError:
                raise UserError(f"COMET worker for {self.model!r} died: {self._stderr_tail()}") from None
            reply = self._read()
            if reply.get("error"):
                raise UserError(f"COMET scoring failed: {reply['error']}")
            out.extend(float(s) for s in reply["scores"])
        return out

    def close(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is None or proc.poll() is not None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=30)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            proc.kill()

    def __enter__(self) -> CometClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _has_nvidia() -> bool:
    return any(Path(p).exists() for p in ("/dev/nvidia0", "/proc/driver/nvidia/version"))


_CLIENTS: dict[str, CometClient] = {}


def get_client(model: str, **options: Any) -> CometClient:
    """A shared worker per model (and matmul precision) for this process (closed at exit)."""
    key = "|".join((str(Path(model).resolve()) if os.path.exists(model) else model, str(options.get("matmul_precision", "highest")),
                    str(bool(options.get("half")))))
    client = _CLIENTS.get(key)
    if client is None or client._proc.poll() is not None:
        client = CometClient(model, **options)
        _CLIENTS[key] = client
    return client


@atexit.register
def _close_all() -> None:
    for client in _CLIENTS.values():
        client.close()
    _CLIENTS.clear()


def build_tiny_checkpoint(out_dir: str | Path, *, python: str | None = None, referenceless: bool = False) -> Path:
    """Build the tiny offline COMET checkpoint (cometenv/tiny_checkpoint.py) with the COMET environment
    (``referenceless``: a reference-free one, shaped like CometKiwi, for QE reranking)."""
    py = python or comet_python()
    script = Path(__file__).with_name("cometenv") / "tiny_checkpoint.py"
    res = subprocess.run([py, str(script), str(out_dir), *(["--referenceless"] if referenceless else [])], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if res.returncode != 0:
        raise UserError(f"building the tiny COMET checkpoint failed: {res.stderr.strip().splitlines()[-1:]}")
    return Path(res.stdout.strip().splitlines()[-1])


