"""Translate inputs as ``Job``s (one per output row) and the WMT24 segment lines of the output.

JSONL rows, plain text (a row per line, or the whole text as one document) or a WMT24 pair
directory; a document's paragraphs are its blank-line separated blocks. Rows are validated before
any model loads (errors name file:line) and streamed when translated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from in2x_cli.errors import InputError, UserError
from in2x_cli.io.jsonl import Line, iter_raw_lines, parse_json_line
from in2x_cli.io.multipass import RawSpool
from in2x_cli.langs import normalize_lang
from in2x_cli.records import TranslationRow, row_key
from in2x_cli.wmt import split_paragraphs


@dataclass
class Job:
    """One output row in the making."""

    key: str
    row: dict[str, Any]  # what is written (input fields; hyp added)
    src_lang: str
    tgt_lang: str
    paragraphs: list[str]
    is_document: bool
    pieces: list[list[str | None]] = field(default_factory=list)  # per paragraph, per part
    chunks: int = 0
    fallback: int = 0
    truncated: bool = False  # the chosen output of some request was cut at --max-tokens
    mbr_log: list[dict[str, Any]] = field(default_factory=list)
    fusion_log: list[dict[str, Any]] = field(default_factory=list)  # --fuse: one entry per fused request


def _make_job(key: str, row: dict[str, Any], src: str, src_lang: str, tgt_lang: str) -> Job:
    paras = split_paragraphs(src)
    is_doc = len(paras) > 1 or "segment_ids" in row
    return Job(key, row, src_lang, tgt_lang, paras, is_doc)


def _lang(value: Any, default: str | None, field_name: str, where: str) -> str:
    if value is None:
        if default is None:
            raise InputError(f"missing {field_name!r} (or pass --{field_name.replace('_', '-')})", where)
        return default
    return normalize_lang(value, where=f"{where}: field {field_name!r}")


class JobSource:
    """The jobs of a JSONL or plain-text input, streamed (``load_jobs`` builds it).

    The constructor reads the whole input once and validates every row (errors name file:line
    before any model loads) but keeps only the rows' keys; iterating reads the input again and
    builds each ``Job`` as it goes (stdin is spooled to a temporary file in the first pass), so
    memory does not grow with the input. ``len()`` is the number of jobs; ``keys`` their keys in
    order. Use as a context manager (or call ``close``) to remove the spool.
    """

    def __init__(self, path: str, *, src_lang: str | None, tgt_lang: str | None, input_format: str = "auto", text_unit: str = "line") -> None:
        self.name = "<stdin>" if path == "-" else path
        self._path = path
        self._spool: RawSpool | None = None
        self._shard: tuple[int, int] | None = None
        self._document: Job | None = None
        self.s_def = normalize_lang(src_lang) if src_lang else None
        self.t_def = normalize_lang(tgt_lang) if tgt_lang else None
        self.text_unit = text_unit
        self.fmt = ""
        self.keys: list[str] = []
        if path == "-":
            self._spool = RawSpool(prefix="in2x-translate-", suffix=".txt")
        try:
            self._first_pass(input_format, self._spool)
        except BaseException:
            self.close()
            raise
        if self._spool is not None:
            self._spool.finish()

    def _first_pass(self, input_format: str, spool: RawSpool | None) -> None:
        seen: dict[str, int] = {}
        document: list[str] = []
        leading: list[tuple[int, str]] = []  # blank lines before the first text: the format decides what they are
        for lineno, text in iter_raw_lines(self._path):
            if spool is not None:
                spool.write(text)
            if not self.fmt:
                leading.append((lineno, text))
                if not text.strip():
                    continue
                self.fmt = input_format if input_format != "auto" else ("jsonl" if text.lstrip().startswith("{") else "text")
                if self.fmt == "text" and (self.s_def is None or self.t_def is None):
                    # name the line that made it plain text: often a JSONL file whose first row is broken
                    raise UserError(
                        "not a JSON object, so the input is read as plain text, which needs --src-lang and --tgt-lang "
                        "(or give JSONL rows with src_lang/tgt_lang)",
                        f"{self.name}:{lineno}",
                    )
                todo, leading = leading, []
            else:
                todo = [(lineno, text)]
            for ln, tx in todo:
                if self.fmt == "text" and self.text_unit == "document":
                    document.append(tx)
                    continue
                job = self._job(ln, tx, len(self.keys))
                if job is None:
                    continue
                if job.key in seen:
                    kind, value = job.key.split(":", 1)
                    raise InputError(f"duplicate {kind} {value!r} (first at {self.name}:{seen[job.key]}); ids must be unique", f"{self.name}:{ln}")
                seen[job.key] = ln
                self.keys.append(job.key)
        if not self.fmt:
            raise InputError("empty input: nothing to translate", self.name)
        if document:
            assert self.s_def is not None and self.t_def is not None
            src = "\n".join(document)
            self._document = _make_job("id:doc", {"id": "doc", "src": src, "src_lang": self.s_def, "tgt_lang": self.t_def}, src, self.s_def, self.t_def)
            self.keys = [self._document.key]

    def _job(self, lineno: int, text: str, index: int) -> Job | None:
        """One input line as a Job (None: a blank JSONL line). ``index`` counts the rows before it."""
        if self.fmt == "text":
            assert self.s_def is not None and self.t_def is not None
            row = {"id": lineno, "src": text, "src_lang": self.s_def, "tgt_lang": self.t_def}
            return _make_job(f"id:{lineno}", row, text, self.s_def, self.t_def)
        if not text.strip():
            return None
        where = f"{self.name}:{lineno}"
        line = Line(self.name, lineno, parse_json_line(text, where))
        rec = TranslationRow.from_line(line)
        s = _lang(rec.src_lang, self.s_def, "src_lang", where)
        t = _lang(rec.tgt_lang, self.t_def, "tgt_lang", where)
        key = row_key(line.data, index)
        rec.hyp = None  # a previous translation is replaced, not kept under an alias
        row = rec.to_dict()
        row.pop("truncated", None)  # ... and so is what was said about it
        return _make_job(key, row, rec.src or "", s, t)

    def shard(self, i: int, n: int) -> JobSource:
        """Every n-th job starting at job i (0-based)."""
        self._shard = (i, n)
        self.keys = self.keys[i::n]
        return self

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[Job]:
        if self._document is not None:
            yield from ([self._document] if self._shard is None or self._shard[0] == 0 else [])
            return
        index = 0
        for lineno, text in iter_raw_lines(self._spool.path if self._spool is not None else self._path):
            job = self._job(lineno, text, index)
            if job is None:
                continue
            if self._shard is None or index % self._shard[1] == self._shard[0]:
                yield job
            index += 1

    def close(self) -> None:
        if self._spool is not None:
            self._spool.remove()
            self._spool = None

    def __enter__(self) -> JobSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_jobs(path: str, *, src_lang: str | None, tgt_lang: str | None, input_format: str = "auto", text_unit: str = "line") -> JobSource:
    """JSONL rows (``src``/``src_text``, ``src_lang``, ``tgt_lang``, anything else passed through) or
    plain text (one row per line, or the whole text as one document with ``text_unit='document'``),
    validated now and streamed when iterated (see ``JobSource``)."""
    return JobSource(path, src_lang=src_lang, tgt_lang=tgt_lang, input_format=input_format, text_unit=text_unit)


def wmt24_jobs(directory: str) -> tuple[list[Job], Any]:
    """WMT24 line-aligned files → document jobs (canary line excluded); also the ``Wmt24Set``."""
    from in2x_cli.wmt import group_documents, open_wmt24, wmt24_segments

    ws = open_wmt24(directory)
    docs = group_documents(wmt24_segments(ws))
    return [_make_job(f"id:{d['id']}", d, d["src"], d["src_lang"], d["tgt_lang"]) for d in docs], ws


def shard(jobs: Sequence[Job] | JobSource, spec: str | None) -> Sequence[Job] | JobSource:
    """``i/n``: every n-th job starting at i (0-based), for data-parallel processes."""
    if not spec:
        return jobs
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise UserError(f"--shard must be i/n with 0 <= i < n (e.g. 0/4), got {spec!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if isinstance(jobs, JobSource):
        return jobs.shard(i, n)
    return [j for k, j in enumerate(jobs) if k % n == i]


def segment_lines(ws: Any, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Translated document rows → one line per WMT24 source line (canary line copied from the
    source, as the published system outputs do); line breaks inside a paragraph become spaces."""
    from in2x_cli.io import read_text_lines
    from in2x_cli.wmt import canary_lines, wmt24_segments

    src = read_text_lines(ws.file(".txt"))
    out: list[str | None] = [None] * len(src)
    for i in canary_lines(ws):
        out[i] = src[i]
    line_of = {s["id"]: s["line"] - 1 for s in wmt24_segments(ws, with_ref=False)}
    for row in rows:
        ids, paras = row.get("segment_ids"), row.get("hyp_paragraphs")
        if not isinstance(ids, list) or not isinstance(paras, list) or len(ids) != len(paras):
            raise UserError(f"row {row.get('id')!r} has no segment_ids/hyp_paragraphs of equal length", "--segments-out")
        for sid, hyp in zip(ids, paras, strict=True):
            if sid not in line_of:
                raise UserError(f"segment id {sid!r} is not a line of {ws.file('.txt')}", "--segments-out")
            out[line_of[sid]] = " ".join(str(hyp).split("\n"))
    missing = [i + 1 for i, v in enumerate(out) if v is None]
    if missing:
        raise UserError(f"no translation for {len(missing)} source lines (first: line {missing[0]})", "--segments-out")
    return [v for v in out if v is not None]
