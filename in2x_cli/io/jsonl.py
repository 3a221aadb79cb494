"""JSONL in and out: ``-`` is stdin/stdout, ``.gz`` is transparent, UTF-8 only, streaming.

Reading never loads a whole file (``read_jsonl`` does, when a stage must). Every problem is a
``InputError`` naming ``file:line``. Writing goes to ``<output>.partial`` and is renamed over the
output only when the command succeeds, so a failure never leaves a half-written output; a
provenance sidecar ``<output>.meta.json`` is written next to every file output. Resumable stages
open the writer with ``resume=True``: the ``.partial`` file then survives an interruption (its
torn last line is dropped on resume) and the rows already in it are offered to the stage so it can
skip them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from in2x_cli.errors import InputError, UserError

# sha256 of everything read from stdin, filled when stdin has been consumed to the end
# (provenance cannot re-read a pipe).
STDIN_DIGEST: dict[str, str] = {}

_MAX_ERR_SNIPPET = 60


@dataclass(frozen=True)
class Line:
    """One parsed JSONL row and where it came from."""

    path: str
    lineno: int
    data: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.path}:{self.lineno}"


def display_name(path: str | os.PathLike[str]) -> str:
    return "<stdin>" if str(path) == "-" else str(path)


def open_input(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a data file for binary reading; ``-`` is stdin and ``*.gz`` is decompressed."""
    p = str(path)
    if p == "-":
        return sys.stdin.buffer
    try:
        if os.path.isdir(p):
            raise UserError("is a directory, expected a file", p)
        if p.endswith(".gz"):
            fh: IO[bytes] = gzip.open(p, "rb")  # type: ignore[assignment]
            fh.peek(1)  # type: ignore[attr-defined]  # fail here, not mid-stream, on a bad header
            return fh
        return open(p, "rb")
    except FileNotFoundError:
        raise UserError("no such file", p) from None
    except PermissionError:
        raise UserError("permission denied", p) from None
    except (OSError, EOFError) as exc:
        raise UserError(f"cannot read: {exc}", p) from None


