"""Importers for real WMT test sets (read-only; the files stay where they are).

WMT24 (wmt-conference/wmt24-news-systems, txt/): for a language pair ``en-ja`` a directory holds
``en-ja.txt`` (sources, one segment per line), ``en-ja.refA.txt`` (reference), ``en-ja.docs``
(``domain<TAB>doc_id`` per line) and ``system-outputs/<System>.txt``, all line-aligned. Line 1
is a CANARY line (domain ``canary``): it is never turned into a translation row, and system
outputs are scored without it. The repository itself keeps the same files by kind —
``txt/sources/en-ja.txt``, ``txt/references/en-ja.refA.txt``, ``txt/documents/en-ja.docs``,
``txt/system-outputs/en-ja/<System>.txt`` — and ``open_wmt24`` reads that layout as published
(``--wmt24 wmt24-news-systems/txt/en-ja``, or the repository root with the pair).

WMT25 (wmt25-general-mt): JSONL, one document per row with ``doc_id``, ``src_lang``,
``tgt_lang`` (``ja_JP``), ``domain`` and ``src_text`` whose paragraphs are joined by a blank line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from in2x_cli.errors import InputError, UserError
from in2x_cli.io import iter_jsonl, read_text_lines
from in2x_cli.langs import normalize_lang, parse_pair

PARAGRAPH_SEP = "\n\n"


# the official repository's layout: file suffix -> (folder under txt/, suffix in that folder)
REPO_LAYOUT = {".txt": ("sources", ".txt"), ".refA.txt": ("references", ".refA.txt"), ".docs": ("documents", ".docs"),
               ".jsonl": ("metadata", ".jsonl")}


@dataclass(frozen=True)
class Wmt24Set:
    """One WMT24 language pair: a pair directory (``layout="pair"``), or the ``txt/`` folder of the
    wmt24-news-systems repository (``layout="repo"``)."""

    directory: Path
    pair: str
    layout: str = "pair"

    @property
    def src_lang(self) -> str:
        return parse_pair(self.pair)[0]

    @property
    def tgt_lang(self) -> str:
        return parse_pair(self.pair)[1]

    def file(self, suffix: str) -> Path:
        if self.layout == "repo" and suffix in REPO_LAYOUT:
            folder, ext = REPO_LAYOUT[suffix]
            return self.directory / folder / f"{self.pair}{ext}"
        return self.directory / f"{self.pair}{suffix}"

    def systems(self) -> dict[str, Path]:
        """System name → output file, sorted by name."""
        out_dir = self.directory / "system-outputs" / (self.pair if self.layout == "repo" else "")
        if not out_dir.is_dir():
            return {}
        return {p.stem: p for p in sorted(out_dir.glob("*.txt"))}


def _repo_root(d: Path, pair: str) -> Path | None:
    """The wmt24-news-systems ``txt/`` folder that holds ``pair`` (given ``d`` = that folder, the
    repository root, or ``<txt>/<pair>``, which does not exist there), else None."""
    for root in (d, d / "txt", d.parent, d.parent / "txt"):
        if (root / "sources" / f"{pair}.txt").is_file():
            return root
    return None


def open_wmt24(path: str | os.PathLike[str], pair: str | None = None) -> Wmt24Set:
    """``path`` is the pair directory (``.../wmt24/en-ja``) or its parent plus ``pair``; or, in the
    official repository's layout, ``wmt24-news-systems/txt/en-ja`` (or ``.../txt`` or the repository
    root plus ``pair``)."""
    d = Path(path)
    if pair is None:
        pair = d.name
    elif (d / pair).is_dir():
        d = d / pair
    if not (d / f"{pair}.txt").is_file():
        root = _repo_root(d, pair)
        if root is not None:
            parse_pair(pair)
            ws = Wmt24Set(root, pair, "repo")
            if not ws.file(".docs").is_file():
                raise UserError(f"not a complete WMT24 repository: {ws.file('.docs')} is missing", str(root))
            return ws
    if not d.is_dir():
        raise UserError("WMT24 directory not found (a pair directory such as wmt24/en-ja, or wmt24-news-systems/txt/en-ja)", str(d))
    ws = Wmt24Set(d, pair)
    for suffix in (".txt", ".docs"):
        if not ws.file(suffix).is_file():
            raise UserError(f"not a WMT24 pair directory: {ws.file(suffix).name} is missing", str(d))
    parse_pair(pair)
    return ws


def read_docs_file(path: Path) -> list[tuple[str, str]]:
    """``domain<TAB>doc_id`` per line."""
    out = []
    for i, line in enumerate(read_text_lines(path), start=1):
        parts = line.split("\t")
        if len(parts) != 2:
            raise InputError("expected 'domain<TAB>doc_id'", f"{path}:{i}")
        out.append((parts[0], parts[1]))
    return out


def is_canary(domain: str, text: str) -> bool:
    return domain == "canary" or text.startswith("CANARY GUID")


def wmt24_segments(ws: Wmt24Set, *, with_ref: bool = True) -> list[dict[str, Any]]:
    """Translation rows, one per non-canary line: id, line (1-based), src, ref, langs, domain, doc_id."""
    src = read_text_lines(ws.file(".txt"))
    docs = read_docs_file(ws.file(".docs"))
    ref = read_text_lines(ws.file(".refA.txt")) if with_ref and ws.file(".refA.txt").is_file() else None
    if len(docs) != len(src):
        raise InputError(f"{len(docs)} lines, but the source has {len(src)}", str(ws.file(".docs")))
    if ref is not None and len(ref) != len(src):
        raise InputError(f"{len(ref)} lines, but the source has {len(src)}", str(ws.file(".refA.txt")))
    rows = []
    for i, (text, (domain, doc_id)) in enumerate(zip(src, docs, strict=False)):
        if is_canary(domain, text):
            continue
        row: dict[str, Any] = {
            "id": f"wmt24.{ws.pair}.{i + 1}",
            "line": i + 1,
            "src": text,
            "src_lang": ws.src_lang,
            "tgt_lang": ws.tgt_lang,
            "domain": domain,
            "doc_id": doc_id,
        }
        if ref is not None:
            row["ref"] = ref[i]
        rows.append(row)
    return rows


def canary_lines(ws: Wmt24Set) -> set[int]:
    """0-based indices of canary lines (to drop them from system outputs)."""
    src = read_text_lines(ws.file(".txt"))
    docs = read_docs_file(ws.file(".docs"))
    return {i for i, (t, (d, _)) in enumerate(zip(src, docs, strict=False)) if is_canary(d, t)}


def group_documents(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Segment rows → document rows (first-appearance order). Segments become paragraphs:
    ``src`` joins them with a blank line and ``segment_ids`` keeps the mapping back."""
    docs: dict[str, dict[str, Any]] = {}
    for seg in segments:
        doc = docs.get(seg["doc_id"])
        if doc is None:
            doc = docs[seg["doc_id"]] = {
                "id": seg["doc_id"],
                "doc_id": seg["doc_id"],
                "src_lang": seg["src_lang"],
                "tgt_lang": seg["tgt_lang"],
                "domain": seg["domain"],
                "_src": [],
                "_ref": [],
                "segment_ids": [],
            }
        doc["_src"].append(seg["src"])
        doc["segment_ids"].append(seg["id"])
        if "ref" in seg:
            doc["_ref"].append(seg["ref"])
    out = []
    for doc in docs.values():
        row = {k: v for k, v in doc.items() if not k.startswith("_")}
        row["src"] = PARAGRAPH_SEP.join(p.replace("\n", " ") for p in doc["_src"])
        if doc["_ref"]:
            row["ref"] = PARAGRAPH_SEP.join(p.replace("\n", " ") for p in doc["_ref"])
        out.append(row)
    return out


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs of a WMT25-style document: blocks separated by one or more blank lines."""
    paras = []
    for block in text.replace("\r\n", "\n").split(PARAGRAPH_SEP):
        block = block.strip("\n")
        if block.strip():
            paras.append(block)
    return paras


def iter_wmt25(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """WMT25 JSONL test rows → translation rows (``src`` = ``src_text``; languages normalised,
    the original ``ja_JP`` kept as ``tgt_locale``)."""
    for line in iter_jsonl(path):
        d = line.data
        missing = [k for k in ("src_text", "src_lang", "tgt_lang") if k not in d and not (k == "src_text" and "src" in d)]
        if missing:
            raise InputError(f"missing required field {', '.join(repr(m) for m in missing)}", line.where)
        row = dict(d)
        row["src"] = row.pop("src_text", row.get("src"))
        if not isinstance(row["src"], str):
            raise InputError("field 'src_text' must be a string", line.where)
        row["tgt_locale"] = d["tgt_lang"]
        row["src_lang"] = normalize_lang(d["src_lang"], where=line.where)
        row["tgt_lang"] = normalize_lang(d["tgt_lang"], where=line.where)
        if "doc_id" not in row and "document_id" in row:
            row["doc_id"] = row.pop("document_id")
        row.setdefault("id", row.get("doc_id", f"line{line.lineno}"))
        yield row


def iter_wmt25_scores(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """WMT25 automatic-score rows (wmt25-general-mt/data/automatic_scores/<System>.jsonl): one
    document per line with ``language_pair`` (``en-ja_JP``), ``domain``, ``document_id`` and
    ``metric_scores`` = {metric: [paragraph score or null, ...]}. Yields ``{pair, domain,
    doc_id, metric_scores, where}``; a malformed row is an InputError naming file:line."""
    for line in iter_jsonl(path):
        d = line.data
        pair = d.get("language_pair")
        scores = d.get("metric_scores")
        if not isinstance(pair, str):
            raise InputError("missing or non-string field 'language_pair'", line.where)
        parse_pair(pair)
        if not isinstance(scores, dict):
            raise InputError("field 'metric_scores' must be an object {metric: [scores]}", line.where)
        for metric, values in scores.items():
            if not isinstance(values, list) or not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values
            ):
                raise InputError(f"metric_scores[{metric!r}] must be a list of numbers or nulls", line.where)
        yield {
            "pair": pair,
            "domain": d.get("domain"),
            "doc_id": d.get("document_id", d.get("doc_id")),
            "metric_scores": scores,
            "where": line.where,
        }
