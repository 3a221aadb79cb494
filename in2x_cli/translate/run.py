"""The ``translate`` stage: input rows → generation requests → candidate selection → output rows.

Read top to bottom:

1. ``load_jobs`` / ``wmt24_jobs`` turn JSONL rows, plain text or a WMT24 directory into ``Job``s
   (one per output row; a document's paragraphs are its blank-line separated blocks).
2. ``translate_jobs`` processes jobs in rounds of ``chunk_rows``. In a round every request of a
   phase goes to the backend in one call (the backend batches and sorts by length; vLLM runs one
   ``generate``), first greedy, then ``--mbr N`` samples per request, per model of the ensemble.
   - phase 1 (``document`` granularity): each document — or, when it does not fit the context,
     each chunk of paragraphs (``core.translate.plan_chunks``) — is one request. Candidates are
     cleaned (``core.translate.clean_output``) and must align paragraph for paragraph with the
     source; MBR picks among the aligned ones.
   - phase 2 (fallback): chunks with no aligned candidate are re-translated paragraph by
     paragraph. ``paragraph``/``sentence`` granularities start here.
   Rows of a round are yielded in input order, so a killed run resumes into identical output.
3. Seeds are per request, derived from (``--seed``, row id, request tag, model index), so a row's
   samples do not depend on which other rows are in the run (sharding, resuming).

Ensembles load one model at a time (bounded memory): the model loaded last stays loaded into the
next phase; candidates are pooled in model order whatever the loading order.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from in2x_cli import console
from in2x_cli.core import translate as T
from in2x_cli.core.mbr import MbrGroup, get_utility, mbr_decode
from in2x_cli.core.metrics import DEFAULT_COMET_MODEL
from in2x_cli.errors import InputError, UserError
from in2x_cli.io.jsonl import Line, iter_raw_lines, parse_json_line
from in2x_cli.io.multipass import RawSpool
from in2x_cli.langs import normalize_lang
from in2x_cli.records import TranslationRow, row_key
from in2x_cli.wmt import split_paragraphs

GRANULARITIES = ("document", "paragraph", "sentence")


@dataclass(frozen=True)
class TranslateConfig:
    models: tuple[str, ...]
    backend: str = "auto"
    granularity: str = "document"
    system: str | None = None
    templates: dict[str, str] = field(default_factory=lambda: dict(T.TEMPLATES))
    mbr: int = 0
    mbr_utility: str = "chrf"
    mbr_output: str = "best"
    comet_model: str = DEFAULT_COMET_MODEL
    temperature: float = 1.0
    top_p: float = 0.9
    max_tokens: int = 0
    seed: int = 0
    chunk_rows: int = 256
    backend_options: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- jobs


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
    mbr_log: list[dict[str, Any]] = field(default_factory=list)


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
        return _make_job(key, rec.to_dict(), rec.src or "", s, t)

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


# ---------------------------------------------------------------------------------- requests


@dataclass
class Unit:
    """One generation request."""

    job: Job
    kind: str  # "document" (aligned paragraphs), "paragraph", "part" (sentence(s) of a paragraph)
    tag: str  # stable within the row: seeds derive from it
    span: tuple[int, int]  # paragraph range covered
    part: int  # index within the paragraph's pieces (parts only)
    sources: list[str]  # what each candidate must align to
    messages: list[dict[str, str]]
    src_tokens: int


@dataclass
class Candidate:
    model: int
    sample: int  # -1 = greedy
    text: str
    tokens: int


@dataclass
class TranslateStats:
    rows: int = 0
    documents: int = 0
    requests: dict[str, int] = field(default_factory=lambda: Counter())
    split_for_context: int = 0
    document_chunks: int = 0
    misaligned_chunks: int = 0
    prompts: int = 0
    candidates: int = 0
    generated_tokens: int = 0
    cleaning: dict[str, int] = field(default_factory=lambda: Counter())
    model_loads: int = 0
    seconds: float = 0.0  # wall time of the run, model loading included
    generate_seconds: float = 0.0  # time inside backend generation calls
    load_seconds: float = 0.0  # time spent loading models

    def to_dict(self) -> dict[str, Any]:
        rate = self.misaligned_chunks / self.document_chunks if self.document_chunks else 0.0
        return {
            "rows": self.rows,
            "documents": self.documents,
            "requests": dict(sorted(self.requests.items())),
            "documents_split_for_context": self.split_for_context,
            "document_chunks": self.document_chunks,
            "paragraph_fallbacks": self.misaligned_chunks,
            "fallback_rate": round(rate, 4),
            "prompts": self.prompts,
            "candidates": self.candidates,
            "generated_tokens": self.generated_tokens,
            "cleaning_rules_fired": dict(sorted(self.cleaning.items())),
            "model_loads": self.model_loads,
            "seconds": round(self.seconds, 3),
            "generate_seconds": round(self.generate_seconds, 3),
            "load_seconds": round(self.load_seconds, 3),
            "rows_per_s": round(self.rows / self.seconds, 3) if self.seconds else None,
            "tokens_per_s": round(self.generated_tokens / self.generate_seconds, 1) if self.generate_seconds else None,
        }


class BackendPool:
    """At most one backend loaded at a time; the last one stays loaded for the next phase."""

    def __init__(self, cfg: TranslateConfig, stats: TranslateStats) -> None:
        self.cfg = cfg
        self.stats = stats
        self.loaded: tuple[int, Any] | None = None

    def get(self, index: int) -> Any:
        from in2x_cli.backends import load_backend

        if self.loaded and self.loaded[0] == index:
            return self.loaded[1]
        self.close()
        model = self.cfg.models[index]
        console.info(f"translate: loading {model} ({self.cfg.backend} backend)")
        t0 = time.perf_counter()
        backend = load_backend(self.cfg.backend, model, seed=self.cfg.seed, **self.cfg.backend_options)
        self.stats.load_seconds += time.perf_counter() - t0
        self.stats.model_loads += 1
        self.loaded = (index, backend)
        return backend

    def order(self) -> list[int]:
        """Model indices, the already-loaded one first (saves a load per phase in ensembles)."""
        n = len(self.cfg.models)
        first = self.loaded[0] if self.loaded else 0
        return [first] + [i for i in range(n) if i != first]

    def close(self) -> None:
        if self.loaded:
            self.loaded[1].close()
            self.loaded = None


class TokenView:
    """A backend's tokenizer-side methods without the model (an ensemble unloads the model, the
    planner keeps counting tokens with this)."""

    def __init__(self, backend: Any) -> None:
        self.tokenizer = backend.tokenizer
        self.context_length = int(backend.context_length)
        self.model_path = backend.model_path
        self._count_tokens = type(backend).count_tokens
        self._chat_prompt = type(backend).chat_prompt

    def count_tokens(self, text: str) -> int:
        return int(self._count_tokens(self, text))

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return str(self._chat_prompt(self, messages))


class Planner:
    """Turns jobs into requests sized for the (first) model's context."""

    def __init__(self, cfg: TranslateConfig, backend: Any) -> None:
        self.cfg = cfg
        self.backend = TokenView(backend)
        self._budgets: dict[tuple[str, str], T.ContextBudget] = {}
        self._templates: dict[tuple[str, str], str] = {}

    def template(self, s: str, t: str) -> str:
        if (s, t) not in self._templates:
            try:
                self._templates[(s, t)] = T.select_template(self.cfg.templates, s, t)
            except KeyError as exc:
                raise UserError(str(exc.args[0]), "--prompt-file") from None
        return self._templates[(s, t)]

    def messages(self, job: Job, text: str, paragraphs: int) -> list[dict[str, str]]:
        prompt = T.render_prompt(self.template(job.src_lang, job.tgt_lang), text, job.src_lang, job.tgt_lang, paragraphs)
        return T.build_messages(prompt, self.cfg.system)

    def budget(self, job: Job) -> T.ContextBudget:
        key = (job.src_lang, job.tgt_lang)
        if key not in self._budgets:
            # Template + chat markup around an empty source, plus room for the {structure} sentence.
            shell = self.backend.chat_prompt(self.messages(job, "", 99))
            overhead = self.backend.count_tokens(shell) + 8
            self._budgets[key] = T.ContextBudget(self.backend.context_length, overhead, self.cfg.max_tokens)
            if self._budgets[key].source_budget() < 16:
                raise UserError(
                    f"the model's context ({self.backend.context_length} tokens) leaves no room for a source text "
                    f"(prompt {overhead} tokens, output budget {self.cfg.max_tokens or 'auto'})"
                )
        return self._budgets[key]

    def tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    def _parts(self, job: Job, p: int, sentences: bool, budget: int, tag: str) -> list[Unit]:
        """A paragraph as one request, or as sentence(s) when asked or when it is too long."""
        para = job.paragraphs[p]
        n_tok = self.tokens(para)
        if not sentences and n_tok <= budget:
            job.pieces[p] = [None]
            return [Unit(job, "paragraph", f"{tag}p{p}", (p, p + 1), 0, [para], self.messages(job, para, 1), n_tok)]
        sents = T.split_sentences(para, job.src_lang) or [para]
        if sentences:
            groups = [(i, i + 1) for i in range(len(sents))]
        else:
            groups = T.plan_chunks([self.tokens(s) for s in sents], budget, sep_tokens=1)
        job.pieces[p] = [None] * len(groups)
        units = []
        for k, (a, b) in enumerate(groups):
            text = T.sentence_joiner(job.src_lang).join(sents[a:b])
            units.append(Unit(job, "part", f"{tag}p{p}s{a}-{b}", (p, p + 1), k, [text], self.messages(job, text, 1), self.tokens(text)))
        return units

    def plan(self, job: Job, stats: TranslateStats) -> list[Unit]:
        job.pieces = [[None] for _ in job.paragraphs]
        if not job.paragraphs:
            return []
        budget = self.budget(job).source_budget()
        g = self.cfg.granularity
        if g != "document" or len(job.paragraphs) == 1:
            units = []
            for p in range(len(job.paragraphs)):
                units += self._parts(job, p, g == "sentence", budget, "")
            return units
        lengths = [self.tokens(p) for p in job.paragraphs]
        chunks = T.plan_chunks(lengths, budget)
        job.chunks = len(chunks)
        if len(chunks) > 1:
            stats.split_for_context += 1
        units = []
        for a, b in chunks:
            if b - a == 1:
                units += self._parts(job, a, False, budget, f"c{a}-{b}")
                continue
            text = T.PARAGRAPH_SEP.join(job.paragraphs[a:b])
            units.append(
                Unit(job, "document", f"c{a}-{b}", (a, b), 0, job.paragraphs[a:b], self.messages(job, text, b - a), sum(lengths[a:b]))
            )
        return units

    def fallback(self, unit: Unit) -> list[Unit]:
        budget = self.budget(unit.job).source_budget()
        units = []
        for p in range(*unit.span):
            units += self._parts(unit.job, p, False, budget, f"f{unit.tag}")
        return units


