"""What the model is asked: prompt templates, and the requests (``Unit``s) a job becomes.

``Planner.plan`` turns a job into requests sized for the model's context: a whole document, or
chunks of paragraphs when it does not fit (``core.translate.plan_chunks``), or paragraphs /
sentences at those granularities. ``Planner.fallback`` re-plans a misaligned document chunk as one
request per paragraph. Prompts are rendered by ``core.translate`` from the templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from in2x_cli.core import translate as T
from in2x_cli.errors import UserError
from in2x_cli.io.jsonl import read_json
from in2x_cli.io.text import read_text_lines
from in2x_cli.langs import normalize_lang
from in2x_cli.translate.config import TranslateConfig, TranslateStats
from in2x_cli.translate.jobs import Job


def load_templates(path: Path | None) -> dict[str, str]:
    """The built-in templates, or those of ``--prompt-file`` (one template, or a .json object of
    templates keyed 'en-ja', 'ja' or '*'), each checked (UserError naming the file)."""
    if path is None:
        return dict(T.TEMPLATES)
    where = str(path)
    if path.suffix == ".json":
        data = read_json(path)
        if not isinstance(data, dict) or not data or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise UserError("a .json prompt file must be an object of key → template strings ('en-ja', 'ja' or '*')", where)
        templates = {_template_key(k, where): v for k, v in data.items()}
    else:
        templates = {"*": "\n".join(read_text_lines(path)).strip("\n")}
    for key, tpl in templates.items():
        problem = T.validate_template(tpl)
        if problem:
            raise UserError(f"{problem} (template {key!r})", where)
    return templates


def _template_key(key: str, where: str) -> str:
    if key == "*":
        return key
    parts = key.split("-")
    if len(parts) > 2:
        raise UserError(f"prompt key {key!r} must be '*', a target language or 'src-tgt'", where)
    return "-".join(normalize_lang(p, where=where) for p in parts)


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
