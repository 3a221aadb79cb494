"""What ``in2x eval`` scores: ``TestSet``s, one per language pair.

A test set holds the segments (id, src, ref, doc_id, domain) and the systems' hypotheses,
line-aligned with the segments; the first system is the baseline. Three readers: translation rows
(JSONL), line-aligned text files, and a WMT24 pair directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from in2x_cli import console
from in2x_cli.errors import InputError, UserError
from in2x_cli.evaluate.config import EvalConfig
from in2x_cli.io import iter_jsonl, read_text_lines
from in2x_cli.langs import detect_lang, normalize_lang, parse_pair


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
    truncated: dict[str, tuple[int, int]] = field(default_factory=dict)  # system → (rows cut at --max-tokens, rows)
    models: dict[str, str] = field(default_factory=dict)  # system → the model its rows record (in2x translate)

    @property
    def pair(self) -> str | None:
        return f"{self.src_lang}-{self.tgt_lang}" if self.src_lang and self.tgt_lang else None


def split_named(spec: str) -> tuple[str, str]:
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
    canary = {i for lines in (src_lines, ref_lines) if lines for i, t in enumerate(lines) if is_canary_text(t)}
    segments = [
        Segment(id=i + 1, src=src_lines[i] if src_lines else "", ref=ref_lines[i] if ref_lines else None, where=f"{base_name}:{i + 1}")
        for i in range(n) if i not in canary
    ]
    ts = TestSet(source=base_name, segments=segments)
    for spec in hyps:
        name, path = split_named(spec)
        lines = _hyp_lines(path, n, f"but {base_name} has {n}: hypotheses must be line-aligned",
                           empty="empty hypothesis file (an empty translation is an empty line, not a missing file)", canary=canary)
        _add_system(ts.systems, name, lines, path)
    if canary:
        _say_canary(base_name, canary)
    return ts


def is_canary_text(text: str) -> bool:
    from in2x_cli.wmt import is_canary

    return is_canary("", text)


def _say_canary(where: str, canary: set[int], *, expected: bool = False) -> None:
    """Say once that the canary is not scored: a note where it is expected (--wmt24), a warning
    where it came in with the user's files (text mode)."""
    lines = ", ".join(str(i + 1) for i in sorted(canary))
    (console.info if expected else console.warn)(
        f"{where}: the WMT canary line ({'line' if len(canary) == 1 else 'lines'} {lines}) is not a test segment: not scored"
    )


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
        _add_system(ts.systems, name, _hyp_lines(path, n_lines, f"but the source has {n_lines}", canary=canary), path)
    for spec in extra:
        name, xpath = split_named(spec)
        lines = _hyp_lines(xpath, n_lines, f"but the WMT24 source has {n_lines} (canary line included)", canary=canary)
        _add_system(ts.systems, name, lines, xpath)
    if canary:
        _say_canary(str(ws.file(".txt")), canary, expected=True)
    return ts


def _hyp_lines(path: str, n: int, mismatch: str, *, empty: str = "empty hypothesis file", canary: frozenset[int] | set[int] = frozenset()) -> list[str]:
    """A system's output file: its lines without the ``canary`` line indices, aligned with the
    scored segments. The file has ``n`` lines, or ``n - len(canary)`` when the canary lines were
    already stripped (else InputError: "<count>, <mismatch>")."""
    lines = read_text_lines(path)
    if not lines:
        raise InputError(empty, path)
    if canary and len(lines) == n - len(canary):
        return lines
    if len(lines) != n:
        if canary:
            mismatch += f" (or {n - len(canary)} without the canary line)"
        raise InputError(f"{_lines(len(lines))}, {mismatch}", path)
    return [t for i, t in enumerate(lines) if i not in canary]


