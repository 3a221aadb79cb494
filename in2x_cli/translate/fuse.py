"""``--fuse MODEL``: a fusion model rewrites each request's candidates into one translation.

Runs after selection, once per round over every request of the round (one greedy backend call,
then one for the paragraph fallback). For a request with aligned candidates (``select``):

1. the distinct aligned candidates (each a document, paragraph or sentence part) are numbered into
   the fusion prompt (``core.fusion``) with the source; the reply is cleaned (``clean_fused``);
2. a document reply must align paragraph for paragraph with the source, as a translation must;
   when it does not, or the document prompt does not fit the fusion model's context, every
   paragraph is fused on its own from the candidates' aligned paragraphs (the same
   document → paragraph fallback as translation);
3. an empty reply, or a paragraph prompt that does not fit, keeps the selected candidate.

Requests with no aligned candidate were re-translated paragraph by paragraph before fusion runs,
so they are fused as paragraphs. Every fused request is logged in the row's ``fusion`` field:
the numbered candidates, the selected one, the reply and what was used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from in2x_cli.core import translate as T
from in2x_cli.core.fusion import clean_fused, distinct, render_fuse_prompt
from in2x_cli.translate.config import TranslateConfig, TranslateStats
from in2x_cli.translate.generate import BackendPool, Candidate, trim_partial_character
from in2x_cli.translate.prompting import TokenView, Unit
from in2x_cli.translate.select import _segments


@dataclass
class _Request:
    unit: Unit
    paragraph: int | None  # None: the whole unit; p: paragraph p of a document unit
    candidates: list[str]
    src: str
    messages: list[dict[str, str]] = field(default_factory=list)
    reply: str | None = None
    truncated: bool = False  # the fusion model stopped at --max-tokens


class Fuser:
    """The fusion step of a run (the fusion model is ``pool`` entry ``index``)."""

    def __init__(self, cfg: TranslateConfig, pool: BackendPool, index: int, stats: TranslateStats) -> None:
        self.cfg, self.pool, self.index, self.stats = cfg, pool, index, stats

    def fuse(self, units: list[Unit], cands: list[list[Candidate]], bar: Any) -> None:
        """Fuse the candidates of every unit that has aligned ones (its selection is in ``job.pieces``)."""
        work = []
        for u, cs in zip(units, cands, strict=True):
            segs = [s for s in (_segments(u, c) for c in cs) if s is not None]
            if segs:
                work.append((u, segs))
        if not work:
            return
        backend = self.pool.get(self.index)
        view = TokenView(backend)
        first = [self._request(u, None, [T.PARAGRAPH_SEP.join(s) for s in segs], T.PARAGRAPH_SEP.join(u.sources)) for u, segs in work]
        fits = [r for r in first if self._fits(view, r)]
        self._generate(backend, fits, bar, "fusion")
        second = []
        for (u, segs), req in zip(work, first, strict=True):
            entry: dict[str, Any] = {"unit": u.tag, "kind": u.kind, "candidates": req.candidates, "selected": self._selected(u), "fused": req.reply}
            u.job.fusion_log.append(entry)
            if req.reply is not None and self._apply(u, req.reply):
                u.job.truncated |= req.truncated
                entry["used"] = "fused"
                self.stats.fused += 1
                continue
            if u.kind == "document":
                self.stats.fusion_paragraph_fallbacks += 1
                entry["used"] = "paragraphs"
                entry["paragraphs"] = []
                for p in range(len(u.sources)):
                    second.append((entry, self._request(u, p, [s[p] for s in segs], u.sources[p])))
            else:
                entry["used"] = "selection"
                self.stats.fusion_kept_selection += 1
        fits2 = [r for _, r in second if self._fits(view, r)]
        self._generate(backend, fits2, bar, "fusion paragraphs")
        for entry, req in second:
            entry["paragraphs"].append(req.reply)
            text = T.as_single_paragraph(req.reply) if req.reply else ""
            if text:
                req.unit.job.pieces[req.unit.span[0] + (req.paragraph or 0)] = [text]
                req.unit.job.truncated |= req.truncated
            else:
                self.stats.fusion_kept_selection += 1

    def _request(self, u: Unit, p: int | None, candidates: list[str], src: str) -> _Request:
        cands = distinct(candidates)
        paragraphs = len(u.sources) if p is None and u.kind == "document" else 1
        prompt = render_fuse_prompt(self.cfg.fuse_template, src, cands, u.job.src_lang, u.job.tgt_lang, paragraphs)
        return _Request(u, p, cands, src, T.build_messages(prompt, self.cfg.system))

    def _fits(self, view: TokenView, req: _Request) -> bool:
        need = view.count_tokens(view.chat_prompt(req.messages)) + self._max_tokens(view, req)
        return need <= view.context_length

    def _max_tokens(self, view: TokenView, req: _Request) -> int:
        if self.cfg.max_tokens > 0:
            return self.cfg.max_tokens
        return T.ContextBudget(context=0, overhead=0).output_tokens(view.count_tokens(req.src))

    def _generate(self, backend: Any, reqs: list[_Request], bar: Any, label: str) -> None:
        from in2x_cli.backends import SamplingParams, derive_seed

        if not reqs:
            return
        view = TokenView(backend)
        params = SamplingParams(n=1, temperature=0.0, max_tokens=max(self._max_tokens(view, r) for r in reqs), seed=self.cfg.seed)
        seeds = [derive_seed(self.cfg.seed, f"{r.unit.job.key}\x1f{r.unit.tag}\x1ffuse{r.paragraph}") for r in reqs]
        task = bar.add_task(f"translate {label}", total=len(reqs))
        t0 = time.perf_counter()
        outs = backend.chat([r.messages for r in reqs], params, seeds=seeds, progress=lambda n: bar.advance(task, n))
        self.stats.generate_seconds += time.perf_counter() - t0
        self.stats.prompts += len(reqs)
        for r, o in zip(reqs, outs, strict=True):
            r.truncated = o[0].finish_reason == "length"
            if r.truncated:  # counted as every cut output is (issue 20): per model, no broken last character
                self.stats.truncated[str(self.cfg.fuse)] += 1
            text, fired = clean_fused(trim_partial_character(o[0].text) if r.truncated else o[0].text, r.src)
            self.stats.cleaning.update(fired)
            self.stats.generated_tokens += len(o[0].token_ids)
            r.reply = text

    def _selected(self, u: Unit) -> str:
        if u.kind == "part":
            return str(u.job.pieces[u.span[0]][u.part] or "")
        return T.PARAGRAPH_SEP.join(str(u.job.pieces[p][0] or "") for p in range(*u.span))

    def _apply(self, u: Unit, reply: str) -> bool:
        """Write the fused text into the job's pieces; False when it is empty or misaligned."""
        if not reply.strip():
            return False
        segs = _segments(u, Candidate(model=-1, sample=-1, text=reply, tokens=0))
        if segs is None:
            return False
        if u.kind == "document":
            for offset, text in enumerate(segs):
                u.job.pieces[u.span[0] + offset] = [text]
        else:
            u.job.pieces[u.span[0]][u.part] = segs[0]
        return True


def load_fuse_template(path: Any) -> str:
    """The built-in fusion template, or the one in ``--fuse-prompt-file`` (checked; UserError naming the file)."""
    from in2x_cli.core.fusion import DEFAULT_FUSE_TEMPLATE, validate_fuse_template
    from in2x_cli.errors import UserError
    from in2x_cli.io.text import read_text_lines

    if path is None:
        return DEFAULT_FUSE_TEMPLATE
    template = "\n".join(read_text_lines(path)).strip("\n")
    problem = validate_fuse_template(template)
    if problem:
        raise UserError(problem, str(path))
    return template


def check_fuse_model(cfg: TranslateConfig) -> None:
    """Fail before any candidate is generated when the ``--fuse`` model directory does not exist
    (built-in backends; a plugin backend resolves its own model names)."""
    from in2x_cli.io.checkpoint import resolve_model

    if cfg.fuse and cfg.backend in ("auto", "transformers", "vllm"):
        resolve_model(cfg.fuse, what="--fuse model", trust_remote_code=bool(cfg.backend_options.get("trust_remote_code")))
