"""The MBR family: selection rules over one candidate pool, as in the mbrs library
(Deguchi et al. 2024, https://github.com/naist-nlp/mbrs), chosen by ``in2x translate --mbr-method``.

Every rule sees the same pool c_1..c_N (greedy first, then samples, per model of an ensemble);
the candidates double as pseudo-references. u(h, r) is the utility (``core.mbr``: chrF, BLEU,
COMET); a document's utility is the mean over its aligned paragraphs, as in ``core.mbr``.

``mbr``     plain MBR (``core.mbr.mbr_select``): argmax_i 1/(N-1) Σ_{j≠i} u(c_i, c_j); N(N-1) pairs.

``pruned``  confidence-based pruning (Cheng & Vlachos 2023, https://aclanthology.org/2023.emnlp-main.767/,
            Algorithm 1; mbrs ``DecoderPruningMBR``). Pseudo-references are taken in pool order in
            growing prefixes r_t = r_1·2^t (capped at N). At step t every surviving hypothesis h is
            scored against the new references (j ≠ h); its estimate is Ê_h = mean_j u(h, c_j) over the
            first r_t references. B bootstrap resamples of those r_t columns give each hypothesis a win
            rate w_h = P_b[Ê_h^(b) ≥ Ê_best^(b)] against the current best; hypotheses with
            w_h ≤ 1 − α are pruned (the current best always stays). Decoding stops when one hypothesis
            is left or the references run out; the winner is the surviving argmax of Ê. With no
            pruning it equals plain MBR; every pruned hypothesis saves its remaining utility calls.
            Defaults α = 0.99, B = 500 (the paper's and mbrs's); r_1 = 8 (mbrs's schedule 8, 16, 32…).

``qe``      reranking by a quality-estimation metric (CometKiwi, Rei et al. 2022): argmax_i q(src, c_i),
            N scores, no pseudo-references (mbrs ``DecoderRerank``). Paragraph scores are averaged.

``model``   model-based MBR (Jinnai et al. 2024, https://arxiv.org/abs/2311.05263): the pseudo-references
            are the *distinct* candidates weighted by the model's probability instead of their sample
            counts: E_i = Σ_y p̂(y) u(c_i, y), p̂(y) = exp(ℓ_y) / Σ_y' exp(ℓ_y'), ℓ the candidate's
            log-probability (sum over its tokens, from the backend). Self-comparison is included, as
            in the paper (a likely candidate gets u(c_i, c_i)·p̂(c_i)).

Ties go to the lowest index everywhere (the greedy candidate).
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from in2x_cli.core.mbr import MbrChoice, MbrGroup, UtilityFn, mbr_select, score_triples, utility_matrices

MBR_METHODS: dict[str, str] = {
    "mbr": "https://arxiv.org/abs/2005.10283",
    "pruned": "https://aclanthology.org/2023.emnlp-main.767/",
    "qe": "https://aclanthology.org/2022.wmt-1.60/",
    "model": "https://arxiv.org/abs/2311.05263",
}

# srcs, hyps (parallel, one entry per segment) and the target language → one QE score per segment
QeFn = Callable[[Sequence[str], Sequence[str], str], list[float]]


@dataclass(frozen=True)
class PruningConfig:
    """Cheng & Vlachos 2023: confidence threshold α, first reference count r_1 (doubling), B resamples."""

    alpha: float = 0.99
    first_refs: int = 8
    bootstrap: int = 500
    seed: int = 0

    def schedule(self, n: int) -> list[int]:
        """r_1, 2·r_1, … capped at ``n`` (the last step always uses every reference)."""
        steps, r = [], max(1, self.first_refs)
        while True:
            steps.append(min(r, n))
            if r >= n:
                return steps
            r *= 2


@dataclass(frozen=True)
class FamilyResult:
    """The choices and how many utility (or QE) evaluations of segment pairs they cost."""

    choices: list[MbrChoice]
    evaluations: int


# ---------------------------------------------------------------------------------- batching


def pair_scores(groups: Sequence[MbrGroup], pairs: Sequence[Iterable[tuple[int, int]]], utility: UtilityFn) -> tuple[list[dict[tuple[int, int], float]], int]:
    """u(c_i, c_j) for the requested (i, j) pairs of every group (document = mean over paragraphs),
    computed in one utility call per target language over the distinct segment triples. Returns the
    scores per group and the number of triples scored."""
    wanted = [list(p) for p in pairs]
    triples: dict[str, dict[tuple[str, str, str], float]] = {}
    for g, ps in zip(groups, wanted, strict=True):
        bucket = triples.setdefault(g.tgt_lang, {})
        for i, j in ps:
            for p, src in enumerate(g.sources):
                bucket.setdefault((g.candidates[i][p], g.candidates[j][p], src), math.nan)
    scored = score_triples(triples, utility)
    out = []
    for g, ps in zip(groups, wanted, strict=True):
        bucket = triples[g.tgt_lang]
        n_src = len(g.sources) or 1
        out.append({(i, j): sum(bucket[(g.candidates[i][p], g.candidates[j][p], s)] for p, s in enumerate(g.sources)) / n_src for i, j in ps})
    return out, scored


# ---------------------------------------------------------------------------------- pruned MBR


def bootstrap_survivors(scores: Sequence[Sequence[float]], alpha: float, bootstrap: int, seed: int) -> tuple[int, list[int], list[float]]:
    """One pruning step of Cheng & Vlachos 2023 (Algorithm 2). ``scores[h][j]`` = u(h, ref_j), NaN
    where not counted (self-comparison). Returns the current best (argmax of the row means, ties to
    the lowest row), the surviving rows (win rate > 1 − α, the best always included) and the win rates."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    h, r = s.shape
    with warnings.catch_warnings():  # an all-NaN slice (a resample of only the self column) is -inf
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(s, axis=1)
    means = np.where(np.isnan(means), -np.inf, means)
    best = int(np.argmax(means))  # first maximum
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, r, size=(bootstrap, r))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        boot = np.nanmean(s[:, idx], axis=2)  # (h, bootstrap)
    boot = np.where(np.isnan(boot), -np.inf, boot)
    wins = (boot >= boot[best][None, :]).mean(axis=1)
    wins[best] = 1.0
    survivors = [i for i in range(h) if wins[i] > 1 - alpha]
    return best, survivors, [float(w) for w in wins]


