"""Score one test set: every system with every metric (``core.metrics``), the paired tests
(``core.significance``), the ``--by`` breakdowns and AutoRank (``core.autorank``) → the result
entry of the ``in2x.eval/1`` document (``io.documents.EVAL_SCHEMA_DOC``) and the segment rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from in2x_cli.errors import InputError, UserError
from in2x_cli.evaluate.config import BY_FIELDS, EvalConfig
from in2x_cli.evaluate.gemba_report import judge_counts
from in2x_cli.evaluate.inputs import TestSet


def check_references(ts: TestSet, needing: Sequence[str]) -> None:
    """Every segment has a reference, or no metric in ``needing`` is requested."""
    if not needing:
        return
    for seg in ts.segments:
        if seg.ref is None:
            raise InputError(
                f"no reference ('ref'), but {', '.join(needing)} need one: add references or use reference-free "
                "metrics (cometkiwi)",
                seg.where,
            )


def check_sources(ts: TestSet, metrics: dict[str, Any], text_mode_without_src: bool) -> None:
    from in2x_cli.core.metrics import Comet, FunctionMetric

    needing = [k for k, m in metrics.items() if isinstance(m, (Comet, FunctionMetric)) or getattr(m, "needs_source", False)]
    if needing and text_mode_without_src:
        raise UserError(f"{', '.join(needing)} score translations against their sources: pass --src")


def _groups(ts: TestSet, by: str) -> dict[str, list[int]]:
    attr = BY_FIELDS[by]
    out: dict[str, list[int]] = {}
    for i, seg in enumerate(ts.segments):
        value = getattr(seg, attr)
        out.setdefault("(none)" if value is None else str(value), []).append(i)
    return out


def score_test_set(
    ts: TestSet, metrics: dict[str, Any], cfg: EvalConfig, step: Callable[[str], None] = lambda _d: None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score every system of ``ts`` with every metric. Returns the result dict (EVAL_SCHEMA_DOC) and,
    when ``cfg.segments`` is set, the segment rows."""
    from in2x_cli.core.autorank import autorank
    from in2x_cli.core.significance import bootstrap_ci, paired_approximate_randomization, paired_bootstrap
    from in2x_cli.evaluate.autorank import segment_set_digest
    from in2x_cli.evaluate.parallel import score_all_parallel

    names = list(ts.systems)
    srcs = [s.src for s in ts.segments]
    refs = None if any(s.ref is None for s in ts.segments) else [s.ref for s in ts.segments]
    # segment scores always: their means are the system scores AutoRank ranks on (cheap: ~1% of the statistics' cost)
    step(f"{', '.join(metrics)} × {len(names)} systems")
    scored: dict[str, list[Any]] = score_all_parallel(metrics, [ts.systems[n] for n in names], refs, srcs, segments=True)
    for _ in range(len(metrics) * len(names) - 1):
        step(f"{', '.join(metrics)} × {len(names)} systems")
    judged: dict[str, list[list[Any]]] = {}
    for key, metric in metrics.items():
        if callable(getattr(metric, "judgements", None)):  # an LLM judge (gemba-esa): its spans, per system
            judged[key] = metric.judgements()

    systems: list[dict[str, Any]] = [{"system": n, "segments": len(ts.segments), "scores": {}} for n in names]
    for entry in systems:  # rows in2x translate marked as cut at --max-tokens: a score to read with care
        if entry["system"] in ts.models:
            entry["model"] = ts.models[entry["system"]]
        if entry["system"] in ts.truncated:
            entry["truncated"] = ts.truncated[entry["system"]][0]
    for key, metric in metrics.items():
        for entry, res in zip(systems, scored[key], strict=True):
            entry["scores"][key] = res.score
            entry.setdefault("segment_means", {})[key] = _segment_mean(res.segments)
            detail = metric.detail(res.stats.sum(axis=0).tolist())
            if detail:
                entry.setdefault("verbose_score", {})[key] = detail
    for key, per_system in judged.items():
        for entry, results in zip(systems, per_system, strict=True):
            entry.setdefault("judged", {})[key] = judge_counts(results)

    significance = None
    if cfg.paired:
        single = len(names) == 1  # nothing to compare with: the system's bootstrap interval only
        n = cfg.paired_n or (1000 if cfg.paired == "bs" or single else 10000)
        test = "bootstrap-ci" if single else cfg.paired
        significance = {"test": test, "samples": n, "seed": cfg.seed, "level": 0.95}
        if test == "ar":
            significance["confidence_samples"] = cfg.paired_ar_confidence
        for key, metric in metrics.items():
            step(f"{test} {key}")
            stats = [r.stats for r in scored[key]]
            scores = [r.score for r in scored[key]]
            kw = {"seed": cfg.seed, "dtype": metric.resample_dtype}
            if single:
                estimates = [bootstrap_ci(stats[0], scores[0], metric.score_from_stats, n_samples=n, **kw)]
            elif test == "bs":
                estimates = paired_bootstrap(stats, scores, metric.score_from_stats, n_samples=n, **kw)
            else:
                estimates = paired_approximate_randomization(
                    stats, scores, metric.score_from_stats, n_trials=n, n_confidence=cfg.paired_ar_confidence, **kw
                )
            for entry, est in zip(systems, estimates, strict=True):
                entry.setdefault("significance", {})[key] = est.to_dict()

    for by in cfg.by:
        groups = _groups(ts, by)
        for entry, i in zip(systems, range(len(names)), strict=True):
            table = entry.setdefault("by", {}).setdefault(by, {})
            for value, idx in groups.items():
                table[value] = {
                    "segments": len(idx),
                    "segment_set": segment_set_digest((ts.segments[j].id, ts.segments[j].src, ts.segments[j].ref) for j in idx),
                    "scores": {key: metrics[key].corpus_score(scored[key][i].stats[idx]) for key in metrics},
                    "segment_means": {key: _segment_mean([scored[key][i].segments[j] for j in idx]) for key in metrics},
                }

    result: dict[str, Any] = {
        "pair": ts.pair,
        "src_lang": ts.src_lang,
        "tgt_lang": ts.tgt_lang,
        "source": ts.source,
        "segments": len(ts.segments),
        "segment_set": segment_set_digest((s.id, s.src, s.ref) for s in ts.segments),  # what AutoRank checks before comparing runs
        "metrics": {
            key: {
                "name": getattr(m, "key", m.name),
                "signature": m.signature(),
                "segment_signature": m.segment_signature(),
                "higher_is_better": bool(m.higher_is_better),
            }
            for key, m in metrics.items()
        },
        "baseline": names[0],
        "significance": significance,
        "systems": systems,
    }
    if cfg.autorank:
        # WMT25's system score is the mean segment score per metric (not corpus BLEU/chrF/TER), so
        # this ranking equals `in2x eval autorank` over this JSON or over the --segments file
        ranked = autorank(
            {e["system"]: {k: v for k, v in e["segment_means"].items() if v is not None} for e in systems}, lower_is_better=[k for k, m in metrics.items() if not m.higher_is_better]
        )
        result["autorank"] = [r.to_dict() for r in ranked]

    rows: list[dict[str, Any]] = []
    if cfg.segments:
        for i, name in enumerate(names):
            seg_scores = {key: scored[key][i].segments for key in metrics}
            for j, (seg, hyp) in enumerate(zip(ts.segments, ts.systems[name], strict=True)):
                row = {"id": seg.id, "system": name, "src_lang": ts.src_lang, "tgt_lang": ts.tgt_lang}
                row.update({"doc_id": seg.doc_id, "domain": seg.domain, "src": seg.src, "ref": seg.ref, "hyp": hyp})
                row["scores"] = {key: seg_scores[key][j] for key in metrics}
                if judged:
                    row["judgements"] = {key: judged[key][i][j].to_dict() for key in judged}
                rows.append({k: v for k, v in row.items() if v is not None})
    return result, rows


def _segment_mean(scores: Sequence[float]) -> float | None:
    """AutoRank's system score (core.autorank.mean_score, the same sum the readers of --segments
    files compute, so both give bit-identical numbers); None when nothing is finite (NaN scores)."""
    import math

    from in2x_cli.core.autorank import mean_score

    try:
        return mean_score([x if math.isfinite(x) else None for x in scores])
    except ValueError:
        return None
