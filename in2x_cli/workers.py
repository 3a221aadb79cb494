"""A forked worker pool for pure-CPU work spread over cores (embedding chunks, scoring systems).

Forked workers inherit what the parent has prepared (a fitted embedder, tokenised references)
instead of rebuilding it. They would also inherit the CLI's SIGTERM handler (cli.py turns SIGTERM
into a clean unwind), which makes ``Pool.terminate`` wait forever on a worker that no longer dies
of SIGTERM: so each worker restores the default SIGTERM and ignores SIGINT (Ctrl-C reaches the
parent, which unwinds and terminates the pool); SIGTERM is blocked from the fork until then, so
a worker terminated at once still dies. On success the pool is closed and joined.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _reset_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # a SIGTERM sent meanwhile now kills


def usable_cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon


@contextmanager
def fork_pool(workers: int) -> Iterator[Any]:
    import multiprocessing

    # SIGTERM stays blocked while the workers are forked, so one sent to a worker before its
    # initializer has run waits for the default action instead of reaching the parent's handler
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_reset_signals)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    try:
        yield pool
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()
