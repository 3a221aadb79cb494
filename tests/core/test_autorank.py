"""core/autorank.py: a hand-computed example, edge cases, and the WMT25 en-ja/ja-zh files."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from in2x_cli.core.autorank import autorank, mean_score, percentile, rank_from_z, robust_z


def test_percentile_matches_numpy_linear_interpolation():
    assert percentile([4, 1, 3, 2], 25) == 1.75
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([4, 1, 3, 2], 100) == 4
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 43):
        xs = list(rng.normal(size=n))
        for q in (0, 25, 50, 73.5, 100):
            assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)), abs=1e-12)


def test_hand_computed_example():
    """Four systems, two metrics (m2 lower is better).

    m1 = A 4, B 3, C 2, D 1: median 2.5, P25 1.75, P100 4, scale 2.25
        z = A 2/3, B 2/9, C -2/9, D -2/3
    m2 = A 0.5, B 0.1, C 0.9, D 0.5 (lower better: negate): sorted 0.1 0.5 0.5 0.9, median 0.5,
        P25 = 0.1 + 0.75 * 0.4 = 0.4, P100 0.9, scale 0.5; raw z = A 0, B -0.8, C 0.8, D 0
        negated: A 0, B 4/5, C -4/5, D 0
    mean z = A 1/3, B 23/45, C -23/45, D -1/3;  range 46/45, N = 4
    AutoRank = 1 + 3 (23/45 - z) / (46/45): B 1, A 1 + 24/46 = 35/23, D 1 + 114/46 = 80/23, C 4
    """
    scores = {
        "A": {"m1": 4, "m2": 0.5},
        "B": {"m1": 3, "m2": 0.1},
        "C": {"m1": 2, "m2": 0.9},
        "D": {"m1": 1, "m2": 0.5},
    }
    ranked = autorank(scores, lower_is_better=["m2"])
    assert [r.system for r in ranked] == ["B", "A", "D", "C"]
    got = {r.system: r.autorank for r in ranked}
    want = {"B": Fraction(1), "A": Fraction(35, 23), "D": Fraction(80, 23), "C": Fraction(4)}
    for s, w in want.items():
        assert got[s] == pytest.approx(float(w), abs=1e-12)
    by = {r.system: r for r in ranked}
    assert by["A"].z == pytest.approx({"m1": 2 / 3, "m2": 0.0})
    assert by["B"].mean_z == pytest.approx(23 / 45)
    assert by["C"].scores == {"m1": 2.0, "m2": 0.9}


def test_edge_cases():
    # every system equal: everyone ranks 1
    assert {r.autorank for r in autorank({"a": {"m": 1.0}, "b": {"m": 1.0}})} == {1.0}
    # P100 == P25 (three quarters tie): the spread is replaced by 1, as the organisers' `scale or 1.0`
    assert robust_z({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 0.0}) == {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0, "e": -1.0}
    assert rank_from_z({"x": 0.5}) == {"x": 1.0}
    assert mean_score([1.0, None, 3.0]) == 2.0
    with pytest.raises(ValueError):
        mean_score([None])
    with pytest.raises(ValueError, match="no score for m2"):
        autorank({"a": {"m1": 1, "m2": 2}, "b": {"m1": 2}}, metrics=["m1", "m2"])
    # default metrics: those every system has
    assert autorank({"a": {"m1": 1, "m2": 2}, "b": {"m1": 2}})[0].scores == {"m1": 2.0}


def _organisers_autorank(sys_scores: dict[str, dict[str, float]]) -> dict[str, float]:
    """Independent numpy transcription of robust_scale_metric + average_and_rank."""
    systems = list(sys_scores)
    metrics = sorted(next(iter(sys_scores.values())))
    z = {s: [] for s in systems}
    for m in metrics:
        x = np.array([sys_scores[s][m] for s in systems])
        scale = np.percentile(x, 100) - np.percentile(x, 25) or 1.0
        for s, v in zip(systems, (x - np.median(x)) / scale, strict=True):
            z[s].append(v)
    avg = np.array([np.mean(z[s]) for s in systems])
    ranks = 1 + (len(systems) - 1) * (avg.max() - avg) / (avg.max() - avg.min())
    return dict(zip(systems, ranks.tolist(), strict=True))


@pytest.mark.parametrize(("pair", "in2x_rank"), [("en-ja_JP", 2.29), ("ja-zh_CN", 3.02)])
def test_wmt25_files_rank_in2x_second(shared_data, pair, in2x_rank):
    """On the published WMT25 automatic scores (all 5 metrics, every system in the files), In2x
    is second in both of its pairs, behind Shy (Hunyuan-MT)."""
    per_system: dict[str, dict[str, float]] = {}
    for path in sorted((shared_data / "wmt25" / "automatic-scores").glob("*.jsonl")):
        acc: dict[str, list[float]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            if doc["language_pair"] == pair:
                for m, values in doc["metric_scores"].items():
                    acc.setdefault(m, []).extend(values)
        if acc:
            per_system[path.stem] = {m: mean_score(v) for m, v in acc.items()}
    ranked = autorank(per_system)
    assert len(ranked) == {"en-ja_JP": 43, "ja-zh_CN": 41}[pair]
    assert [r.system for r in ranked[:2]] == ["Shy", "In2x"]
    assert ranked[0].autorank == 1.0 and ranked[-1].autorank == pytest.approx(len(ranked))
    assert ranked[1].autorank == pytest.approx(in2x_rank, abs=0.005)
    reference = _organisers_autorank(per_system)
    for r in ranked:
        assert r.autorank == pytest.approx(reference[r.system], abs=1e-9)