# ---------------------------------------------------------------------------------- generation


def _generate(
    units: list[Unit], pool: BackendPool, cfg: TranslateConfig, stats: TranslateStats, bar: Any, label: str
) -> list[list[Candidate]]:
    """Candidates per unit, pooled in model order: per model the greedy output, then ``cfg.mbr``
    samples. One backend call per (model, decoding mode) over all units."""
    from in2x_cli.backends import SamplingParams, derive_seed

    if not units:
        return []
    max_tokens = cfg.max_tokens
    if max_tokens <= 0:  # auto: the largest request's budget (the planner made every request fit it)
        max_tokens = max(T.ContextBudget(context=0, overhead=0).output_tokens(u.src_tokens) for u in units)
    greedy_params = SamplingParams(n=1, temperature=0.0, max_tokens=max_tokens, seed=cfg.seed)
    sample_params = None
    if cfg.mbr > 0:
        sample_params = SamplingParams(n=cfg.mbr, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=max_tokens, seed=cfg.seed)
    convs = [u.messages for u in units]
    calls = 1 if sample_params is None else 2
    per_model: dict[int, list[list[Candidate]]] = {}
    for mi in pool.order():
        backend = pool.get(mi)
        seeds = [derive_seed(cfg.seed, f"{u.job.key}\x1f{u.tag}\x1f{mi}") for u in units]
        name = cfg.models[mi].rstrip("/").rsplit("/", 1)[-1]
        task = bar.add_task(f"translate {label} [{name}]", total=len(units) * calls)
        advance = lambda n, task=task: bar.advance(task, n)  # noqa: E731
        t0 = time.perf_counter()
        outs = [[(-1, g[0])] for g in backend.chat(convs, greedy_params, seeds=seeds, progress=advance)]
        if sample_params is not None:
            for o, samples in zip(outs, backend.chat(convs, sample_params, seeds=seeds, progress=advance), strict=True):
                o.extend(enumerate(samples))
        stats.generate_seconds += time.perf_counter() - t0
        stats.prompts += len(units) * calls
        per_model[mi] = []
        for u, o in zip(units, outs, strict=True):
            source = T.PARAGRAPH_SEP.join(u.sources)
            cands = []
            for sample, comp in o:
                text, fired = T.clean_output_rules(comp.text, source)
                stats.cleaning.update(fired)
                stats.generated_tokens += len(comp.token_ids)
                cands.append(Candidate(mi, sample, text, len(comp.token_ids)))
            per_model[mi].append(cands)
    pooled = [[c for mi in sorted(per_model) for c in per_model[mi][k]] for k in range(len(units))]
    stats.candidates += sum(len(c) for c in pooled)
    return pooled


