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
        wanted = _verbosity >= 1 and not os.environ.get("IN2X_NO_PROGRESS")
        if wanted and not sys.stderr.isatty():
            # a log file or a pipe: a plain line now and then instead of a live bar
            yield LineProgress(float(os.environ.get("IN2X_PROGRESS_INTERVAL", "30")))  # type: ignore[misc]
            return
        enabled = wanted
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


class LineProgress:
    """``rich.progress.Progress``'s ``add_task`` / ``advance`` / ``update`` for a stderr that is not
    a terminal: one line per task at most every ``interval`` seconds
    (``embed: 245,760/1,000,000 (24.6%) 3,120/s elapsed 1m19s eta 4m02s``), nothing for tasks that
    finish sooner. ``IN2X_PROGRESS_INTERVAL`` sets the interval (seconds, default 30)."""

    def __init__(self, interval: float) -> None:
        import time

        self._clock = time.monotonic
        self.interval = interval
        self._tasks: dict[int, dict[str, Any]] = {}

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        now = self._clock()
        self._tasks[len(self._tasks)] = {"description": description, "total": total, "completed": 0.0, "start": now, "printed": now}
        return len(self._tasks) - 1

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(self, task_id: int, *, advance: float | None = None, completed: float | None = None, total: float | None = None,
               description: str | None = None, **_: Any) -> None:
        t = self._tasks[task_id]
        if completed is not None:
            t["completed"] = completed
        if advance:
            t["completed"] += advance
        if total is not None:
            t["total"] = total
        if description is not None:
            t["description"] = description
        now = self._clock()
        if now - t["printed"] >= self.interval:
            t["printed"] = now
            if _verbosity >= 1:
                print(format_progress_line(t["description"], t["completed"], t["total"], now - t["start"]), file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def format_progress_line(description: str, done: float, total: float | None, elapsed: float) -> str:
    """``embed: 245,760/1,000,000 (24.6%) 3,120/s elapsed 1m19s eta 4m02s``"""
    rate = done / elapsed if elapsed > 0 else 0.0
    line = f"{description}: {done:,.0f}"
    if total:
        line += f"/{total:,.0f} ({100 * done / total:.1f}%)"
    line += f" {rate:,.0f}/s elapsed {_duration(elapsed)}"
    if total and rate > 0 and done < total:
        line += f" eta {_duration((total - done) / rate)}"
    return line
