"""Line-aligned plain-text files (WMT sources, references, system outputs)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from in2x_cli.io.jsonl import atomic_write_bytes, check_output_path, iter_raw_lines


def iter_text_lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """Stream lines (newline removed). An empty line is a valid line (an empty translation)."""
    for _lineno, text in iter_raw_lines(path):
        yield text


def read_text_lines(path: str | os.PathLike[str]) -> list[str]:
    return list(iter_text_lines(path))


def write_text(path: str | os.PathLike[str], lines: Iterable[str]) -> None:
    """Write lines atomically (or to stdout for ``-``)."""
    import sys

    p = str(path)
    if p == "-":
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return
    check_output_path(p)
    atomic_write_bytes(p, "".join(line + "\n" for line in lines).encode("utf-8"))
