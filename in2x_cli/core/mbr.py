"""Minimum Bayes Risk (MBR) selection over a pool of candidate translations.

Kumar & Byrne 2004; for LLM/NMT sampling pools: Eikema & Aziz 2020 (https://arxiv.org/abs/2005.10283),
Freitag et al. 2022/2023 (https://arxiv.org/abs/2111.09388). In2x's WMT25 submission
(arXiv 2508.14472) selected among sampled candidates and an ensemble of models this way.

With candidates c_1..c_N (samples from the model(s), which double as pseudo-references) and a
utility u(hypothesis, reference), MBR picks

    ĥ = argmax_i  E_i,   E_i = 1/(N-1) · Σ_{j ≠ i} u(c_i, c_j)

Self-comparison is **excluded** (j ≠ i, by position): u(c, c) is the utility's maximum and would
reward every candidate equally. Identical texts at different positions still count as separate
pseudo-references, so a translation the model produces often gets more votes — the Monte-Carlo
estimate of the expectation under the model's distribution. Ties go to the lowest index (the
caller puts the greedy candidate first). With one candidate, E is undefined (NaN) and it wins.

Documents: a candidate may be a list of aligned segments (paragraphs) with their sources; the
utility of a pair is then the mean segment utility, u(h, r) = 1/P · Σ_p u(h_p, r_p | src_p), which
is how WMT25 scores documents (per paragraph) and keeps COMET within its 512-token window.

Utilities (``UTILITIES``; or a dotted ``module:function`` with the ``UtilityFn`` signature):
``chrf`` sacreBLEU sentence chrF (character 6-grams, β = 2; the default), ``bleu`` sacreBLEU
sentence BLEU with effective order (tokenizer ``ja-mecab`` for Japanese, ``zh`` for Chinese,
``13a`` otherwise), ``comet`` COMET(src, mt = h, ref = r) through a scorer the caller opens (``open_comet(model)``: the
translate stage passes the COMET worker client; a reference-free model turns MBR into QE reranking).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from in2x_cli.core.metrics import CometScorer, tokenizer_for
from in2x_cli.plugins import import_dotted

# hyps, refs, srcs (parallel lists, one entry per pair) and the target language → one score per pair
UtilityFn = Callable[[Sequence[str], Sequence[str], Sequence[str], str], list[float]]


@dataclass(frozen=True)
class MbrChoice:
    index: int
    expected_utility: list[float]  # E_i per candidate (NaN when there is a single candidate)


def mbr_select(utility_matrix: Sequence[Sequence[float]]) -> MbrChoice:
    """``utility_matrix[i][j]`` = u(c_i, c_j) (the diagonal is ignored) → argmax_i mean_{j≠i}."""
    n = len(utility_matrix)
    if n == 0:
        raise ValueError("MBR needs at least one candidate")
    if any(len(row) != n for row in utility_matrix):
        raise ValueError("the utility matrix must be square")
    if n == 1:
        return MbrChoice(0, [math.nan])
    expected = [sum(utility_matrix[i][j] for j in range(n) if j != i) / (n - 1) for i in range(n)]
    best = max(range(n), key=lambda i: (expected[i], -i))
    return MbrChoice(best, expected)


@dataclass(frozen=True)
class MbrGroup:
    """One selection problem: candidates (each a list of aligned segments) and the sources."""

    candidates: Sequence[Sequence[str]]
    sources: Sequence[str]
    tgt_lang: str

    def __post_init__(self) -> None:
        for c in self.candidates:
            if len(c) != len(self.sources):
                raise ValueError(f"candidate has {len(c)} segments, sources have {len(self.sources)}")


def score_triples(triples: dict[str, dict[tuple[str, str, str], float]], utility: UtilityFn) -> int:
    """Fill in place every (hyp, ref, src) triple's utility, one utility call per target language;
    returns how many triples were scored."""
    scored = 0
    for lang, bucket in triples.items():
        keys = list(bucket)
        if not keys:
            continue
        scores = utility([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], lang)
        if len(scores) != len(keys):
            raise ValueError(f"utility returned {len(scores)} scores for {len(keys)} pairs")
        bucket.update(zip(keys, (float(s) for s in scores), strict=True))
        scored += len(keys)
    return scored


def utility_matrices(groups: Sequence[MbrGroup], utility: UtilityFn) -> list[list[list[float]]]:
    """All pairwise utilities for all groups, computed in one utility call per target language
    (COMET batches well) over the distinct (hyp, ref, src) segment triples."""
    triples: dict[str, dict[tuple[str, str, str], float]] = {}
    for g in groups:
        bucket = triples.setdefault(g.tgt_lang, {})
        for i, ci in enumerate(g.candidates):
            for j, cj in enumerate(g.candidates):
                if i == j:
                    continue
                for p, src in enumerate(g.sources):
                    bucket.setdefault((ci[p], cj[p], src), math.nan)
    score_triples(triples, utility)
    out = []
    for g in groups:
        bucket = triples[g.tgt_lang]
        n = len(g.candidates)
        m = [[0.0] * n for _ in range(n)]
        for i, ci in enumerate(g.candidates):
            for j, cj in enumerate(g.candidates):
                if i != j and g.sources:
                    m[i][j] = sum(bucket[(ci[p], cj[p], src)] for p, src in enumerate(g.sources)) / len(g.sources)
        out.append(m)
    return out


def mbr_decode(groups: Sequence[MbrGroup], utility: UtilityFn) -> list[MbrChoice]:
    """MBR choice for every group (pairwise utilities batched across groups)."""
    return [mbr_select(m) for m in utility_matrices(groups, utility)]


# ---------------------------------------------------------------------------------- utilities

_SACRE: dict[tuple[str, str], Any] = {}


def _metric(kind: str, tgt_lang: str) -> Any:
    key = (kind, tgt_lang if kind == "bleu" else "")
    if key not in _SACRE:
        from sacrebleu.metrics import BLEU, CHRF

        _SACRE[key] = CHRF() if kind == "chrf" else BLEU(effective_order=True, tokenize=tokenizer_for(tgt_lang))
    return _SACRE[key]


def chrf_utility(hyps: Sequence[str], refs: Sequence[str], srcs: Sequence[str], tgt_lang: str) -> list[float]:
    """sacreBLEU sentence chrF (0–100) of each hypothesis against its pseudo-reference."""
    metric = _metric("chrf", tgt_lang)
    return [metric.sentence_score(h, [r]).score for h, r in zip(hyps, refs, strict=True)]


def bleu_utility(hyps: Sequence[str], refs: Sequence[str], srcs: Sequence[str], tgt_lang: str) -> list[float]:
    """sacreBLEU sentence BLEU (0–100, effective order) with the target language's tokenizer."""
    metric = _metric("bleu", tgt_lang)
    return [metric.sentence_score(h, [r]).score for h, r in zip(hyps, refs, strict=True)]


