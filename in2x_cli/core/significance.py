"""Paired significance tests between MT systems on the same segments, with 95% confidence
intervals: the tests of sacreBLEU (sacrebleu/significance.py, Post 2018), generalised from
sacreBLEU's metrics to any metric that is a function of summed segment statistics (COMET's
statistics are [score, 1], so its score is the mean).

Every system is compared with the first one (the baseline). Let s(·) be the metric computed from
summed statistics, X_b and X_s the baseline's and the system's segment statistics, and
δ = |s(X_b) − s(X_s)| the observed difference.

Paired bootstrap resampling (Koehn 2004, https://aclanthology.org/W04-3250; the Moses script
bootstrap-hypothesis-difference-significance.pl): draw B index vectors I_1..I_B of n segments
with replacement (one draw, shared by all systems); d_i = |s(X_s[I_i]) − s(X_b[I_i])|;
p = (#{i : d_i − mean(d) > δ} + 1) / (B + 1)   (the "+1" keeps the test conservative).

Paired approximate randomisation (Riezler & Maxwell 2005, https://aclanthology.org/W05-0908):
for each of R trials swap each segment's two outputs with probability ½ (a random mask M_t),
a_t = s(M_t X_b + ¬M_t X_s), b_t = s(¬M_t X_b + M_t X_s);
p = (#{t : |a_t − b_t| > δ} + 1) / (R + 1).

95% confidence interval from B bootstrap scores sorted ascending (sacreBLEU's estimate_ci):
low = x[⌊B/40⌋], high = x[B − ⌊B/40⌋ − 1], ci = (high − low) / 2, mean = mean(x).

Determinism: the random draws come from ``numpy.random.default_rng(seed)`` in exactly
sacreBLEU's order (one generator per system comparison, seeded identically), so with the same
seed (sacreBLEU's default is 12345, ``SACREBLEU_SEED``) and sacreBLEU's float32 resampling
dtype for its metrics, p-values, means and intervals equal sacreBLEU's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

ScoreFn = Callable[[Any], float]  # summed statistics (1-D array) → score

DEFAULT_BS_SAMPLES = 1000
DEFAULT_AR_TRIALS = 10000
DEFAULT_SEED = 12345  # sacreBLEU's SACREBLEU_SEED default


@dataclass(frozen=True)
class Estimate:
    """A system's score with its bootstrap interval and, except for the baseline, a p-value."""

    score: float
    mean: float | None = None
    ci: float | None = None  # half-width of the 95% interval (sacreBLEU's "±")
    low: float | None = None
    high: float | None = None
    p_value: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"score": self.score, "mean": self.mean, "ci": self.ci, "low": self.low, "high": self.high, "p_value": self.p_value}


def estimate_ci(scores: Sequence[float]) -> tuple[float, float, float, float]:
    """(mean, half-width, low, high) of the 95% interval of bootstrap scores."""
    import numpy as np

    x = np.sort(np.asarray(scores, dtype=np.float64))
    n = len(x)
    if n == 0:
        raise ValueError("no bootstrap scores")
    lower_idx = n // 40
    upper_idx = n - lower_idx - 1
    low, high = float(x[lower_idx]), float(x[upper_idx])
    return float(x.mean()), 0.5 * (high - low), low, high


def p_value(samples: Any, observed: float) -> float:
    """(#{samples > observed} + 1) / (len + 1).

    One deviation from sacreBLEU: an observed difference of exactly 0 gives p = 1. sacreBLEU
    would return 1/(len + 1) for two identical outputs (every resampled difference is 0 as well,
    and 0 > 0 never counts), calling a system significantly different from itself."""
    import numpy as np

    if observed == 0:
        return 1.0
    return (int(np.sum(np.asarray(samples) > observed)) + 1) / (len(samples) + 1)


def _resampled_scores(stats: Any, idxs: Any, score_fn: ScoreFn, dtype: str) -> Any:
    import numpy as np

    arr = np.asarray(stats, dtype=dtype)
    return np.array([score_fn(arr[idx].sum(0)) for idx in idxs], dtype=np.float64)


def _check(stats: Sequence[Any], scores: Sequence[float]) -> int:
    if not stats:
        raise ValueError("no systems")
    if len(stats) != len(scores):
        raise ValueError(f"{len(stats)} statistics arrays but {len(scores)} scores")
    n = len(stats[0])
    for i, s in enumerate(stats):
        if len(s) != n:
            raise ValueError(f"system {i} has {len(s)} segments, the baseline {n}: paired tests need the same segments")
    if n == 0:
        raise ValueError("no segments")
    return n


