"""Systems scored in worker processes give the numbers one process gives; the pool never hangs
on a parent that handles SIGTERM itself (the CLI does)."""

import signal

import pytest

from in2x_cli.core.metrics import Bleu, ChrF, MetricContext, score_systems
from in2x_cli.evaluate.parallel import score_all_parallel
from in2x_cli.workers import fork_pool

REFS = ["The cat sat on the mat.", "It is raining in Tokyo today.", "Write a poem about the sea.", "Two plus two is four."]
SYSTEMS = [
    ["The cat sat on a mat.", "It rains in Tokyo today.", "Write a poem on the sea.", "Two and two make four."],
    ["A cat is on the mat.", "Today it is raining in Tokyo.", "Compose a poem about the ocean.", "2 + 2 = 4."],
    ["The cat sat on the mat.", "It is raining in Tokyo today.", "Write a poem about the sea.", "Two plus two is four."],
]


def test_two_workers_score_exactly_like_one_process(monkeypatch):
    ctx = MetricContext(tgt_lang="en")
    one = {"bleu": score_systems(Bleu.build(None, ctx), SYSTEMS, REFS, REFS), "chrf": score_systems(ChrF.build(None, ctx), SYSTEMS, REFS, REFS)}
    monkeypatch.setenv("IN2X_EVAL_WORKERS", "2")
    two = score_all_parallel({"bleu": Bleu.build(None, ctx), "chrf": ChrF.build(None, ctx)}, SYSTEMS, REFS, REFS)
    assert list(two) == ["bleu", "chrf"]
    for key in one:
        assert [r.score for r in two[key]] == [r.score for r in one[key]] and [r.segments for r in two[key]] == [r.segments for r in one[key]]
        assert all((a.stats == b.stats).all() for a, b in zip(one[key], two[key], strict=True))


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
