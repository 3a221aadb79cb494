"""core/significance.py: hand-checked pieces, equality with sacreBLEU's PairedTest, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from in2x_cli.core.metrics import Bleu, ChrF, MetricContext, score_system
from in2x_cli.core.significance import (
    bootstrap_ci,
    estimate_ci,
    p_value,
    paired_approximate_randomization,
    paired_bootstrap,
)


def mean_score(totals):
    return float(totals[0] / totals[1])


def as_stats(scores):
    scores = np.asarray(scores, dtype=np.float64)
    return np.column_stack([scores, np.ones_like(scores)])


def test_estimate_ci_by_hand():
    # 40 sorted scores 0..39: low = x[40 // 40] = 1, high = x[40 - 1 - 1] = 38
    mean, ci, low, high = estimate_ci(list(range(39, -1, -1)))
    assert (mean, ci, low, high) == (19.5, 18.5, 1.0, 38.0)


def test_p_value_by_hand():
    assert p_value([0.1, 0.5, 0.9, 2.0], 0.5) == pytest.approx(3 / 5)  # 0.9 and 2.0 exceed 0.5
    assert p_value([0.1, 0.2], 1.0) == pytest.approx(1 / 3)
    assert p_value([0.0, 0.0], 0.0) == 1.0  # identical systems are never "significantly" different


def test_identical_and_clearly_better_systems():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, size=200)
    stats = [as_stats(base), as_stats(base), as_stats(base + 0.2)]
    scores = [float(base.mean()), float(base.mean()), float(base.mean() + 0.2)]
    for est in (
        paired_bootstrap(stats, scores, mean_score, n_samples=300, seed=1),
        paired_approximate_randomization(stats, scores, mean_score, n_trials=300, n_confidence=200, seed=1),
    ):
        assert est[0].p_value is None
        assert est[1].p_value == 1.0
        assert est[2].p_value == pytest.approx(1 / 301)  # no resample comes close to +0.2
        for e in est:
            assert e.low <= e.mean <= e.high and e.ci == pytest.approx((e.high - e.low) / 2)
            assert e.low <= e.score <= e.high


def test_shape_errors():
    with pytest.raises(ValueError, match="same segments"):
        paired_bootstrap([as_stats([1, 2]), as_stats([1])], [1.5, 1.0], mean_score)
    with pytest.raises(ValueError, match="scores"):
        paired_bootstrap([as_stats([1, 2])], [1.5, 1.0], mean_score)


def _wmt24_stats(shared_data, systems):
    d = shared_data / "wmt24" / "en-ja"
    read = lambda p: p.read_text(encoding="utf-8").split("\n")[1:401]  # noqa: E731 - 400 segments, no canary
    ref, src = read(d / "en-ja.refA.txt"), read(d / "en-ja.txt")
    hyps = {s: read(d / "system-outputs" / f"{s}.txt") for s in systems}
    return src, ref, hyps


@pytest.mark.parametrize("test_type", ["bs", "ar"])
def test_equal_to_sacrebleu_paired_test(shared_data, monkeypatch, test_type):
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    systems = ["GPT-4", "Aya23", "Claude-3.5"]
    src, ref, hyps = _wmt24_stats(shared_data, systems)
    monkeypatch.setenv("SACREBLEU_SEED", "7")  # PairedTest reads its seed from the environment
    n = 300
    theirs_metrics = {"BLEU": BLEU(tokenize="ja-mecab", references=[ref]), "chrF2++": CHRF(word_order=2, references=[ref])}
    _, theirs = PairedTest(
        [(s, hyps[s]) for s in systems], theirs_metrics, None, test_type=test_type, n_samples=n, n_ar_confidence=200 if test_type == "ar" else -1
    )()
    ctx = MetricContext(tgt_lang="ja")
    for key, metric in (("BLEU", Bleu.build(None, ctx)), ("chrF2++", ChrF.build(None, ctx))):
        results = [score_system(metric, hyps[s], ref, src) for s in systems]
        stats, scores = [r.stats for r in results], [r.score for r in results]
        if test_type == "bs":
            ours = paired_bootstrap(stats, scores, metric.score_from_stats, n_samples=n, seed=7, dtype=metric.resample_dtype)
        else:
            ours = paired_approximate_randomization(
                stats, scores, metric.score_from_stats, n_trials=n, n_confidence=200, seed=7, dtype=metric.resample_dtype
            )
        for mine, their in zip(ours, theirs[key], strict=True):
            assert mine.score == their.score
            assert mine.p_value == their.p_value, key
            # sacreBLEU averages float32 resample scores in float32 for chrF; we average in float64
            assert mine.mean == pytest.approx(their.mean, rel=1e-6)
            assert mine.ci == pytest.approx(their.ci, rel=1e-6)


def test_deterministic_by_seed():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(size=150), rng.uniform(size=150)
    stats, scores = [as_stats(a), as_stats(b)], [float(a.mean()), float(b.mean())]
    one = paired_bootstrap(stats, scores, mean_score, n_samples=200, seed=11)
    again = paired_bootstrap(stats, scores, mean_score, n_samples=200, seed=11)
    other = paired_bootstrap(stats, scores, mean_score, n_samples=200, seed=12)
    assert one == again
    assert one[1].ci != other[1].ci
    ar1 = paired_approximate_randomization(stats, scores, mean_score, n_trials=200, n_confidence=0, seed=5)
    assert ar1 == paired_approximate_randomization(stats, scores, mean_score, n_trials=200, n_confidence=0, seed=5)
    assert ar1[1].ci is None and ar1[1].p_value is not None
    single = bootstrap_ci(stats[0], scores[0], mean_score, n_samples=200, seed=11)
    assert single == one[0]  # the baseline's interval is the single-system interval
