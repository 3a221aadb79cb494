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
    segment_sets: dict[str, tuple[str, str]] = field(default_factory=dict)  # system → (digest, description)
    signatures: dict[str, dict[str, str | None]] = field(default_factory=dict)  # system → metric → signature (None: unknown)


def segment_set_digest(segments: Iterable[tuple[Any, Any, Any]]) -> str:
    """What a set of test segments is, as a short digest of its (id, src, ref) triples (order-free):
    equal for the same segments whether read from an eval JSON or a --segments file, different when
    two systems were scored on different test sets (or a different subset of one)."""
    import hashlib
    import json

    items = sorted(json.dumps([None if i is None else str(i), s or "", r], ensure_ascii=False) for i, s, r in segments)
    return hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()[:16]


def _pair_key(label: str | None, where: str) -> str:
    if not label:
        raise UserError("no language pair: pass --pair SRC-TGT for inputs without languages", where)
    try:
        return "-".join(parse_pair(label))
    except UserError as exc:
        raise UserError(exc.message, where) from None


def _add_ranked(
    out: dict[str, RankInput], label: str, system: str, scores: dict[str, float], where: str, lower: Iterable[str] = (), corpus: bool = False,
    *, segment_set: tuple[str, str], signatures: dict[str, str | None],
) -> None:
    entry = out.setdefault(_pair_key(label, where), RankInput(label))
    if system in entry.systems:
        raise UserError(f"system {system!r} ({label}) is also in {entry.origin[system]}", where)
    entry.systems[system] = scores
    entry.origin[system] = where
    entry.segment_sets[system] = segment_set
    entry.signatures[system] = signatures
    entry.lower_is_better |= set(lower)
    if corpus:
        entry.corpus_scored.add(system)


def _read_wmt25_scores(path: Path, out: dict[str, RankInput], domain: str | None, domains: set[str]) -> None:
    from in2x_cli.core.autorank import mean_score
    from in2x_cli.wmt import iter_wmt25_scores

    per_pair: dict[str, dict[str, list[float | None]]] = {}
    docs: dict[str, list[tuple[Any, int, None]]] = {}  # the documents (and their paragraph counts) scored
    for doc in iter_wmt25_scores(path):
        domains.add(str(doc["domain"]))
        if domain is not None and doc["domain"] != domain:
            continue
        metrics = per_pair.setdefault(doc["pair"], {})
        for metric, values in doc["metric_scores"].items():
            metrics.setdefault(metric, []).extend(values)
        docs.setdefault(doc["pair"], []).append((doc["doc_id"], max(map(len, doc["metric_scores"].values()), default=0), None))
    for pair, metrics in per_pair.items():
        scores = {}
        for metric, values in metrics.items():
            try:
                scores[metric] = mean_score(values)
            except ValueError:
                continue  # every paragraph unscored: the metric is missing for this system
        n_docs, n_paras = len(docs[pair]), sum(n for _, n, _ in docs[pair])
        segment_set = ("wmt25:" + segment_set_digest(docs[pair]), f"WMT25 {pair} ({n_docs} documents, {n_paras} paragraphs)")
        _add_ranked(out, pair, path.name.removesuffix(".jsonl"), scores, str(path), segment_set=segment_set,
                    signatures={m: f"WMT25 organisers' {m}" for m in metrics})


def _segment_meta(path: Path) -> tuple[dict[str, bool], dict[str, str]]:
    """({metric: higher_is_better}, {metric: segment signature}) of an ``in2x eval --segments``
    file, from its ``.meta.json`` sidecar (eval records them there); empty when there is none (a
    pipe, another tool)."""
    import json

    from in2x_cli.io.jsonl import meta_path

    try:
        meta = json.loads(Path(meta_path(path)).read_text(encoding="utf-8"))
        directions = {k: v for k, v in meta.get("metrics_higher_is_better", {}).items() if isinstance(v, bool)}
        signatures = {k: v for k, v in (meta.get("metric_signatures") or {}).items() if isinstance(v, str)}
        return directions, signatures
    except (OSError, ValueError, AttributeError):
        return {}, {}


def _lower_is_better(metric: str, recorded: dict[str, bool]) -> bool:
    """Direction of a segment file's metric: as recorded by eval, else by the built-in metric of
    that name (``ter``, ``ter:label``), else higher is better."""
    from in2x_cli.core.metrics import METRICS

    if metric in recorded:
        return not recorded[metric]
    builtin = METRICS.get(metric.split(":", 1)[0])
    return builtin is not None and not builtin.higher_is_better