def _group_seed(seed: int, group: MbrGroup) -> int:
    """A resampling seed from ``seed`` and the pool itself, so a row's choice does not depend on
    the other rows of the run (sharding, resuming)."""
    text = "\x1f".join("\x1e".join(c) for c in group.candidates)
    return (seed * 1_000_003 + zlib.crc32(text.encode("utf-8"))) % (2**32)


def pruned_mbr_decode(groups: Sequence[MbrGroup], utility: UtilityFn, config: PruningConfig = PruningConfig()) -> FamilyResult:
    """Confidence-based pruning MBR for every group (see the module docstring); the utility calls of
    a step are batched across groups. ``expected_utility`` is each candidate's last estimate."""
    n = [len(g.candidates) for g in groups]
    alive = [list(range(k)) for k in n]
    done = [k <= 1 for k in n]
    prev = [0] * len(groups)
    table: list[dict[tuple[int, int], float]] = [{} for _ in groups]
    estimate: list[list[float]] = [[math.nan] * k for k in n]
    schedules = [config.schedule(k) for k in n]
    evaluations = 0
    step = 0
    while not all(done):
        todo = []
        for gi in range(len(groups)):
            r = schedules[gi][step] if not done[gi] and step < len(schedules[gi]) else prev[gi]
            todo.append([(h, j) for h in alive[gi] for j in range(prev[gi], r) if j != h] if not done[gi] and r > prev[gi] else [])
        scores, count = pair_scores(groups, todo, utility)
        evaluations += count
        for gi, g in enumerate(groups):
            if done[gi]:
                continue
            if not todo[gi]:
                done[gi] = True
                continue
            table[gi].update(scores[gi])
            r = schedules[gi][step]
            prev[gi] = r
            rows = [[table[gi].get((h, j), math.nan) for j in range(r)] for h in alive[gi]]
            best, survivors, _ = bootstrap_survivors(rows, config.alpha, config.bootstrap, _group_seed(config.seed + step, g))
            for h, row in zip(alive[gi], rows, strict=True):
                vals = [v for v in row if not math.isnan(v)]
                estimate[gi][h] = sum(vals) / len(vals) if vals else math.nan
            alive[gi] = [alive[gi][s] for s in survivors]
            if len(alive[gi]) == 1 or r >= n[gi]:
                done[gi] = True
        step += 1
    choices = []
    for gi, k in enumerate(n):
        if k == 1:
            choices.append(MbrChoice(0, [math.nan]))
            continue
        best = max(alive[gi], key=lambda h, gi=gi: (_finite(estimate[gi][h]), -h))
        choices.append(MbrChoice(best, estimate[gi]))
    return FamilyResult(choices, evaluations)


def _finite(x: float) -> float:
    return -math.inf if math.isnan(x) else x


# ---------------------------------------------------------------------------------- QE reranking


def qe_select(scores: Sequence[float]) -> MbrChoice:
    """argmax_i q(src, c_i) (ties to the lowest index)."""
    if not scores:
        raise ValueError("QE reranking needs at least one candidate")
    best = max(range(len(scores)), key=lambda i: (_finite(scores[i]), -i))
    return MbrChoice(best, [float(s) for s in scores])