def iter_raw_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """Yield ``(lineno, text)`` with the newline removed; invalid UTF-8 names the line."""
    name = display_name(path)
    fh = open_input(path)
    digest = hashlib.sha256() if str(path) == "-" else None
    lineno = 0
    try:
        while True:
            try:
                raw = fh.readline()
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise InputError(f"cannot read: {exc}", f"{name}:{lineno + 1}") from None
            if not raw:
                break
            lineno += 1
            if digest is not None:
                digest.update(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"invalid UTF-8 at byte {exc.start}", f"{name}:{lineno}") from None
            if text.endswith("\n"):
                text = text[:-1]
                if text.endswith("\r"):
                    text = text[:-1]
            if lineno == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield lineno, text
        if digest is not None:
            STDIN_DIGEST["-"] = digest.hexdigest()
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_line(text: str, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        snippet = text[:_MAX_ERR_SNIPPET] + ("…" if len(text) > _MAX_ERR_SNIPPET else "")
        raise InputError(f"invalid JSON ({msg}): {snippet!r}", where) from None
    except RecursionError:
        raise InputError("invalid JSON (nested too deeply)", where) from None
    if not isinstance(obj, dict):
        raise InputError(f"expected a JSON object, got {type(obj).__name__}", where)
    return obj


def iter_jsonl(path: str | os.PathLike[str], *, require_rows: bool = True) -> Iterator[Line]:
    """Stream rows of a JSONL file. Blank lines are skipped.

    With ``require_rows`` (the default) a file with no rows at all is an error: every stage
    needs input, and an empty file is almost always a broken upstream step.
    """
    name = display_name(path)
    n = 0
    for lineno, text in iter_raw_lines(path):
        if not text.strip():
            continue
        n += 1
        yield Line(name, lineno, parse_json_line(text, f"{name}:{lineno}"))
    if require_rows and n == 0:
        raise InputError("empty input: no JSON rows", name)


def read_jsonl(path: str | os.PathLike[str], *, require_rows: bool = True) -> list[Line]:
    """Load a whole JSONL file (only for stages that need random access)."""
    return list(iter_jsonl(path, require_rows=require_rows))


# --------------------------------------------------------------------------- writing


def check_output_path(path: str | os.PathLike[str]) -> None:
    """Fail early (before any expensive work) when an output cannot be created."""
    p = str(path)
    if p == "-":
        return
    if os.path.isdir(p):
        raise UserError("is a directory, expected an output file path", p)
    parent = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(parent):
        raise UserError(f"output directory {parent} does not exist", p)
    if not os.access(parent, os.W_OK):
        raise UserError(f"output directory {parent} is not writable", p)


def _to_jsonable(row: Any) -> dict[str, Any]:
    if isinstance(row, Mapping):
        return dict(row)
    to_dict = getattr(row, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"cannot write {type(row).__name__} as a JSONL row")


def _clean_floats(obj: Any) -> Any:
    """NaN/inf are not JSON: write them as null (a failed score), never as invalid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


def dumps_row(row: Any) -> str:
    data = _to_jsonable(row)
    try:
        return json.dumps(data, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_clean_floats(data), ensure_ascii=False, allow_nan=False)


def atomic_write_bytes(path: str, payload: bytes) -> None:
    tmp = f"{path}.partial"
    with open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def meta_path(path: str | os.PathLike[str]) -> str:
    return f"{path}.meta.json"


class JsonlWriter:
    """Write rows to a path (atomically) or to stdout (``-``).

    ``meta`` is the provenance dict (or a function returning it, called at the end so that it
    can include counts and stdin digests); it is written to ``<output>.meta.json``.

    Use as a context manager: on success the ``.partial`` file is renamed over the output; on an
    exception it is removed, unless ``resume=True``, in which case it is kept (flushed) so that
    ``--resume`` can continue from it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        meta: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        resume: bool = False,
    ) -> None:
        self.path = str(path)
        self.meta = meta
        self.resume = resume
        self.rows_written = 0
        self.rows_resumed = 0
        self._closed = False
        check_output_path(self.path)
        if self.path == "-":
            self._fh: IO[str] = sys.stdout
            self.partial = None
            return
        if resume and self.path.endswith(".gz"):
            raise UserError("--resume needs an uncompressed output (a killed gzip stream is unreadable)", self.path)
        self.partial = f"{self.path}.partial"
        self._restore_final = False
        if resume:
            if not os.path.exists(self.partial) and os.path.exists(self.path):
                os.replace(self.path, self.partial)
                self._restore_final = True  # a finished output reopened: put it back if nothing is added
            if os.path.exists(self.partial):
                self.rows_resumed = _repair_partial(self.partial)
            self._fh = open(self.partial, "a", encoding="utf-8")
        elif self.path.endswith(".gz"):
            self._fh = gzip.open(self.partial, "wt", encoding="utf-8")  # type: ignore[assignment]
        else:
            self._fh = open(self.partial, "w", encoding="utf-8")

    # rows already present when resuming (read back from the partial file)
    def existing(self) -> Iterator[dict[str, Any]]:
        if not self.partial or not self.rows_resumed:
            return iter(())
        self._fh.flush()
        return (line.data for line in iter_jsonl(self.partial, require_rows=False))

    def write(self, row: Any) -> None:
        self._fh.write(dumps_row(row) + "\n")
        self.rows_written += 1
        if self.resume or self.path == "-":
            self._fh.flush()

    def write_many(self, rows: Any) -> None:
        for row in rows:
            self._fh.write(dumps_row(row) + "\n")
            self.rows_written += 1
        if self.resume or self.path == "-":
            self._fh.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.partial is None:
            self._fh.flush()
            return
        self._fh.flush()
        if hasattr(self._fh, "fileno"):
            try:
                os.fsync(self._fh.fileno())
            except (OSError, ValueError):
                pass
        self._fh.close()
        meta = self.meta() if callable(self.meta) else self.meta
        if meta is not None:
            meta = dict(meta)
            meta.setdefault("output", {"path": self.path})
            meta["output"]["rows"] = self.rows_written + self.rows_resumed
            if self.rows_resumed:
                meta["output"]["rows_resumed"] = self.rows_resumed
        os.replace(self.partial, self.path)
        if meta is not None:
            write_json(meta_path(self.path), meta)

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.partial is None:
            return
        try:
            self._fh.flush()
            self._fh.close()
        except OSError:
            pass
        if self.resume and self._restore_final and self.rows_written == 0:
            # A resumed run that failed before adding a row (e.g. refused the existing rows)
            # leaves the finished output where it was, not renamed to .partial.
            os.replace(self.partial, self.path)
            return
        if not self.resume:
            try:
                os.unlink(self.partial)
            except FileNotFoundError:
                pass

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _repair_partial(path: str) -> int:
    """Drop a torn (unterminated or unparsable) last line left by a kill; return the row count."""
    with open(path, "rb+") as fh:
        data = fh.read()
        end = len(data)
        if data and not data.endswith(b"\n"):
            end = data.rfind(b"\n") + 1
        good_end = 0
        rows = 0
        pos = 0
        while pos < end:
            nl = data.index(b"\n", pos)
            chunk = data[pos:nl]
            if chunk.strip():
                try:
                    json.loads(chunk.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    break  # everything from a corrupt line on is redone
                rows += 1
            pos = nl + 1
            good_end = pos
        fh.truncate(good_end)
    return rows


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write one JSON document (pretty) atomically, or to stdout for ``-``."""
    text = json.dumps(_clean_floats(obj), ensure_ascii=False, indent=2, allow_nan=False) + "\n"
    p = str(path)
    if p == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    check_output_path(p)
    atomic_write_bytes(p, text.encode("utf-8"))


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole of a file (``-`` is stdin, ``.gz`` is transparent), for documents read at once."""
    fh = open_input(path)
    try:
        return fh.read()
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read one JSON document (config, report); errors name the file."""
    name = display_name(path)
    raw = read_bytes(path)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid UTF-8 at byte {exc.start}", name) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON ({exc.msg})", f"{name}:{exc.lineno}") from None
    except ValueError as exc:
        raise InputError(f"invalid JSON ({exc})", name) from None


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def exists_nonempty(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return p.is_file() and p.stat().st_size > 0
