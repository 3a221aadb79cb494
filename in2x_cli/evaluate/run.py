"""``in2x eval``: read test sets and system outputs, score them, test significance, rank.

Inputs become ``TestSet``s (one per language pair): the segments (id, src, ref, doc_id, domain)
and the systems' hypotheses, line-aligned with the segments; the first system is the baseline.
Three readers: translation rows (JSONL), line-aligned text files, and a WMT24 pair directory.
Scoring is ``core.metrics`` (segment statistics → scores), ``core.significance`` (paired tests)
and ``core.autorank``. The JSON document this module builds is described in
``io.documents.EVAL_SCHEMA_DOC``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from in2x_cli import console
from in2x_cli.errors import InputError, UserError
from in2x_cli.io import iter_jsonl, read_text_lines
from in2x_cli.io.documents import EVAL_SCHEMA
from in2x_cli.langs import detect_lang, normalize_lang, parse_pair

BY_FIELDS = {"domain": "domain", "doc": "doc_id", "doc_id": "doc_id"}
TABLE_MAX_GROUPS = 30  # breakdowns with more groups (documents) stay in the JSON only


@dataclass(frozen=True)
class EvalConfig:
    """Resolved options of ``in2x eval`` (recorded in the provenance)."""

    input: str | None = None
    src: str | None = None
    ref: str | None = None
    hyps: tuple[str, ...] = ()
    wmt24: str | None = None
    systems: tuple[str, ...] = ()
    lang_pair: str | None = None
    metrics: tuple[str, ...] = ("bleu", "chrf")
    tokenize: str | None = None
    by: tuple[str, ...] = ()
    paired: str | None = None
    paired_n: int = 0
    paired_ar_confidence: int = 1000
    seed: int = 12345
    segments: str | None = None
    output: str = "-"
    autorank: bool = False
    comet_batch_size: int = 16
    split_paragraphs: bool = False


@dataclass
class Segment:
    id: str | int  # the row's own id (type kept), else its 1-based position
    src: str
    ref: str | None
    doc_id: str | None = None
    domain: str | None = None
    where: str = ""


@dataclass
class TestSet:
    """Segments of one language pair and each system's hypotheses (aligned with them)."""

    source: str
    segments: list[Segment]
    systems: dict[str, list[str]] = field(default_factory=dict)
    src_lang: str | None = None
    tgt_lang: str | None = None

    @property
    def pair(self) -> str | None:
        return f"{self.src_lang}-{self.tgt_lang}" if self.src_lang and self.tgt_lang else None


# --------------------------------------------------------------------------- readers


def _split_named(spec: str) -> tuple[str, str]:
    """``NAME=path`` → (NAME, path); ``path`` → (file name without its extension, path)."""
    name, sep, path = spec.partition("=")
    if sep and name and path and not os.path.exists(spec):
        return name, path
    base = Path(spec).name.removesuffix(".gz")
    return (base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base) or spec, spec


