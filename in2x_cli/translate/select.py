"""Which candidate becomes the translation: alignment with the source, MBR among the aligned
candidates (``core.mbr``), the ``--mbr-output all`` log, and the finished output row.
"""

from __future__ import annotations

import math
import re
from typing import Any

from in2x_cli.core import translate as T
from in2x_cli.core.mbr import MbrChoice, MbrGroup, UtilityFn, get_utility
from in2x_cli.core.mbr_methods import PruningConfig, decode_family
from in2x_cli.errors import UserError
from in2x_cli.translate.config import TranslateConfig
from in2x_cli.translate.generate import Candidate
from in2x_cli.translate.jobs import Job
from in2x_cli.translate.prompting import Unit


def mbr_utility(cfg: TranslateConfig) -> UtilityFn:
    """The ``--mbr-utility`` of ``cfg`` (UserError naming the option when it is unknown)."""
    try:
        return get_utility(cfg.mbr_utility, comet_model=cfg.comet_model, open_comet=_open_comet)
    except KeyError as exc:
        raise UserError(str(exc.args[0]), "--mbr-utility") from None


def check_utility(cfg: TranslateConfig) -> None:
    """Fail now, not after generating every candidate: the utility resolves, or for ``comet`` (and
    QE reranking) the COMET environment exists."""
    if cfg.mbr_utility == "comet" or (cfg.mbr_method == "qe" and cfg.mbr > 0):
        from in2x_cli.comet import comet_python

        comet_python()
        return
    mbr_utility(cfg)


def _open_comet(model: str) -> Any:
    from in2x_cli.comet import get_client

    return get_client(model)


def _qe(cfg: TranslateConfig) -> Any:
    """``--mbr-method qe``: q(src, hyp) from the reference-free ``--qe-model`` via the COMET worker."""

    def score(srcs: Any, hyps: Any, tgt_lang: str) -> list[float]:
        client = _open_comet(cfg.qe_model)
        if client.requires_references:
            raise UserError(f"{cfg.qe_model!r} is a reference-based COMET model; QE reranking needs a reference-free one (CometKiwi)", "--qe-model")
        return list(client.score([{"src": s, "mt": h} for s, h in zip(srcs, hyps, strict=True)]))

    return score


def choose(groups: list[MbrGroup], logprobs: list[list[float | None]], cfg: TranslateConfig, utility: UtilityFn, stats: Any = None) -> list[MbrChoice]:
    """One choice per group with ``--mbr-method`` (timed and counted into ``stats``)."""
    import time

    if not groups:
        return []
    t0 = time.perf_counter()
    pruning = PruningConfig(alpha=cfg.mbr_alpha, first_refs=cfg.mbr_first_refs, seed=cfg.seed)
    try:
        res = decode_family(cfg.mbr_method, groups, utility, qe=_qe(cfg), logprobs=logprobs, pruning=pruning)
    except ValueError as exc:
        raise UserError(str(exc), "--mbr-method") from None
    if stats is not None:
        stats.select_seconds += time.perf_counter() - t0
        stats.utility_evaluations += res.evaluations
    return res.choices


def _segments(unit: Unit, cand: Candidate) -> list[str] | None:
    """The candidate as segments aligned with ``unit.sources`` (None: misaligned document)."""
    if unit.kind == "document":
        return T.align_paragraphs(cand.text, unit.sources)
    if unit.kind == "part":
        return [re.sub(r"\s*\n\s*", T.sentence_joiner(unit.job.tgt_lang), cand.text.strip())]
    return [T.as_single_paragraph(cand.text)]