def _paragraph_rows(row: Any, hyp_paragraphs: Any, where: str) -> tuple[list[tuple[str, str, str | None, str]], bool]:
    """A document row → (suffix, src, ref, hyp) per paragraph (WMT25 scores paragraphs).

    Source and reference paragraphs are blank-line separated; the hypothesis paragraphs come
    from ``hyp_paragraphs`` (what ``in2x translate`` writes, aligned by construction) or else
    from splitting ``hyp``; when ``hyp`` is no longer the joined ``hyp_paragraphs`` (edited after
    translation) ``hyp`` is split instead. Counts must agree. Also returns whether ``hyp`` was edited."""
    from in2x_cli.wmt import PARAGRAPH_SEP, split_paragraphs

    src = split_paragraphs(row.src or "")
    hyp = hyp_paragraphs if hyp_paragraphs is not None else split_paragraphs(row.hyp or "")
    if not isinstance(hyp, list) or not all(isinstance(h, str) for h in hyp):
        raise InputError("field 'hyp_paragraphs' must be a list of strings", where)
    edited = hyp_paragraphs is not None and row.hyp != PARAGRAPH_SEP.join(hyp_paragraphs)
    if edited:
        # 'hyp' was changed after in2x translate wrote both (a post-edit): 'hyp' is the translation
        hyp = split_paragraphs(row.hyp or "")
    ref = split_paragraphs(row.ref) if row.ref is not None else None
    if len(hyp) != len(src) or (ref is not None and len(ref) != len(src)):
        counts = f"source {len(src)}, hypothesis {len(hyp)}" + (f", reference {len(ref)}" if ref is not None else "")
        if edited:
            raise InputError(f"--split-paragraphs: 'hyp' differs from the joined 'hyp_paragraphs' (edited?) and does not split into the source's paragraphs ({counts}): re-split it at blank lines or update 'hyp_paragraphs'", where)
        raise InputError(f"--split-paragraphs: paragraph counts differ ({counts})", where)
    return [(f"#p{k + 1}", src[k], None if ref is None else ref[k], hyp[k]) for k in range(len(src))], edited


def _file_systems(specs: Sequence[str]) -> list[tuple[str, str]]:
    """(path, default system name) per JSONL input: ``NAME=path`` names it; else the file name,
    or, when two files share a name (runs/a/out.jsonl, runs/b/out.jsonl), the model that
    ``in2x translate`` recorded in their provenance."""
    files = []
    for spec in specs:
        name, path = split_named(spec) if spec != "-" else ("system", "-")
        named = path != spec
        files.append((path, name if named else ("system" if path == "-" else Path(path).name.split(".")[0]), named))
    names = [n for _, n, _ in files]
    out = []
    for path, name, named in files:
        if not named and names.count(name) > 1:
            model = _recorded_model(path)
            if model is None:
                raise UserError(f"two inputs are named {name!r}: name them NAME=path", path)
            name = model
        out.append((path, name))
    return out


