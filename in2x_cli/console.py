"""stderr is for people: logging, tables and progress bars all go through here.

stdout carries data only (JSONL), so every rich object here writes to stderr, and progress bars
are created with ``redirect_stdout=False`` (rich would otherwise capture stdout, see
../shared/ENVIRONMENT.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is light, but keep `in2x --help` import-free of it until needed
    from rich.console import Console
    from rich.progress import Progress

# 0 = quiet (errors only), 1 = normal, 2 = verbose. Set once by the CLI callback.
_verbosity = 1
_console: Console | None = None


def set_verbosity(level: int) -> None:
    global _verbosity
    _verbosity = level


def verbosity() -> int:
    return _verbosity


def stderr_console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True, highlight=False, soft_wrap=True)
    return _console


def info(message: str) -> None:
    """One line for people (suppressed by --quiet)."""
    if _verbosity >= 1:
        stderr_console().print(message, markup=False)


def debug(message: str) -> None:
    if _verbosity >= 2:
        stderr_console().print(message, markup=False, style="dim")


def warn(message: str) -> None:
    if _verbosity >= 1:
        stderr_console().print(f"in2x: warning: {message}", markup=False, style="yellow")


def print_table(table: Any) -> None:
    if _verbosity >= 1:
        stderr_console().print(table)


@contextmanager
def progress(enabled: bool | None = None) -> Iterator[Progress]:
    """A rich Progress on stderr that never touches stdout.

    Shown only when stderr is a terminal (logs and CI get the one-line summaries instead), and
    disabled (but still usable: ``add_task``/``advance`` are no-ops on screen) under --quiet or
    when ``IN2X_NO_PROGRESS`` is set. Bars disappear when done, leaving the summaries.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if enabled is None:
        enabled = _verbosity >= 1 and not os.environ.get("IN2X_NO_PROGRESS") and sys.stderr.isatty()
    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),
        redirect_stdout=False,
        redirect_stderr=False,
        transient=True,
        disable=not enabled,
    )
    with bar:
        yield bar
