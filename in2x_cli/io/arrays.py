"""Memory-mapped ``.npy`` arrays: a resumable builder, a cache directory, scratch arrays.

Large per-row arrays (embeddings of tens of millions of rows) never live in RAM: they are
``numpy.lib.format.open_memmap`` files filled chunk by chunk. ``NpyBuilder`` makes that kill-safe:
the array is written to ``<path>.partial`` with a ``<path>.progress.json`` that records how many
leading rows are complete (updated only after the chunk is flushed to disk), and is renamed to
``<path>`` when every row is written. A later run with the same path resumes after the last
recorded row. numpy is imported inside functions.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from in2x_cli.errors import UserError
from in2x_cli.io.jsonl import write_json

if TYPE_CHECKING:
    import numpy as np


def default_cache_dir(kind: str) -> Path:
    """``$IN2X_CACHE_DIR/<kind>``, else ``$XDG_CACHE_HOME/in2x/<kind>``, else ``~/.cache/in2x/<kind>``."""
    root = os.environ.get("IN2X_CACHE_DIR")
    if root:
        return Path(root).expanduser() / kind
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "in2x" / kind


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create directory: {exc.strerror}", str(p)) from None
    if not os.access(p, os.W_OK):
        raise UserError("directory is not writable", str(p))
    return p


def open_npy(path: str | os.PathLike[str]) -> np.memmap:
    """Open a complete ``.npy`` read-only, memory-mapped."""
    import numpy as np

    try:
        return np.load(str(path), mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read array: {exc}", str(path)) from None


class NpyBuilder:
    """Fill a ``shape`` array row block by row block; resumable after a kill (see module doc).

    ``info`` (JSON-able) is stored in the progress file and, on ``finish``, in ``<path>.json``; a
    partial file whose shape, dtype or info differ from this run's is discarded, not resumed.
    """

    def __init__(self, path: str | os.PathLike[str], shape: tuple[int, ...], *, dtype: str = "float32", info: Any = None) -> None:
        import numpy as np

        self.path = Path(path)
        self.partial = Path(f"{self.path}.partial")
        self.progress_path = Path(f"{self.path}.progress.json")
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.info = info
        self.rows_done = 0
        state = self._read_progress()
        if state is not None and self.partial.exists():
            self.array = np.lib.format.open_memmap(str(self.partial), mode="r+")
            self.rows_done = int(state["rows_done"])
        else:
            self.array = np.lib.format.open_memmap(str(self.partial), mode="w+", dtype=dtype, shape=self.shape)
            self._write_progress()

    def _read_progress(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.progress_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if state.get("shape") != list(self.shape) or state.get("dtype") != self.dtype or state.get("info") != _plain(self.info):
            return None
        return state

    def _write_progress(self) -> None:
        write_json(self.progress_path, {"rows_done": self.rows_done, "shape": list(self.shape), "dtype": self.dtype, "info": _plain(self.info)})

    def write(self, block: np.ndarray) -> None:
        """Append the next ``len(block)`` rows (after ``rows_done``), flush, record progress."""
        n = len(block)
        if self.rows_done + n > self.shape[0]:
            raise ValueError("NpyBuilder.write past the end of the array")
        self.array[self.rows_done : self.rows_done + n] = block
        self.array.flush()
        self.rows_done += n
        self._write_progress()

    def finish(self) -> np.memmap:
        if self.rows_done != self.shape[0]:
            raise ValueError(f"NpyBuilder.finish with {self.rows_done} of {self.shape[0]} rows written")
        self.array.flush()
        del self.array
        os.replace(self.partial, self.path)
        if self.info is not None:
            write_json(f"{self.path}.json", {"shape": list(self.shape), "dtype": self.dtype, "info": _plain(self.info)})
        try:
            self.progress_path.unlink()
        except FileNotFoundError:
            pass
        return open_npy(self.path)


def scratch_array(shape: tuple[int, ...], dtype: str, *, dir: str | os.PathLike[str] | None = None) -> np.memmap:
    """A zero-filled writable memmap backed by an already-unlinked temp file (gone at exit)."""
    import numpy as np

    fd, name = tempfile.mkstemp(prefix="in2x-scratch-", suffix=".npy", dir=None if dir is None else str(dir))
    os.close(fd)
    try:
        arr = np.lib.format.open_memmap(name, mode="w+", dtype=dtype, shape=shape)
    finally:
        os.unlink(name)  # the mapping keeps the data alive; nothing is left behind on a kill
    return arr


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, sort_keys=True, default=str)) if obj is not None else None