def _segments(unit: Unit, cand: Candidate) -> list[str] | None:
    """The candidate as segments aligned with ``unit.sources`` (None: misaligned document)."""
    if unit.kind == "document":
        return T.align_paragraphs(cand.text, unit.sources)
    if unit.kind == "part":
        return [re.sub(r"\s*\n\s*", T.sentence_joiner(unit.job.tgt_lang), cand.text.strip())]
    return [T.as_single_paragraph(cand.text)]


def _select(units: list[Unit], cands: list[list[Candidate]], cfg: TranslateConfig, utility: Any) -> list[Unit]:
    """Pick one candidate per unit (MBR when there are several); return the misaligned units."""
    failed: list[Unit] = []
    groups: list[MbrGroup] = []
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
    choices = mbr_decode(groups, utility)
    for (u, cs, segs, eligible), choice in zip(pending, choices, strict=True):
        chosen = segs[eligible[choice.index]]
        assert chosen is not None
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


def _finish(job: Job, cfg: TranslateConfig) -> dict[str, Any]:
    joiner = T.sentence_joiner(job.tgt_lang)
    paras = [joiner.join(p or "" for p in parts) for parts in job.pieces]
    row = dict(job.row)
    row["hyp"] = T.PARAGRAPH_SEP.join(paras)
    if job.is_document:
        row["hyp_paragraphs"] = paras
        if cfg.granularity == "document":
            row["fallback"] = job.fallback
    if cfg.mbr_output == "all":
        for entry in job.mbr_log:
            for c in entry["candidates"]:
                c["model"] = cfg.models[c["model"]]
        row["mbr"] = {"utility": cfg.mbr_utility, "units": job.mbr_log}
    return row