def _lines(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"


def _add_system(systems: dict[str, list[str]], name: str, hyps: list[str], where: str) -> None:
    if name in systems:
        raise UserError(f"system name {name!r} is used twice; name them with NAME=path", where)
    systems[name] = hyps


def read_text_inputs(src: str | None, ref: str | None, hyps: Sequence[str]) -> TestSet:
    """``--src S --ref R --hyp H ...``: line-aligned files; an empty line is a valid hypothesis."""
    if not hyps:
        raise UserError("no hypotheses: give --hyp FILE (repeatable), a JSONL input, or --wmt24 DIR")
    if src is None and ref is None:
        raise UserError("line-aligned input needs --ref (and --src for COMET): which segments are these translations of?")
    src_lines = read_text_lines(src) if src else None
    ref_lines = read_text_lines(ref) if ref else None
    base_name, base_lines = (src, src_lines) if src_lines is not None else (ref, ref_lines)
    assert base_lines is not None and base_name is not None
    if not base_lines:
        raise InputError("empty file: no segments", base_name)
    if ref_lines is not None and src_lines is not None and len(ref_lines) != len(src_lines):
        raise InputError(f"{_lines(len(ref_lines))}, but the source {src} has {len(src_lines)}", ref)
    n = len(base_lines)
    segments = [
        Segment(id=i + 1, src=src_lines[i] if src_lines else "", ref=ref_lines[i] if ref_lines else None, where=f"{base_name}:{i + 1}")
        for i in range(n)
    ]
    ts = TestSet(source=base_name, segments=segments)
    for spec in hyps:
        name, path = _split_named(spec)
        lines = _hyp_lines(path, n, f"but {base_name} has {n}: hypotheses must be line-aligned",
                           empty="empty hypothesis file (an empty translation is an empty line, not a missing file)")
        _add_system(ts.systems, name, lines, path)
    return ts


def read_wmt24_inputs(directory: str, systems: Sequence[str] = (), extra: Sequence[str] = ()) -> TestSet:
    """A WMT24 pair directory: sources, refA, .docs (domain, doc_id) and system-outputs/*.txt.
    The canary line is excluded from the segments and from every system's output. ``extra``
    adds your own systems (``NAME=path``), line-aligned with the WMT24 source like the published
    outputs (``in2x translate --wmt24 DIR --segments-out FILE`` writes such a file)."""
    from in2x_cli.wmt import canary_lines, open_wmt24, wmt24_segments

    ws = open_wmt24(directory)
    rows = wmt24_segments(ws)
    canary = canary_lines(ws)
    n_lines = len(rows) + len(canary)
    available = ws.systems()
    if not available:
        raise UserError("no system outputs (system-outputs/*.txt)", str(ws.directory))
    chosen = list(systems) or list(available)
    unknown = [s for s in chosen if s not in available]
    if unknown:
        raise UserError(f"unknown system {unknown[0]!r} (available: {', '.join(available)})", str(ws.directory))
    segments = [
        Segment(id=r["id"], src=r["src"], ref=r.get("ref"), doc_id=r["doc_id"], domain=r["domain"], where=f"{ws.file('.txt')}:{r['line']}")
        for r in rows
    ]
    ts = TestSet(source=str(ws.directory), segments=segments, src_lang=ws.src_lang, tgt_lang=ws.tgt_lang)
    for name in chosen:
        path = str(available[name])
        lines = _hyp_lines(path, n_lines, f"but the source has {n_lines}")
        _add_system(ts.systems, name, [t for i, t in enumerate(lines) if i not in canary], path)
    for spec in extra:
        name, xpath = _split_named(spec)
        lines = _hyp_lines(xpath, n_lines, f"but the WMT24 source has {n_lines} (canary line included)")
        _add_system(ts.systems, name, [t for i, t in enumerate(lines) if i not in canary], xpath)
    return ts


def _hyp_lines(path: str, n: int, mismatch: str, *, empty: str = "empty hypothesis file") -> list[str]:
    """A system's output file: its lines, which must be ``n`` (else InputError: "<count>, <mismatch>")."""
    lines = read_text_lines(path)
    if not lines:
        raise InputError(empty, path)
    if len(lines) != n:
        raise InputError(f"{_lines(len(lines))}, {mismatch}", path)
    return lines


def _paragraph_rows(row: Any, hyp_paragraphs: Any, where: str) -> list[tuple[str, str, str | None, str]]:
    """A document row → (suffix, src, ref, hyp) per paragraph (WMT25 scores paragraphs).

    Source and reference paragraphs are blank-line separated; the hypothesis paragraphs come
    from ``hyp_paragraphs`` (what ``in2x translate`` writes, aligned by construction) or else
    from splitting ``hyp``. Counts must agree."""
    from in2x_cli.wmt import split_paragraphs

    src = split_paragraphs(row.src or "")
    hyp = hyp_paragraphs if hyp_paragraphs is not None else split_paragraphs(row.hyp or "")
    if not isinstance(hyp, list) or not all(isinstance(h, str) for h in hyp):
        raise InputError("field 'hyp_paragraphs' must be a list of strings", where)
    ref = split_paragraphs(row.ref) if row.ref is not None else None
    if len(hyp) != len(src) or (ref is not None and len(ref) != len(src)):
        counts = f"source {len(src)}, hypothesis {len(hyp)}" + (f", reference {len(ref)}" if ref is not None else "")
        raise InputError(f"--split-paragraphs: paragraph counts differ ({counts})", where)
    return [(f"#p{k + 1}", src[k], None if ref is None else ref[k], hyp[k]) for k in range(len(src))]


def read_jsonl_inputs(path: str, lang_pair: str | None = None, split_paragraphs: bool = False) -> list[TestSet]:
    """Translation rows (src, ref, hyp; optional id, doc_id, domain, system, src_lang, tgt_lang).

    Rows are grouped by language pair, then by ``system`` (default: the file name). Systems are
    aligned by ``id`` (else by their order); every system must cover the same segments, with
    the same reference. ``split_paragraphs`` scores document rows paragraph by paragraph (ids
    ``<id>#p<k>``, ``doc_id`` = the row's id), the unit WMT25 scores and ranks."""
    from in2x_cli.records import TranslationRow

    default_system = "system" if path == "-" else Path(path).name.split(".")[0]
    forced = parse_pair(lang_pair) if lang_pair else None
    pairs: dict[tuple[str | None, str | None], dict[str, list[tuple[str, Segment, str]]]] = {}
    for line in iter_jsonl(path):
        row = TranslationRow.from_line(line)
        if row.hyp is None:
            raise InputError("missing required field 'hyp' (or 'mt'/'hypothesis'): the translation to score", line.where)
        if forced:
            langs: tuple[str | None, str | None] = forced
        else:
            langs = (
                normalize_lang(row.src_lang, where=line.where) if row.src_lang else None,
                normalize_lang(row.tgt_lang, where=line.where) if row.tgt_lang else None,
            )
        system = row.system or default_system
        per_sys = pairs.setdefault(langs, {}).setdefault(system, [])
        if split_paragraphs:
            doc_key = str(row.id if row.id is not None else row.doc_id if row.doc_id is not None else f"#{len(per_sys) + 1}")
            for suffix, p_src, p_ref, p_hyp in _paragraph_rows(row, row.extra.get("hyp_paragraphs"), line.where):
                seg = Segment(id=doc_key + suffix, src=p_src, ref=p_ref, doc_id=row.doc_id or doc_key, domain=row.domain, where=line.where)
                per_sys.append((doc_key + suffix, seg, p_hyp))
            continue
        key = str(row.id) if row.id is not None else f"#{len(per_sys) + 1}"
        seg = Segment(id=row.id if row.id is not None else len(per_sys) + 1, src=row.src or "", ref=row.ref, doc_id=row.doc_id, domain=row.domain, where=line.where)
        per_sys.append((key, seg, row.hyp))
    out = []
    for (src_lang, tgt_lang), systems in pairs.items():
        names = list(systems)
        first = systems[names[0]]
        seen: dict[str, Segment] = {}
        for key, seg, _ in first:
            if key in seen:
                raise InputError(f"duplicate id {key!r} for system {names[0]!r} (first at {seen[key].where})", seg.where)
            seen[key] = seg
        ts = TestSet(source=path, segments=[seg for _, seg, _ in first], src_lang=src_lang, tgt_lang=tgt_lang)
        for name in names:
            rows = systems[name]
            by_key = {}
            for key, seg, hyp in rows:
                if key in by_key:
                    raise InputError(f"duplicate id {key!r} for system {name!r}", seg.where)
                base = seen.get(key)
                if base is None:
                    raise InputError(
                        f"segment {key!r} of system {name!r} is not among {names[0]!r}'s segments ({names[0]!r} starts at {first[0][1].where})",
                        seg.where,
                    )
                if seg.ref != base.ref:
                    raise InputError(f"segment {key!r} of system {name!r} has a different 'ref' than at {base.where}", seg.where)
                by_key[key] = hyp
            missing = [k for k in seen if k not in by_key]
            if missing:
                raise InputError(
                    f"system {name!r} has {len(by_key)} segments but {names[0]!r} has {len(seen)} (missing {missing[0]!r}, …)", path
                )
            ts.systems[name] = [by_key[k] for k in seen]
        out.append(ts)
    return out


def resolve_languages(ts: TestSet, lang_pair: str | None) -> None:
    """Fill in languages: ``-l SRC-TGT``, else detect the target from references (or outputs)."""
    if lang_pair:
        ts.src_lang, ts.tgt_lang = parse_pair(lang_pair)
    if ts.tgt_lang:
        return
    refs = [s.ref for s in ts.segments if s.ref]
    sample = refs or [h for h in next(iter(ts.systems.values())) if h]
    lang = detect_lang(" ".join(sample[:200]))
    if lang != "und":
        ts.tgt_lang = lang
        console.warn(f"{ts.source}: target language not given, detected {lang!r} (pass -l SRC-TGT to be explicit)")
        if ts.src_lang is None and any(s.src for s in ts.segments):
            src_lang = detect_lang(" ".join(s.src for s in ts.segments[:200]))
            ts.src_lang = None if src_lang == "und" else src_lang


def load_test_sets(cfg: EvalConfig) -> list[TestSet]:
    modes = sum(x is not None for x in (cfg.input, cfg.wmt24)) + (1 if cfg.hyps and cfg.wmt24 is None else 0)
    if modes == 0:
        raise UserError("nothing to score: give a JSONL file (or - for stdin), --hyp FILE with --ref/--src, or --wmt24 DIR")
    if modes > 1:
        raise UserError("give exactly one of: a JSONL input, --hyp files, --wmt24 DIR (with optional --hyp of your own)")
    if cfg.split_paragraphs and cfg.input is None:
        raise UserError("--split-paragraphs applies to JSONL document rows")
    if cfg.systems and not cfg.wmt24:
        raise UserError("--systems selects systems of a --wmt24 directory")
    if (cfg.src or cfg.ref) and not cfg.hyps:
        raise UserError("--src and --ref go with line-aligned --hyp files (JSONL rows carry src and ref themselves)")
    if cfg.input is not None:
        sets = read_jsonl_inputs(cfg.input, cfg.lang_pair, cfg.split_paragraphs)
    elif cfg.wmt24 is not None:
        sets = [read_wmt24_inputs(cfg.wmt24, cfg.systems, cfg.hyps)]
    else:
        sets = [read_text_inputs(cfg.src, cfg.ref, cfg.hyps)]
    for ts in sets:
        resolve_languages(ts, cfg.lang_pair)
    return sets


# --------------------------------------------------------------------------- scoring


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

    needing = [k for k, m in metrics.items() if isinstance(m, (Comet, FunctionMetric))]
    if needing and text_mode_without_src:
        raise UserError(f"{', '.join(needing)} score translations against their sources: pass --src")


def _groups(ts: TestSet, by: str) -> dict[str, list[int]]:
    attr = BY_FIELDS[by]
    out: dict[str, list[int]] = {}
    for i, seg in enumerate(ts.segments):
        value = getattr(seg, attr)
        out.setdefault("(none)" if value is None else str(value), []).append(i)
    return out


def evaluate(
    ts: TestSet, metrics: dict[str, Any], cfg: EvalConfig, step: Callable[[str], None] = lambda _d: None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score every system of ``ts`` with every metric. Returns the result dict (EVAL_SCHEMA_DOC) and,
    when ``cfg.segments`` is set, the segment rows."""
    from in2x_cli.core.autorank import autorank
    from in2x_cli.core.metrics import score_systems
    from in2x_cli.core.significance import bootstrap_ci, paired_approximate_randomization, paired_bootstrap

    names = list(ts.systems)
    srcs = [s.src for s in ts.segments]
    refs = None if any(s.ref is None for s in ts.segments) else [s.ref for s in ts.segments]
    scored: dict[str, list[Any]] = {}
    for key, metric in metrics.items():
        step(f"{key} {names[0]}")
        # segment scores always: their means are the system scores AutoRank ranks on (cheap: ~1% of the statistics' cost)
        scored[key] = score_systems(metric, [ts.systems[n] for n in names], refs, srcs, segments=True)
        for name in names[1:]:
            step(f"{key} {name}")

    systems: list[dict[str, Any]] = [{"system": n, "segments": len(ts.segments), "scores": {}} for n in names]
    for key, metric in metrics.items():
        for entry, res in zip(systems, scored[key], strict=True):
            entry["scores"][key] = res.score
            entry.setdefault("segment_means", {})[key] = _segment_mean(res.segments)
            detail = metric.detail(res.stats.sum(axis=0).tolist())
            if detail:
                entry.setdefault("verbose_score", {})[key] = detail

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
                    "scores": {key: metrics[key].corpus_score(scored[key][i].stats[idx]) for key in metrics},
                    "segment_means": {key: _segment_mean([scored[key][i].segments[j] for j in idx]) for key in metrics},
                }

    result: dict[str, Any] = {
        "pair": ts.pair,
        "src_lang": ts.src_lang,
        "tgt_lang": ts.tgt_lang,
        "source": ts.source,
        "segments": len(ts.segments),
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


# --------------------------------------------------------------------------- tables


def print_wide_table(table: Any) -> None:
    """Print on stderr at the table's natural width: when stderr is a file or a pipe, rich
    would otherwise squeeze it into 80 columns and cut system and metric names."""
    from rich.console import Console
    from rich.measure import Measurement

    if console.verbosity() < 1:
        return
    con = console.stderr_console()
    needed = Measurement.get(con, con.options.update(width=1000), table).maximum
    if needed <= con.width:
        con.print(table)
    else:
        Console(stderr=True, highlight=False, soft_wrap=True, width=needed, force_terminal=con.is_terminal).print(table)


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _digits(key: str, results: Sequence[dict[str, Any]]) -> int:
    values = [abs(s["scores"][key]) for r in results for s in r["systems"] if s["scores"].get(key) is not None]
    return 4 if values and max(values) <= 1.5 else 2


def render_tables(result: dict[str, Any]) -> None:
    """Scores per system (with CI and p-value when tested), breakdowns and signatures, on stderr."""
    from rich.table import Table

    keys = list(result["metrics"])
    digits = {k: _digits(k, [result]) for k in keys}
    title = f"{result['pair'] or result['source']}: {result['segments']} segments"
    table = Table(title=title, title_justify="left")
    table.add_column("system")
    for k in keys:
        arrow = "↑" if result["metrics"][k]["higher_is_better"] else "↓"
        table.add_column(f"{k} {arrow}", justify="right")
    if result.get("autorank"):
        table.add_column("AutoRank", justify="right")
        ranks = {r["system"]: r["autorank"] for r in result["autorank"]}
    paired = result["significance"] and result["significance"]["test"] in ("bs", "ar")  # a baseline to compare with
    for i, entry in enumerate(result["systems"]):
        cells = [("Baseline: " if i == 0 and paired else "") + entry["system"]]
        for k in keys:
            text = _fmt(entry["scores"][k], digits[k])
            est = entry.get("significance", {}).get(k)
            if est and est.get("ci") is not None:
                text += f" ±{_fmt(est['ci'], digits[k])}"
            if est and est.get("p_value") is not None:
                text += f" p={est['p_value']:.4f}" + ("*" if est["p_value"] < 0.05 else " ")
            cells.append(text)
        if result.get("autorank"):
            cells.append(_fmt(ranks[entry["system"]]))
        table.add_row(*cells)
    print_wide_table(table)
    first = result["systems"][0]
    for by, groups in first.get("by", {}).items():
        if len(groups) > TABLE_MAX_GROUPS:
            console.info(f"--by {by}: {len(groups)} groups, in the JSON output only")
            continue
        sub = Table(title=f"by {by}", title_justify="left")
        sub.add_column(by)
        sub.add_column("system")
        for k in keys:
            sub.add_column(k, justify="right")
        for value in groups:
            for entry in result["systems"]:
                g = entry["by"][by][value]
                sub.add_row(f"{value} ({g['segments']})", entry["system"], *(_fmt(g["scores"][k], digits[k]) for k in keys))
        print_wide_table(sub)
    for k, info in result["metrics"].items():
        console.info(f"{k}: {info['signature']}")
    s = result["significance"]
    if s and s["test"] == "bootstrap-ci":
        console.info(f"95% intervals from {s['samples']} bootstrap samples, seed {s['seed']}: score ±half-width")
    elif s:
        extra = f", {s['confidence_samples']} bootstrap samples for the intervals" if s["test"] == "ar" else ""
        console.info(
            f"significance: paired {'bootstrap' if s['test'] == 'bs' else 'approximate randomisation'} vs {result['baseline']!r}, "
            f"{s['samples']} {'samples' if s['test'] == 'bs' else 'trials'}{extra}, seed {s['seed']}; "
            "score ±half-width of the 95% interval, * = p < 0.05"
        )


# --------------------------------------------------------------------------- entry points


def _comet_opener(batch_size: int) -> Callable[[str], Any]:
    def open_client(model: str) -> Any:
        from in2x_cli.comet import get_client

        return get_client(model, batch_size=batch_size)

    return open_client


# A MetricError's ``setting`` (a MetricContext field) as the user sets it: the option to use instead.
SETTING_HINTS = {"tokenize": "use --tokenize to pick a tokenizer"}


def _metric_user_error(exc: Exception) -> UserError:
    hint = SETTING_HINTS.get(getattr(exc, "setting", None) or "")
    return UserError(f"{exc}; {hint}" if hint else str(exc))


def run_eval(cfg: EvalConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Parse metrics, read inputs, score, test, rank: the JSON document and the segment rows."""
    from in2x_cli import provenance
    from in2x_cli.core.metrics import MetricContext, MetricError, build_metric, parse_metric_specs

    if cfg.paired not in (None, "bs", "ar"):
        raise UserError(f"--paired must be bs (bootstrap) or ar (approximate randomisation), got {cfg.paired!r}")
    unknown_by = [b for b in cfg.by if b not in BY_FIELDS]
    if unknown_by:
        raise UserError(f"--by {unknown_by[0]!r}: expected domain or doc")
    if cfg.tokenize is not None:
        from sacrebleu.metrics import BLEU

        if cfg.tokenize not in BLEU.TOKENIZERS:
            raise UserError(f"--tokenize {cfg.tokenize!r}: expected one of {', '.join(BLEU.TOKENIZERS)}")
    try:
        specs = parse_metric_specs(cfg.metrics)
    except MetricError as exc:
        raise _metric_user_error(exc) from None
    test_sets = load_test_sets(cfg)
    sacre = [s.key for s in specs if s.name in ("bleu", "chrf", "ter")]  # known before any worker starts
    results, rows = [], []
    for ts in test_sets:
        if sacre and cfg.hyps and cfg.ref is None and cfg.wmt24 is None:
            raise UserError(f"{', '.join(sacre)} compare with references: pass --ref FILE (or use a reference-free metric: cometkiwi)")
        check_references(ts, sacre)
        ctx = MetricContext(tgt_lang=ts.tgt_lang, tokenize=cfg.tokenize, comet=_comet_opener(cfg.comet_batch_size))
        try:
            metrics = {s.key: build_metric(s, ctx) for s in specs}
        except MetricError as exc:
            raise _metric_user_error(exc) from None
        check_references(ts, [k for k, m in metrics.items() if m.needs_reference])
        check_sources(ts, metrics, text_mode_without_src=bool(cfg.hyps) and cfg.src is None and cfg.wmt24 is None)
        total = len(metrics) * len(ts.systems) + (len(metrics) if cfg.paired else 0)
        with console.progress() as bar:
            task = bar.add_task(f"eval {ts.pair or ts.source}", total=total)
            try:
                result, seg_rows = evaluate(ts, metrics, cfg, lambda d, t=task: bar.update(t, advance=1, description=d))
            except MetricError as exc:
                raise _metric_user_error(exc) from None
        results.append(result)
        rows.extend(seg_rows)
    inputs = [p for p in (cfg.input, cfg.src, cfg.ref, cfg.wmt24) if p] + [_split_named(h)[1] for h in cfg.hyps]
    doc = {"schema": EVAL_SCHEMA, "results": results, "provenance": provenance.collect(command="eval", config=cfg, inputs=inputs, seed=cfg.seed)}
    return doc, rows
