"""``in2x eval autorank``: gather system scores per language pair from WMT25 automatic-score
files, ``in2x eval`` JSON outputs (read back through ``io.documents``) and ``--segments`` JSONL
files, and rank them with core/autorank.py (WMT25's AutoRank)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from in2x_cli import console
from in2x_cli.errors import InputError, UserError
from in2x_cli.evaluate.config import AutorankConfig
from in2x_cli.evaluate.tables import render_autorank
from in2x_cli.io import iter_jsonl
from in2x_cli.io.documents import AUTORANK_SCHEMA
from in2x_cli.langs import parse_pair


@dataclass
class RankInput:
    """System scores of one language pair gathered from AutoRank inputs."""

    label: str  # the pair as first written (en-ja_JP)
    systems: dict[str, dict[str, float]] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # system → file
    lower_is_better: set[str] = field(default_factory=set)
    corpus_scored: set[str] = field(default_factory=set)  # systems ranked on corpus scores (old eval JSON)


def _pair_key(label: str | None, where: str) -> str:
    if not label:
        raise UserError("no language pair: pass --pair SRC-TGT for inputs without languages", where)
    try:
        return "-".join(parse_pair(label))
    except UserError as exc:
        raise UserError(exc.message, where) from None


def _add_ranked(
    out: dict[str, RankInput], label: str, system: str, scores: dict[str, float], where: str, lower: Iterable[str] = (), corpus: bool = False
) -> None:
    entry = out.setdefault(_pair_key(label, where), RankInput(label))
    if system in entry.systems:
        raise UserError(f"system {system!r} ({label}) is also in {entry.origin[system]}", where)
    entry.systems[system] = scores
    entry.origin[system] = where
    entry.lower_is_better |= set(lower)
    if corpus:
        entry.corpus_scored.add(system)


def _read_wmt25_scores(path: Path, out: dict[str, RankInput], domain: str | None) -> None:
    from in2x_cli.core.autorank import mean_score
    from in2x_cli.wmt import iter_wmt25_scores

    per_pair: dict[str, dict[str, list[float | None]]] = {}
    for doc in iter_wmt25_scores(path):
        if domain is not None and doc["domain"] != domain:
            continue
        metrics = per_pair.setdefault(doc["pair"], {})
        for metric, values in doc["metric_scores"].items():
            metrics.setdefault(metric, []).extend(values)
    for pair, metrics in per_pair.items():
        scores = {}
        for metric, values in metrics.items():
            try:
                scores[metric] = mean_score(values)
            except ValueError:
                continue  # every paragraph unscored: the metric is missing for this system
        _add_ranked(out, pair, path.name.removesuffix(".jsonl"), scores, str(path))


def _segment_directions(path: Path) -> dict[str, bool]:
    """{metric: higher_is_better} of an ``in2x eval --segments`` file, from its ``.meta.json``
    sidecar (eval records them there); {} when there is none (a pipe, another tool)."""
    import json

    from in2x_cli.io.jsonl import meta_path

    try:
        meta = json.loads(Path(meta_path(path)).read_text(encoding="utf-8"))
        return {k: v for k, v in meta.get("metrics_higher_is_better", {}).items() if isinstance(v, bool)}
    except (OSError, ValueError, AttributeError):
        return {}


def _lower_is_better(metric: str, recorded: dict[str, bool]) -> bool:
    """Direction of a segment file's metric: as recorded by eval, else by the built-in metric of
    that name (``ter``, ``ter:label``), else higher is better."""
    from in2x_cli.core.metrics import METRICS

    if metric in recorded:
        return not recorded[metric]
    builtin = METRICS.get(metric.split(":", 1)[0])
    return builtin is not None and not builtin.higher_is_better


def _read_segment_rows(path: Path, out: dict[str, RankInput], domain: str | None, pair: str | None) -> None:
    from in2x_cli.core.autorank import mean_score

    recorded = _segment_directions(path)
    acc: dict[tuple[str, str], dict[str, list[float | None]]] = {}
    for line in iter_jsonl(path):
        d = line.data
        if not isinstance(d.get("scores"), dict):
            raise InputError("expected a segment row with 'scores' {metric: score} (in2x eval --segments)", line.where)
        if domain is not None and d.get("domain") != domain:
            continue
        label = (f"{d['src_lang']}-{d['tgt_lang']}" if d.get("src_lang") and d.get("tgt_lang") else None) or pair
        _pair_key(label, line.where)
        system = str(d.get("system") or path.name.split(".")[0])
        metrics = acc.setdefault((label or "", system), {})
        for k, v in d["scores"].items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise InputError(f"scores[{k!r}] must be a number or null", line.where)
            metrics.setdefault(k, []).append(v)
    for (label, system), metrics in acc.items():
        lower = [k for k in metrics if _lower_is_better(k, recorded)]
        _add_ranked(out, label, system, {k: mean_score(v) for k, v in metrics.items() if any(x is not None for x in v)}, str(path), lower)


def _read_eval_json(path: Path, out: dict[str, RankInput], domain: str | None, pair: str | None) -> None:
    from in2x_cli.io.documents import read_eval_doc

    doc = read_eval_doc(path)
    for result in doc.get("results", []):
        lower = {k for k, m in result.get("metrics", {}).items() if not m.get("higher_is_better", True)}
        for entry in result.get("systems", []):
            source = entry
            if domain is not None:
                source = ((entry.get("by") or {}).get("domain") or {}).get(domain)
                if source is None:
                    raise InputError(f"no --by domain breakdown for domain {domain!r} (run in2x eval with --by domain)", str(path))
            # AutoRank's system score is the mean segment score; eval outputs older than
            # "segment_means" carry corpus scores only, which are used then (and reported)
            corpus = "segment_means" not in source
            scores = source["scores"] if corpus else source["segment_means"]
            scores = {k: v for k, v in scores.items() if v is not None}  # null: the metric failed for this system
            _add_ranked(out, result.get("pair") or pair or "", entry["system"], scores, str(path), lower, corpus=corpus)


def load_rank_inputs(paths: Sequence[str], *, domain: str | None = None, pair: str | None = None) -> dict[str, RankInput]:
    """AutoRank inputs: WMT25 automatic-score files (or a directory of them; system = file
    name), ``in2x eval`` JSON outputs, or ``in2x eval --segments`` JSONL files. ``pair`` labels
    the inputs that carry no languages."""
    out: dict[str, RankInput] = {}
    files: list[tuple[Path, bool]] = []  # (file, found in a directory)
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(path.glob("*.jsonl"))
            if not found:
                raise UserError("no *.jsonl score files in this directory", str(path))
            files.extend((f, True) for f in found)
        elif path.is_file():
            files.append((path, False))
        else:
            raise UserError("no such file or directory", str(path))
    for path, in_dir in files:
        if path.suffix == ".json":
            _read_eval_json(path, out, domain, pair)
            continue
        first = next(iter_jsonl(path, require_rows=not in_dir), None)
        if first is None:
            continue  # a WMT25 system with no rows for the kept pairs
        if "metric_scores" in first.data:
            _read_wmt25_scores(path, out, domain)
        else:
            _read_segment_rows(path, out, domain, pair)
    return out


def run_autorank(cfg: AutorankConfig) -> dict[str, Any]:
    """``in2x eval autorank``: rank (``rank_inputs``), print the table, write the JSON ranking."""
    from in2x_cli.io import check_output_path, write_json

    check_output_path(cfg.output)
    aliases = {}
    for item in cfg.aliases:
        ours, sep, theirs = item.partition("=")
        if not sep or not ours or not theirs:
            raise UserError(f"--alias {item!r}: expected OURS=THEIRS")
        aliases[ours] = theirs
    doc = rank_inputs(
        cfg.inputs, pairs=cfg.pairs, metrics=cfg.metrics, lower_is_better=cfg.lower_is_better, aliases=aliases, domain=cfg.domain
    )
    render_autorank(doc, cfg.top or None)
    write_json(cfg.output, doc)
    return doc


def rank_inputs(
    paths: Sequence[str],
    *,
    pairs: Sequence[str] = (),
    metrics: Sequence[str] = (),
    lower_is_better: Sequence[str] = (),
    aliases: dict[str, str] | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """AutoRank per language pair over the given inputs (see ``load_rank_inputs``)."""
    from in2x_cli import provenance
    from in2x_cli.core.autorank import autorank

    wanted = {_pair_key(p, "--pair") for p in pairs}
    assign = pairs[0] if len(pairs) == 1 else None
    data = load_rank_inputs(paths, domain=domain, pair=assign)
    if wanted:
        missing = wanted - set(data)
        if missing:
            raise UserError(f"no scores for language pair {sorted(missing)[0]!r} (found: {', '.join(r.label for r in data.values()) or 'none'})")
        data = {k: v for k, v in data.items() if k in wanted}
        for p in pairs:  # show the pairs as the user wrote them
            data[_pair_key(p, "--pair")].label = p
    if not data:
        raise UserError("no system scores found in the inputs", ", ".join(paths))
    out = []
    for entry in data.values():
        systems = {s: {(aliases or {}).get(m, m): v for m, v in sc.items()} for s, sc in entry.systems.items()}
        common = set.intersection(*(set(v) for v in systems.values()))
        chosen = list(metrics) if metrics else sorted(common)
        absent = [m for m in chosen if m not in common]
        if absent:
            lacking = sorted(s for s, v in systems.items() if absent[0] not in v)
            raise UserError(f"{entry.label}: metric {absent[0]!r} is missing for {len(lacking)} system(s), e.g. {lacking[0]!r} ({entry.origin[lacking[0]]})")
        if not chosen:
            raise UserError(f"{entry.label}: the systems have no metric in common; use --alias OURS=THEIRS to match names",
                            ", ".join(sorted(set(entry.origin.values()))))
        dropped = sorted(set().union(*(set(v) for v in systems.values())) - set(chosen))
        if dropped and not metrics:
            console.warn(f"{entry.label}: not every system has {', '.join(dropped)}; ranking on {', '.join(chosen)}")
        lower = set(lower_is_better) | {(aliases or {}).get(m, m) for m in entry.lower_is_better}
        ranked = autorank(systems, metrics=chosen, lower_is_better=lower)
        corpus = sorted(entry.corpus_scored)
        if corpus:
            files = ", ".join(sorted({entry.origin[s] for s in corpus}))
            console.warn(f"{entry.label}: {len(corpus)} system(s) ranked on corpus scores, not mean segment scores: {files} has no "
                         "'segment_means' (written by in2x eval since AutoRank uses them); re-run in2x eval to rank as WMT25 does")
        out.append(
            {
                "pair": entry.label,
                "metrics": chosen,
                "lower_is_better": sorted(m for m in chosen if m in lower),
                "domain": domain,
                "system_score": "corpus score for " + ", ".join(corpus) + "; segment mean for the rest" if corpus else "segment mean",
                "systems": [r.to_dict() for r in ranked],
            }
        )
    config = {"inputs": list(paths), "pairs": list(pairs), "metrics": list(metrics), "lower_is_better": list(lower_is_better), "aliases": aliases, "domain": domain}
    return {"schema": AUTORANK_SCHEMA, "pairs": out, "provenance": provenance.collect(command="eval autorank", config=config, inputs=paths)}