def _open_comet(model: str) -> Any:
    from in2x_cli.comet import get_client

    return get_client(model)


def translate_jobs(
    jobs: Iterable[Job], cfg: TranslateConfig, stats: TranslateStats, total: int | None = None
) -> Iterator[dict[str, Any]]:
    """Translate ``jobs`` round by round; yield output rows in input order. ``jobs`` is consumed
    one round (``chunk_rows`` jobs) at a time; ``total`` is its length (default ``len(jobs)``)."""
    total = len(jobs) if total is None else total  # type: ignore[arg-type]
    if not total:
        return
    utility = get_utility(cfg.mbr_utility, comet_model=cfg.comet_model, open_comet=_open_comet)
    pool = BackendPool(cfg, stats)
    t0 = time.perf_counter()
    size = cfg.chunk_rows if cfg.chunk_rows > 0 else total
    rounds = math.ceil(total / size)
    remaining = iter(jobs)
    stack = contextlib.ExitStack()
    try:
        # Requests are sized with the first model's tokenizer and context (its tokenizer stays
        # usable after an ensemble unloads the model).
        planner = Planner(cfg, pool.get(0))
        bar = stack.enter_context(console.progress())
        for r in range(rounds):
            batch = list(itertools.islice(remaining, size))
            label = f"{r + 1}/{rounds}" if rounds > 1 else ""
            units = [u for job in batch for u in planner.plan(job, stats)]
            stats.document_chunks += sum(1 for u in units if u.kind == "document")
            for u in units:
                stats.requests[u.kind] += 1
            cands = _generate(units, pool, cfg, stats, bar, f"{label} {cfg.granularity}s".strip())
            failed = _select(units, cands, cfg, utility)
            if failed:
                stats.misaligned_chunks += len(failed)
                for u in failed:
                    u.job.fallback += 1
                retry = [v for u in failed for v in planner.fallback(u)]
                for v in retry:
                    stats.requests[f"fallback_{v.kind}"] += 1
                cands = _generate(retry, pool, cfg, stats, bar, f"{label} fallback paragraphs".strip())
                _select(retry, cands, cfg, utility)
            for job in batch:
                stats.rows += 1
                stats.documents += int(job.is_document)
                yield _finish(job, cfg)
            stats.seconds = time.perf_counter() - t0
    finally:
        stack.close()
        pool.close()
        stats.seconds = time.perf_counter() - t0
