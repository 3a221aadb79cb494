"""Read one JSONL input several times, even when it is stdin.

Stages that must not hold every row in memory (``cluster``: an embedding pass, then an
assignment/write pass) stream the input more than once. A file is simply reopened; stdin is
copied, line for line (blank lines included, so line numbers stay the same), to a temporary
spool file during the first pass, and later passes read the spool but still report ``<stdin>``.
All validation errors therefore surface in the first pass, with the user's file and line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import TextIO

from in2x_cli.errors import InputError
from in2x_cli.io.jsonl import Line, display_name, iter_jsonl, iter_raw_lines, parse_json_line


class RawSpool:
    """A temporary copy of raw input lines, written during a first pass over stdin so later passes
    can read it again (line for line, blank lines included: line numbers stay the user's).

    ``write`` each raw line, ``finish`` when the pass is done, iterate ``path`` with
    ``iter_raw_lines`` / ``iter_jsonl``; ``remove`` deletes it (safe to call twice)."""

    def __init__(self, *, prefix: str = "in2x-stdin-", suffix: str = ".jsonl", tmp_dir: str | None = None) -> None:
        fd, self.path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=tmp_dir)
        self._fh: TextIO | None = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, text: str) -> None:
        assert self._fh is not None, "RawSpool.write after finish"
        self._fh.write(text + "\n")

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def remove(self) -> None:
        self.finish()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class MultiPassInput:
    """``first()`` streams and validates (and spools stdin); ``again()`` re-streams the same rows.

    Use as a context manager so the spool is removed at the end. ``tmp_dir`` chooses where the
    stdin spool lives (default: the system temp directory).
    """

    def __init__(self, path: str | os.PathLike[str], *, tmp_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = str(path)
        self.name = display_name(self.path)
        self.tmp_dir = None if tmp_dir is None else str(tmp_dir)
        self._spool: RawSpool | None = None
        self._first_done = False
        self.rows = 0

    def first(self) -> Iterator[Line]:
        """The first pass: rows of the original input (errors name the original file:line)."""
        if self.path != "-":
            n = 0
            for line in iter_jsonl(self.path):
                n += 1
                yield line
            self.rows = n
            self._first_done = True
            return
        self._spool = spool = RawSpool(tmp_dir=self.tmp_dir)
        n = 0
        try:
            for lineno, text in iter_raw_lines("-"):
                spool.write(text)
                if not text.strip():
                    continue
                n += 1
                yield Line(self.name, lineno, parse_json_line(text, f"{self.name}:{lineno}"))
        finally:
            spool.finish()
        if n == 0:
            raise InputError("empty input: no JSON rows", self.name)
        self.rows = n
        self._first_done = True

    def again(self) -> Iterator[Line]:
        """Another pass over the same rows, after ``first()`` has been consumed to the end."""
        if not self._first_done:
            raise RuntimeError("MultiPassInput.again() before the first pass finished")
        if self._spool is None:
            yield from iter_jsonl(self.path)
            return
        for line in iter_jsonl(self._spool.path):
            yield Line(self.name, line.lineno, line.data)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.remove()
            self._spool = None

    def __enter__(self) -> MultiPassInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