def select(units: list[Unit], cands: list[list[Candidate]], cfg: TranslateConfig, utility: UtilityFn, stats: Any = None) -> list[Unit]:
    """Pick one candidate per unit (``--mbr-method`` when there are several); return the misaligned units."""
    failed: list[Unit] = []
    groups: list[MbrGroup] = []
    logprobs: list[list[float | None]] = []
    pending: list[tuple[Unit, list[Candidate], list[list[str] | None], list[int]]] = []
    for u, cs in zip(units, cands, strict=True):
        segs = [_segments(u, c) for c in cs]
        eligible = [i for i, s in enumerate(segs) if s is not None]
        if not eligible:
            failed.append(u)
            if cfg.mbr_output == "all":
                u.job.mbr_log.append(_log_entry(u, cs, segs, eligible, None, [], fallback=True))
            continue
        pending.append((u, cs, segs, eligible))
        groups.append(MbrGroup([segs[i] for i in eligible], u.sources, u.job.tgt_lang))  # type: ignore[misc]
        logprobs.append([cs[i].logprob for i in eligible])
    multi = [k for k, g in enumerate(groups) if len(g.candidates) > 1]  # a lone candidate needs no scoring
    chosen_multi = dict(zip(multi, choose([groups[k] for k in multi], [logprobs[k] for k in multi], cfg, utility, stats), strict=True))
    choices = [chosen_multi.get(k, MbrChoice(0, [math.nan])) for k in range(len(groups))]
    for (u, cs, segs, eligible), choice in zip(pending, choices, strict=True):
        chosen = segs[eligible[choice.index]]
        assert chosen is not None
        u.job.truncated |= cs[eligible[choice.index]].truncated
        if u.kind == "document":
            for offset, text in enumerate(chosen):
                u.job.pieces[u.span[0] + offset] = [text]
        else:
            u.job.pieces[u.span[0]][u.part] = chosen[0]
        if cfg.mbr_output == "all" and len(cs) > 1:
            u.job.mbr_log.append(_log_entry(u, cs, segs, eligible, eligible[choice.index], choice.expected_utility))
    return failed


def _log_entry(
    u: Unit, cs: list[Candidate], segs: list[Any], eligible: list[int], selected: int | None, expected: list[float], fallback: bool = False
) -> dict[str, Any]:
    """``--mbr-output all``: every candidate, whether it aligned, and its expected utility."""
    eu = dict(zip(eligible, expected, strict=False))
    entry: dict[str, Any] = {
        "unit": u.tag,
        "kind": u.kind,
        "selected": selected,
        "candidates": [
            {
                "model": c.model,
                "sample": c.sample,
                "text": c.text,
                "aligned": segs[i] is not None,
                "expected_utility": None if i not in eu or math.isnan(eu[i]) else round(eu[i], 4),
            }
            for i, c in enumerate(cs)
        ],
    }
    if fallback:
        entry["fallback"] = True
    return entry


def finish_row(job: Job, cfg: TranslateConfig) -> dict[str, Any]:
    joiner = T.sentence_joiner(job.tgt_lang)
    paras = [joiner.join(p or "" for p in parts) for parts in job.pieces]
    row = dict(job.row)
    row["hyp"] = T.PARAGRAPH_SEP.join(paras)
    # the model(s) that made the translation (eval names a run's system by it)
    row["model"] = cfg.models[0] if len(cfg.models) == 1 else "+".join(cfg.models)
    if cfg.fuse:
        row["fused_by"] = cfg.fuse  # the fusion model wrote the final text from those models' candidates
    if job.is_document:
        row["hyp_paragraphs"] = paras
        if cfg.granularity == "document":
            row["fallback"] = job.fallback
    if job.truncated:
        row["truncated"] = True  # cut at --max-tokens: counted per system by in2x eval
    if cfg.mbr_output == "all":
        for entry in job.mbr_log:
            for c in entry["candidates"]:
                c["model"] = cfg.models[c["model"]]
        row["mbr"] = {"method": cfg.mbr_method, "utility": cfg.mbr_utility, "units": job.mbr_log}
    if cfg.fuse:
        row["fusion"] = {"model": cfg.fuse, "units": job.fusion_log}
    return row