def qe_rerank(groups: Sequence[MbrGroup], qe: QeFn) -> FamilyResult:
    """QE score per candidate (mean over its paragraphs), one QE call per target language over the
    distinct (src, hyp) segments of all groups; argmax per group."""
    buckets: dict[str, dict[tuple[str, str], float]] = {}
    for g in groups:
        b = buckets.setdefault(g.tgt_lang, {})
        for c in g.candidates:
            for p, src in enumerate(g.sources):
                b.setdefault((src, c[p]), math.nan)
    evaluations = 0
    for lang, b in buckets.items():
        keys = list(b)
        scores = qe([k[0] for k in keys], [k[1] for k in keys], lang)
        if len(scores) != len(keys):
            raise ValueError(f"QE returned {len(scores)} scores for {len(keys)} segments")
        b.update(zip(keys, (float(s) for s in scores), strict=True))
        evaluations += len(keys)
    choices = []
    for g in groups:
        b = buckets[g.tgt_lang]
        n_src = len(g.sources) or 1
        choices.append(qe_select([sum(b[(s, c[p])] for p, s in enumerate(g.sources)) / n_src for c in g.candidates]))
    return FamilyResult(choices, evaluations)


# ---------------------------------------------------------------------------------- model-based MBR


def model_based_select(utility_matrix: Sequence[Sequence[float]], logprobs: Sequence[float], texts: Sequence[object] | None = None) -> MbrChoice:
    """Jinnai et al. 2024: E_i = Σ_{y distinct} p̂(y)·u(c_i, y), p̂ = softmax of the log-probabilities
    over the distinct candidates (the first occurrence of a repeated text stands for it; ``texts``
    identifies repeats, default: none repeat). The diagonal u(c_i, c_i) counts."""
    n = len(utility_matrix)
    if n == 0 or len(logprobs) != n:
        raise ValueError("model-based MBR needs one log-probability per candidate")
    seen: set[object] = set()
    distinct = []
    for j in range(n):
        key = texts[j] if texts is not None else j
        if key not in seen:
            seen.add(key)
            distinct.append(j)
    top = max(logprobs[j] for j in distinct)
    z = sum(math.exp(logprobs[j] - top) for j in distinct)
    weight = {j: math.exp(logprobs[j] - top) / z for j in distinct}
    expected = [sum(weight[j] * utility_matrix[i][j] for j in distinct) for i in range(n)]
    best = max(range(n), key=lambda i: (expected[i], -i))
    return MbrChoice(best, expected)


def model_based_decode(groups: Sequence[MbrGroup], utility: UtilityFn, logprobs: Sequence[Sequence[float | None]]) -> FamilyResult:
    """Model-based MBR per group (utilities batched across groups, self pairs included)."""
    for lp in logprobs:
        if any(x is None or math.isnan(x) for x in lp):
            raise ValueError("model-based MBR needs the log-probability of every candidate (the backend returned none)")
    wanted = []
    for g in groups:
        texts = [tuple(c) for c in g.candidates]
        distinct = [j for j in range(len(texts)) if texts.index(texts[j]) == j]
        wanted.append([(i, j) for i in range(len(texts)) for j in distinct])
    scores, count = pair_scores(groups, wanted, utility)
    choices = []
    for g, lp, sc in zip(groups, logprobs, scores, strict=True):
        n = len(g.candidates)
        m = [[sc.get((i, j), 0.0) for j in range(n)] for i in range(n)]
        choices.append(model_based_select(m, [float(x) for x in lp], [tuple(c) for c in g.candidates]))  # type: ignore[arg-type]
    return FamilyResult(choices, count)


# ---------------------------------------------------------------------------------- dispatch


def plain_mbr_decode(groups: Sequence[MbrGroup], utility: UtilityFn) -> FamilyResult:
    """Plain MBR (``core.mbr``), with its evaluation count."""
    calls = 0

    def counting(h: Sequence[str], r: Sequence[str], s: Sequence[str], lang: str) -> list[float]:
        nonlocal calls
        calls += len(h)
        return utility(h, r, s, lang)

    return FamilyResult([mbr_select(m) for m in utility_matrices(groups, counting)], calls)


def decode_family(
    method: str,
    groups: Sequence[MbrGroup],
    utility: UtilityFn,
    *,
    qe: QeFn | None = None,
    logprobs: Sequence[Sequence[float | None]] | None = None,
    pruning: PruningConfig = PruningConfig(),
) -> FamilyResult:
    """Select one candidate per group with ``method`` (a key of ``MBR_METHODS``)."""
    if method == "mbr":
        return plain_mbr_decode(groups, utility)
    if method == "pruned":
        return pruned_mbr_decode(groups, utility, pruning)
    if method == "qe":
        if qe is None:
            raise ValueError("QE reranking needs a QE scorer")
        return qe_rerank(groups, qe)
    if method == "model":
        if logprobs is None:
            raise ValueError("model-based MBR needs candidate log-probabilities")
        return model_based_decode(groups, utility, logprobs)
    raise KeyError(f"unknown MBR method {method!r} (expected {', '.join(MBR_METHODS)})")
