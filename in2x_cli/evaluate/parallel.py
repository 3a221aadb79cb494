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


def _score_one(job: tuple[str, int]) -> Any:
    from in2x_cli.core.metrics import score_system

    key, i = job
    return score_system(_JOB["metrics"][key], _JOB["systems"][i], _JOB["refs"], _JOB["srcs"], segments=_JOB["segments"])


def score_all_parallel(
    metrics: dict[str, Any], systems: Sequence[Sequence[str]], refs: Sequence[str] | None, srcs: Sequence[str], *, segments: bool = True
) -> dict[str, list[Any]]:
    """Every metric × every system: the sacreBLEU ones in one pool of ``eval_workers`` processes
    (references tokenised before the fork), the others (COMET, user functions) in this process."""
    from in2x_cli.core.metrics import REF_CACHE_SEGMENTS, SacreMetric, score_systems
    from in2x_cli.workers import can_fork, fork_pool

    workers = eval_workers(len(systems) * len(metrics))
    pooled = [k for k, m in metrics.items() if isinstance(m, SacreMetric)]
    if workers < 2 or len(systems) < 2 or not pooled or refs is None or len(refs) > REF_CACHE_SEGMENTS or not can_fork():
        pooled = []
    out = {k: score_systems(m, systems, refs, srcs, segments=segments) for k, m in metrics.items() if k not in pooled}
    if not pooled:
        return {k: out[k] for k in metrics}
    for k in pooled:
        metrics[k].prepare(refs)
    jobs = [(k, i) for k in pooled for i in range(len(systems))]
    _JOB.update(metrics=metrics, systems=systems, refs=refs, srcs=srcs, segments=segments)
    try:
        with fork_pool(workers) as pool:
            results = pool.map(_score_one, jobs, chunksize=1)
    finally:
        _JOB.clear()
    for (k, _), r in zip(jobs, results, strict=True):
        out.setdefault(k, []).append(r)
    return {k: out[k] for k in metrics}