def _read_segment_rows(path: Path, out: dict[str, RankInput], domain: str | None, pair: str | None, domains: set[str]) -> None:
    from in2x_cli.core.autorank import mean_score

    recorded, signatures = _segment_meta(path)
    acc: dict[tuple[str, str], dict[str, list[float | None]]] = {}
    segs: dict[tuple[str, str], list[tuple[Any, Any, Any]]] = {}
    for line in iter_jsonl(path):
        d = line.data
        if not isinstance(d.get("scores"), dict):
            raise InputError("expected a segment row with 'scores' {metric: score} (in2x eval --segments)", line.where)
        if d.get("domain") is not None:
            domains.add(str(d["domain"]))
        if domain is not None and d.get("domain") != domain:
            continue
        label = (f"{d['src_lang']}-{d['tgt_lang']}" if d.get("src_lang") and d.get("tgt_lang") else None) or pair
        _pair_key(label, line.where)
        system = str(d.get("system") or path.name.split(".")[0])
        metrics = acc.setdefault((label or "", system), {})
        segs.setdefault((label or "", system), []).append((d.get("id"), d.get("src"), d.get("ref")))
        for k, v in d["scores"].items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise InputError(f"scores[{k!r}] must be a number or null", line.where)
            metrics.setdefault(k, []).append(v)
    for (label, system), metrics in acc.items():
        lower = [k for k in metrics if _lower_is_better(k, recorded)]
        n = len(segs[(label, system)])
        _add_ranked(out, label, system, {k: mean_score(v) for k, v in metrics.items() if any(x is not None for x in v)}, str(path), lower,
                    segment_set=(segment_set_digest(segs[(label, system)]), f"{n} segments of {path}"),
                    signatures={k: signatures.get(k) for k in metrics})


def _read_eval_json(path: Path, out: dict[str, RankInput], domain: str | None, pair: str | None, domains: set[str]) -> None:
    from in2x_cli.io.documents import read_eval_doc

    doc = read_eval_doc(path)
    for result in doc.get("results", []):
        lower = {k for k, m in result.get("metrics", {}).items() if not m.get("higher_is_better", True)}
        for entry in result.get("systems", []):
            source = entry
            by_domain = (entry.get("by") or {}).get("domain") or {}
            domains.update(by_domain)
            if domain is not None:
                source = by_domain.get(domain)
                if source is None and by_domain:
                    raise InputError(f"no scores for domain {domain!r} (domains here: {', '.join(sorted(by_domain))})", str(path))
                if source is None:
                    raise InputError(f"no --by domain breakdown for domain {domain!r} (run in2x eval with --by domain)", str(path))
            n = source.get("segments", result.get("segments"))
            # eval JSON older than "segment_set": the count and the scored source stand in for it
            digest = (source if domain is not None else result).get("segment_set") or f"{n} segments of {result.get('source')}" + (f", domain {domain}" if domain else "")
            segment_set = (digest, f"{n} segments of {result.get('source') or path}" + (f" (domain {domain})" if domain else ""))
            # AutoRank's system score is the mean segment score; eval outputs older than
            # "segment_means" carry corpus scores only, which are used then (and reported)
            corpus = "segment_means" not in source
            scores = source["scores"] if corpus else source["segment_means"]
            scores = {k: v for k, v in scores.items() if v is not None}  # null: the metric failed for this system
            metrics_info = result.get("metrics", {})
            sig_field = "signature" if corpus else "segment_signature"
            signatures = {k: (metrics_info.get(k) or {}).get(sig_field) for k in scores}
            _add_ranked(out, result.get("pair") or pair or "", entry["system"], scores, str(path), lower, corpus=corpus,
                        segment_set=segment_set, signatures=signatures)