def bootstrap_ci(stats: Any, score: float, score_fn: ScoreFn, *, n_samples: int = DEFAULT_BS_SAMPLES, seed: int = DEFAULT_SEED, dtype: str = "float64") -> Estimate:
    """Bootstrap 95% interval of one system (``sacrebleu --confidence``)."""
    import numpy as np

    n = _check([stats], [score])
    idxs = np.random.default_rng(seed).choice(n, size=(n_samples, n), replace=True)
    mean, ci, low, high = estimate_ci(_resampled_scores(stats, idxs, score_fn, dtype))
    return Estimate(score, mean, ci, low, high)


def paired_bootstrap(
    stats: Sequence[Any],
    scores: Sequence[float],
    score_fn: ScoreFn,
    *,
    n_samples: int = DEFAULT_BS_SAMPLES,
    seed: int = DEFAULT_SEED,
    dtype: str = "float64",
) -> list[Estimate]:
    """Paired bootstrap resampling of systems ``stats[1:]`` against ``stats[0]``.

    ``stats[i]`` is system i's [n_segments, k] statistics, ``scores[i]`` its actual score.
    Returns one Estimate per system (the baseline's without a p-value)."""
    import numpy as np

    n = _check(stats, scores)
    # sacreBLEU seeds a fresh generator per comparison with the same seed, so every comparison
    # (and the baseline's own interval) uses the same index draw: draw it once.
    idxs = np.random.default_rng(seed).choice(n, size=(n_samples, n), replace=True)
    base = _resampled_scores(stats[0], idxs, score_fn, dtype)
    mean, ci, low, high = estimate_ci(base)
    out = [Estimate(float(scores[0]), mean, ci, low, high)]
    for sys_stats, sys_score in zip(stats[1:], scores[1:], strict=True):
        resampled = _resampled_scores(sys_stats, idxs, score_fn, dtype)
        mean, ci, low, high = estimate_ci(resampled)
        diffs = np.abs(resampled - base)
        p = p_value(diffs - diffs.mean(), abs(float(scores[0]) - float(sys_score)))
        out.append(Estimate(float(sys_score), mean, ci, low, high, p))
    return out


def paired_approximate_randomization(
    stats: Sequence[Any],
    scores: Sequence[float],
    score_fn: ScoreFn,
    *,
    n_trials: int = DEFAULT_AR_TRIALS,
    n_confidence: int = DEFAULT_BS_SAMPLES,
    seed: int = DEFAULT_SEED,
    dtype: str = "float64",
) -> list[Estimate]:
    """Paired approximate randomisation of ``stats[1:]`` against ``stats[0]``; the intervals
    come from ``n_confidence`` bootstrap resamples (0 = no intervals), as ``sacrebleu --paired-ar``."""
    import numpy as np

    n = _check(stats, scores)
    rng = np.random.default_rng(seed)
    pos = rng.integers(2, size=(n_trials, n), dtype=bool)
    neg = ~pos
    bs_idxs = rng.choice(n, size=(n_confidence, n), replace=True) if n_confidence > 0 else None
    base = np.asarray(stats[0])
    out = []
    if bs_idxs is not None:
        # the baseline's interval: sacreBLEU draws it from a fresh generator with the same seed
        base_idxs = np.random.default_rng(seed).choice(n, size=(n_confidence, n), replace=True)
        mean, ci, low, high = estimate_ci(_resampled_scores(stats[0], base_idxs, score_fn, dtype))
        out.append(Estimate(float(scores[0]), mean, ci, low, high))
    else:
        out.append(Estimate(float(scores[0])))
    for sys_stats, sys_score in zip(stats[1:], scores[1:], strict=True):
        sys_arr = np.asarray(sys_stats)
        shuf_a = pos @ base + neg @ sys_arr
        shuf_b = neg @ base + pos @ sys_arr
        a = np.array([score_fn(row) for row in shuf_a], dtype=np.float64)
        b = np.array([score_fn(row) for row in shuf_b], dtype=np.float64)
        p = p_value(np.abs(a - b), abs(float(scores[0]) - float(sys_score)))
        if bs_idxs is not None:
            mean, ci, low, high = estimate_ci(_resampled_scores(sys_stats, bs_idxs, score_fn, dtype))
            out.append(Estimate(float(sys_score), mean, ci, low, high, p))
        else:
            out.append(Estimate(float(sys_score), p_value=p))
    return out