def _recorded_model(path: str) -> str | None:
    """The model ``in2x translate`` recorded in ``path``'s provenance (.meta.json), as its last path part."""
    import json

    from in2x_cli.io.jsonl import meta_path

    try:
        models = json.loads(Path(meta_path(path)).read_text(encoding="utf-8"))["config"]["models"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(models, list) or not models:
        return None
    return "+".join(str(m).rstrip("/").rsplit("/", 1)[-1] for m in models)


def read_jsonl_inputs(path: str | Sequence[str], lang_pair: str | None = None, split_paragraphs: bool = False) -> list[TestSet]:
    """Translation rows (src, ref, hyp; optional id, doc_id, domain, system, src_lang, tgt_lang)
    from one or more files (``NAME=path`` names a file's system).

    Rows are grouped by language pair, then by ``system`` (default: the file's name, see
    ``_file_systems``), so ``in2x eval a.jsonl b.jsonl`` compares two translate runs. Systems are
    aligned by ``id`` (else by their order); every system must cover the same segments, with
    the same reference. ``split_paragraphs`` scores document rows paragraph by paragraph (ids
    ``<id>#p<k>``, ``doc_id`` = the row's id), the unit WMT25 scores and ranks."""
    from in2x_cli.records import TranslationRow

    paths = [path] if isinstance(path, str) else list(path)
    forced = parse_pair(lang_pair) if lang_pair else None
    pairs: dict[tuple[str | None, str | None], dict[str, list[tuple[str, Segment, str]]]] = {}
    edited_rows: list[str] = []
    truncated: dict[tuple[tuple[str | None, str | None], str], tuple[int, int]] = {}  # in2x translate marks rows cut at --max-tokens
    system_file: dict[str, str] = {}  # system → the file it came from (one file per system)
    models: dict[tuple[tuple[str | None, str | None], str], set[str]] = {}
    for file, default_system in _file_systems(paths):
        for line in iter_jsonl(file):
            row = TranslationRow.from_line(line)
            if row.hyp is None:
                raise InputError("missing required field 'hyp' (or 'mt'/'hypothesis'): the translation to score", line.where)
            langs: tuple[str | None, str | None] = (
                normalize_lang(row.src_lang, where=line.where) if row.src_lang else None,
                normalize_lang(row.tgt_lang, where=line.where) if row.tgt_lang else None,
            )
            if forced:
                _check_forced_pair(forced, langs, line.where)
                langs = forced
            system = row.system or default_system
            if system_file.setdefault(system, file) != file:
                raise InputError(f"system {system!r} is also in {system_file[system]}: name the inputs NAME=path", line.where)
            per_sys = pairs.setdefault(langs, {}).setdefault(system, [])
            if isinstance(row.extra.get("model"), str):  # in2x translate records the model that made the row
                models.setdefault((langs, system), set()).add(row.extra["model"])
            cut, seen_rows = truncated.get((langs, system), (0, 0))
            truncated[(langs, system)] = (cut + (row.extra.get("truncated") is True), seen_rows + 1)
            if split_paragraphs:
                doc_key = str(row.id if row.id is not None else row.doc_id if row.doc_id is not None else f"#{len(per_sys) + 1}")
                paragraphs, edited = _paragraph_rows(row, row.extra.get("hyp_paragraphs"), line.where)
                if edited:
                    edited_rows.append(line.where)
                for suffix, p_src, p_ref, p_hyp in paragraphs:
                    seg = Segment(id=doc_key + suffix, src=p_src, ref=p_ref, doc_id=row.doc_id or doc_key, domain=row.domain, where=line.where)
                    per_sys.append((doc_key + suffix, seg, p_hyp))
                continue
            key = str(row.id) if row.id is not None else f"#{len(per_sys) + 1}"
            seg = Segment(id=row.id if row.id is not None else len(per_sys) + 1, src=row.src or "", ref=row.ref, doc_id=row.doc_id, domain=row.domain, where=line.where)
            per_sys.append((key, seg, row.hyp))
    if edited_rows:
        console.warn(f"--split-paragraphs: {len(edited_rows)} row(s) have a 'hyp' that differs from their joined 'hyp_paragraphs' "
                     f"(edited after translation; first {edited_rows[0]}): scored 'hyp', split at blank lines")
    out = []
    for (src_lang, tgt_lang), systems in pairs.items():
        names = list(systems)
        first = systems[names[0]]
        seen: dict[str, Segment] = {}
        for key, seg, _ in first:
            if key in seen:
                raise InputError(f"duplicate id {key!r} for system {names[0]!r} (first at {seen[key].where})", seg.where)
            seen[key] = seg
        ts = TestSet(source=", ".join(paths), segments=[seg for _, seg, _ in first], src_lang=src_lang, tgt_lang=tgt_lang)
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
                    f"system {name!r} has {len(by_key)} segments but {names[0]!r} has {len(seen)} (missing {missing[0]!r}, …)", system_file[name]
                )
            ts.systems[name] = [by_key[k] for k in seen]
            if truncated[((src_lang, tgt_lang), name)][0]:
                ts.truncated[name] = truncated[((src_lang, tgt_lang), name)]
            made_by = models.get(((src_lang, tgt_lang), name), set())
            if len(made_by) == 1:
                ts.models[name] = next(iter(made_by))
        out.append(ts)
    return out


def _check_forced_pair(forced: tuple[str, str], data: tuple[str | None, str | None], where: str) -> None:
    """``-l`` fills in languages the data lacks; contradicting the data's is an error naming both
    (it would pick the wrong BLEU tokenizer and score, say, Japanese as Chinese)."""
    for side, given, found in (("source", forced[0], data[0]), ("target", forced[1], data[1])):
        if found is not None and found != given:
            pair = f"{data[0] or '?'}-{data[1] or '?'}"
            raise InputError(f"-l/--lang-pair {forced[0]}-{forced[1]} contradicts the data's pair {pair} ({side} {found!r}, not {given!r}); drop -l or fix the data", where)


def resolve_languages(ts: TestSet, lang_pair: str | None) -> None:
    """Fill in languages: ``-l SRC-TGT``, else detect the target from references (or outputs).
    ``-l`` must agree with languages the data carries (rows' src_lang/tgt_lang, a WMT24 directory)."""
    if lang_pair:
        forced = parse_pair(lang_pair)
        _check_forced_pair(forced, (ts.src_lang, ts.tgt_lang), ts.source)
        ts.src_lang, ts.tgt_lang = forced
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
        sets = read_jsonl_inputs([cfg.input, *cfg.more_inputs], cfg.lang_pair, cfg.split_paragraphs)
    elif cfg.wmt24 is not None:
        sets = [read_wmt24_inputs(cfg.wmt24, cfg.systems, cfg.hyps)]
    else:
        sets = [read_text_inputs(cfg.src, cfg.ref, cfg.hyps)]
    for ts in sets:
        resolve_languages(ts, cfg.lang_pair)
    return sets