def load_rank_inputs(
    paths: Sequence[str], *, domain: str | None = None, pair: str | None = None, domains: set[str] | None = None
) -> dict[str, RankInput]:
    """AutoRank inputs: WMT25 automatic-score files (or a directory of them; system = file
    name), ``in2x eval`` JSON outputs, or ``in2x eval --segments`` JSONL files. ``pair`` labels
    the inputs that carry no languages; ``domains`` collects every domain the inputs name."""
    out: dict[str, RankInput] = {}
    domains = set() if domains is None else domains
    files: list[tuple[Path, bool]] = []  # (file, found in a directory)
    for p in paths:
        path = Path(p)
        if path.is_dir() and not any(path.glob("*.jsonl")) and (path / "data" / "automatic_scores").is_dir():
            path = path / "data" / "automatic_scores"  # a wmt25-general-mt checkout, as published
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
            _read_eval_json(path, out, domain, pair, domains)
            continue
        first = next(iter_jsonl(path, require_rows=not in_dir), None)
        if first is None:
            continue  # a WMT25 system with no rows for the kept pairs
        if "metric_scores" in first.data:
            _read_wmt25_scores(path, out, domain, domains)
        else:
            _read_segment_rows(path, out, domain, pair, domains)
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
        cfg.inputs, pairs=cfg.pairs, metrics=cfg.metrics, lower_is_better=cfg.lower_is_better, aliases=aliases, domain=cfg.domain,
        allow_mixed=cfg.allow_mixed,
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
    allow_mixed: bool = False,
) -> dict[str, Any]:
    """AutoRank per language pair over the given inputs (see ``load_rank_inputs``). Systems scored
    on different segment sets, or with different metric signatures, are refused unless
    ``allow_mixed`` (then reported in the output's ``mixed``)."""
    from in2x_cli import provenance
    from in2x_cli.core.autorank import autorank

    wanted = {_pair_key(p, "--pair") for p in pairs}
    assign = pairs[0] if len(pairs) == 1 else None
    seen_domains: set[str] = set()
    data = load_rank_inputs(paths, domain=domain, pair=assign, domains=seen_domains)
    if domain is not None and (not data or (wanted and not wanted <= set(data))):
        # nothing (for the wanted pairs) in that domain: say so, not that the pair is missing
        listed = ", ".join(sorted(seen_domains)) or "none: the inputs carry no domains"
        raise UserError(f"no scores for domain {domain!r}" + (f" in {', '.join(sorted(wanted))}" if wanted else "") + f" (domains in the inputs: {listed})")
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
        mixed = check_like_with_like(entry, chosen, aliases or {}, allow_mixed)
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
                **({"mixed": mixed} if mixed else {}),
            }
        )
    config = {"inputs": list(paths), "pairs": list(pairs), "metrics": list(metrics), "lower_is_better": list(lower_is_better), "aliases": aliases,
              "domain": domain, "allow_mixed": allow_mixed}
    return {"schema": AUTORANK_SCHEMA, "pairs": out, "provenance": provenance.collect(command="eval autorank", config=config, inputs=paths)}


def _groups(values: dict[str, Any]) -> list[tuple[Any, list[str]]]:
    """system → value, grouped: [(value, systems)], the largest group first."""
    out: dict[Any, list[str]] = {}
    for system, v in values.items():
        out.setdefault(v, []).append(system)
    return sorted(out.items(), key=lambda kv: -len(kv[1]))


def check_like_with_like(entry: RankInput, metrics: Sequence[str], aliases: dict[str, str], allow_mixed: bool) -> list[str]:
    """AutoRank compares systems: they must be scored on the same segments with the same metric
    (signature). Differences are a UserError saying what differs (or, with ``allow_mixed``, a
    warning, returned as lines for the output)."""
    problems = []
    sets = _groups({s: key for s, (key, _) in entry.segment_sets.items()})
    if len(sets) > 1:
        described = "; ".join(
            f"{len(names)} system(s) on {entry.segment_sets[names[0]][1]} (e.g. {names[0]!r})" for _, names in sets
        )
        problems.append(f"the systems were scored on different segment sets: {described}")
    back = {theirs: ours for ours, theirs in aliases.items()}
    for m in metrics:
        sigs = {s: entry.signatures[s].get(m, entry.signatures[s].get(back.get(m, m))) for s in entry.systems}
        groups = _groups(sigs)
        if len(groups) > 1:
            described = "; ".join(
                f"{sig or 'unknown signature (no .meta.json)'} for {len(names)} system(s) (e.g. {names[0]!r})" for sig, names in groups
            )
            problems.append(f"metric {m!r} was computed differently: {described}")
    if problems and not allow_mixed:
        raise UserError(f"{entry.label}: {problems[0]}; rank like with like, or pass --allow-mixed to rank anyway")
    for p in problems:
        console.warn(f"{entry.label}: --allow-mixed: {p}")
    return problems
