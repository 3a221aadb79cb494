"""Systems scored in worker processes give the numbers one process gives; the pool never hangs
on a parent that handles SIGTERM itself (the CLI does)."""

import signal

import pytest

from in2x_cli.core.metrics import Bleu, ChrF, MetricContext, score_systems
from in2x_cli.evaluate.parallel import score_systems_parallel
from in2x_cli.workers import fork_pool

REFS = ["The cat sat on the mat.", "It is raining in Tokyo today.", "Write a poem about the sea.", "Two plus two is four."]
SYSTEMS = [
    ["The cat sat on a mat.", "It rains in Tokyo today.", "Write a poem on the sea.", "Two and two make four."],
    ["A cat is on the mat.", "Today it is raining in Tokyo.", "Compose a poem about the ocean.", "2 + 2 = 4."],
    ["The cat sat on the mat.", "It is raining in Tokyo today.", "Write a poem about the sea.", "Two plus two is four."],
]


@pytest.mark.parametrize("make", [lambda ctx: Bleu.build(None, ctx), lambda ctx: ChrF.build(None, ctx)])
def test_two_workers_score_exactly_like_one_process(make, monkeypatch):
    ctx = MetricContext(tgt_lang="en")
    monkeypatch.setenv("IN2X_EVAL_WORKERS", "1")
    one = score_systems(make(ctx), SYSTEMS, REFS, REFS)
    monkeypatch.setenv("IN2X_EVAL_WORKERS", "2")
    two = score_systems_parallel(make(ctx), SYSTEMS, REFS, REFS)
    assert [r.score for r in two] == [r.score for r in one] and [r.segments for r in two] == [r.segments for r in one]
    assert all((a.stats == b.stats).all() for a, b in zip(one, two))


def _sleep(_):
    import time

    time.sleep(60)


def test_pool_is_torn_down_although_the_parent_ignores_sigterm():
    import time

    t0 = time.monotonic()
    old = signal.signal(signal.SIGTERM, lambda *_: None)  # like cli.py's handler: SIGTERM no longer kills
    try:
        with pytest.raises(RuntimeError), fork_pool(1) as pool:
            pool.apply_async(_sleep, (0,))
            raise RuntimeError("stop")  # terminate() must kill the sleeping worker, not wait 60 s
    finally:
        signal.signal(signal.SIGTERM, old)
    assert time.monotonic() - t0 < 30
