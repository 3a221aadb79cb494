"""Score the systems of one test set on several cores: sacreBLEU's statistics are pure Python
(one core per process), so ``in2x eval`` spreads the systems over worker processes.

Workers are forked after the metric has tokenised the references (``prepare``), so they share
that cache instead of rebuilding it; each returns ``core.metrics.score_system``'s result for its
systems, in order, so the scores are the same numbers a single process computes. The worker
count is the CPUs this process may use (``IN2X_EVAL_WORKERS`` overrides; 1 = no pool), at most
one per system. Other metrics (COMET, user functions) are scored in this process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

_JOB: dict[str, Any] = {}


def eval_workers(n_systems: int) -> int:
    from in2x_cli.workers import usable_cpus

    env = os.environ.get("IN2X_EVAL_WORKERS")
    cpus = int(env) if env and env.isdigit() else usable_cpus()
    return max(1, min(cpus, n_systems))


def _score_one(i: int) -> Any:
    from in2x_cli.core.metrics import score_system

    return score_system(_JOB["metric"], _JOB["systems"][i], _JOB["refs"], _JOB["srcs"], segments=_JOB["segments"])


def score_systems_parallel(
    metric: Any, systems: Sequence[Sequence[str]], refs: Sequence[str] | None, srcs: Sequence[str], *, segments: bool = True
) -> list[Any]:
    """``core.metrics.score_systems``, with sacreBLEU metrics spread over ``eval_workers`` processes."""
    from in2x_cli.core.metrics import REF_CACHE_SEGMENTS, SacreMetric, score_systems
    from in2x_cli.workers import can_fork, fork_pool

    workers = eval_workers(len(systems))
    if workers < 2 or not isinstance(metric, SacreMetric) or refs is None or len(refs) > REF_CACHE_SEGMENTS or not can_fork():
        return score_systems(metric, systems, refs, srcs, segments=segments)
    metric.prepare(refs)  # tokenise the references once, before the fork: every worker inherits the cache
    _JOB.update(metric=metric, systems=systems, refs=refs, srcs=srcs, segments=segments)
    try:
        with fork_pool(workers) as pool:
            return pool.map(_score_one, range(len(systems)), chunksize=1)
    finally:
        _JOB.clear()