def comet_utility(model: str, open_scorer: Callable[[str], CometScorer]) -> UtilityFn:
    """COMET(src, mt=h, ref=r) with the given checkpoint (a hub id or a local model.ckpt dir),
    scored by ``open_scorer(model)`` (the COMET worker client, opened when MBR first needs it)."""

    def score(hyps: Sequence[str], refs: Sequence[str], srcs: Sequence[str], tgt_lang: str) -> list[float]:
        rows = [{"src": s, "mt": h, "ref": r} for h, r, s in zip(hyps, refs, srcs, strict=True)]
        return open_scorer(model).score(rows)

    return score


# Plain registry of factories (options → UtilityFn).
UTILITIES: dict[str, Callable[..., UtilityFn]] = {
    "chrf": lambda **_: chrf_utility,
    "bleu": lambda **_: bleu_utility,
    "comet": lambda comet_model, open_comet, **_: comet_utility(comet_model, open_comet),
}


def get_utility(name: str, **options: Any) -> UtilityFn:
    """A registered utility by name, or ``module:function`` (a ``UtilityFn``)."""
    if name in UTILITIES:
        return UTILITIES[name](**options)
    if ":" not in name:
        raise KeyError(f"unknown MBR utility {name!r} (expected {', '.join(UTILITIES)}, or module:function)")
    return import_dotted(name, what="MBR utility", error=KeyError, callable_=True)
