"""``in2x synthesize``: the stages around the generation backend, read top to bottom.

A block of candidates goes through

    generate → filter → answer → critic → reread → dedup  (--order paper, the default: prompt
                                                           engineering → model validation → ReReading)
    generate → filter → dedup → answer → critic          (--order reread-first, without --reread)
    generate → filter → reread → dedup → answer → critic (--order reread-first, with --reread)

(with ReReading the near-duplicate check comes after it, so it checks the text that is written
— a rewrite included — and the near-duplicate memory holds that final text), and each stage makes at most one batched backend call (two for the critic: answer, then judge;
plus one per judge retry) over the candidates still alive. A candidate that fails a stage stops
there and becomes a rejects row with ``stage``, ``reason`` and ``detail``; the rest become output
rows. Which candidates exist and how resume works is in ``schedule.py``; the pure algorithms
(ROUGE-L, pre-query templates, verdict parsing, quotas) in ``in2x_cli/core/synthesize.py``; every
prompt in ``in2x_cli/prompts/synthesize.py``.

Reject reasons: ``truncated`` (generation hit --max-tokens), ``empty``, ``too_short`` / ``too_long``
/ ``unsupported_modality`` / ``write_a_program`` / ``starts_with_punctuation`` (Self-Instruct
filters, self-instruct mode), ``wrong_language``, ``lang_not_requested`` (answer mode: row language
not in --langs), ``near_duplicate``, ``reread_rejected``, ``reread_unparseable``,
``empty_response``, ``critic_flagged``, ``critic_unparseable``, ``self_answered`` (the generated
query already carries its answer: ``core.synthesize.self_answered``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from in2x_cli.backends.base import Backend, Completion, SamplingParams, derive_seed
from in2x_cli.core.judging import VerdictError, fence
from in2x_cli.core.synthesize import (
    EmbeddingIndex,
    PreQuery,
    RougeIndex,
    clean_instruction,
    cut_user_turn,
    language_mismatch,
    parse_critic_verdict,
    parse_reread_verdict,
    pre_query_template,
    self_answered,
    self_instruct_filter,
    weighted_schedule,
)
from in2x_cli.errors import UserError
from in2x_cli.langs import NATIVE_NAMES, detect_lang, lang_name, normalize_lang
from in2x_cli.prompts import PromptSet
from in2x_cli.prompts.synthesize import ANSWER_PROMPT_FOR_STYLE, REWRITE_STYLES
from in2x_cli.records import InstructionRow
from in2x_cli.synth.config import SeedTask, Stats, SynthConfig
from in2x_cli.synth.ids import GENERATING_MODES, row_id, slot_id

STAGES = ("generate", "filter", "reread", "dedup", "answer", "critic")  # reread only with --reread


@dataclass
class Reject:
    stage: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Candidate:
    id: str
    key: str  # sampling key: the candidate's place, independent of the settings hash
    lang: str
    place: Any
    origin: InstructionRow | None = None
    instruction: str | None = None
    response: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    critic: dict[str, Any] | None = None
    reread: dict[str, Any] | None = None
    reject: Reject | None = None

    def fail(self, stage: str, why: str, /, **detail: Any) -> None:
        self.reject = Reject(stage, why, detail)


def _alive(cands: Iterable[Candidate]) -> list[Candidate]:
    return [c for c in cands if c.reject is None]


class Synthesizer:
    """Runs the stages for one configuration. ``backend`` generates (and re-reads); ``critic`` judges."""

    def __init__(
        self,
        cfg: SynthConfig,
        backend: Backend,
        prompts: PromptSet,
        *,
        critic: Backend | None = None,
        seeds: Sequence[SeedTask] = (),
        embed: Callable[[Sequence[str]], Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.backend = backend
        self.critic_backend = critic
        self.prompts = prompts
        self.seeds = list(seeds)
        self.embed = embed
        self.weights = cfg.lang_weights
        self.stats = Stats()
        seeds_digest = None
        if self.seeds:
            seeds_digest = hashlib.sha256(
                json.dumps([s.__dict__ for s in self.seeds], ensure_ascii=False).encode()
            ).hexdigest()
        self.run = cfg.run_key(prompts, seeds_digest)
        self.model_name = os.path.basename(os.path.normpath(cfg.model)) or cfg.model
        self._pools: dict[str, Any] = {}
        self._pre_query: dict[str, PreQuery] = {}
        rules = (cfg.rules or "").strip()
        self._rules = prompts.render("rules_block", text=rules) if rules else ""
        self._rules_check = rules_to_check(prompts, rules)

    # ----------------------------------------------------------------- prompt helpers
    def _seed(self, key: str, stage: str, attempt: int = 0) -> int:
        return derive_seed(self.cfg.seed, f"{key}/{stage}", attempt)

    def _call(
        self, backend: Backend, convs: list[list[dict[str, str]]], params: SamplingParams, seeds: list[int]
    ) -> list[Completion]:
        if not convs:
            return []
        self.stats.backend_requests += len(convs)
        return [c[0] for c in backend.chat(convs, params, seeds=seeds)]

    def _gen_params(self, stop: tuple[str, ...] = ()) -> SamplingParams:
        return SamplingParams(
            n=1,
            temperature=self.cfg.temperature,
            top_p=self.cfg.top_p,
            max_tokens=self.cfg.max_tokens,
            seed=self.cfg.seed,
            stop=stop,
        )

    # ----------------------------------------------------------------- stages
    def generate(self, cands: list[Candidate]) -> None:
        mode = self.cfg.mode
        if mode == "answer":
            for c in cands:
                c.instruction = c.origin.instruction.strip() if c.origin and c.origin.instruction else ""
            return
        if mode == "magpie":
            self._generate_magpie(cands)
            return
        convs = [[{"role": "user", "content": self._generation_prompt(c)}] for c in cands]
        outs = self._call(
            self.backend, convs, self._gen_params(), [self._seed(c.key, "generate") for c in cands]
        )
        for c, out in zip(cands, outs, strict=True):
            if out.finish_reason == "length":
                c.fail("generate", "truncated", text=out.text[:500])
                continue
            c.instruction = clean_instruction(out.text)

    def _generation_prompt(self, c: Candidate) -> str:
        if self.cfg.mode == "self-instruct":
            pool = [s for s in self.seeds if s.lang == c.lang] or self.seeds
            rng = random.Random(self._seed(c.key, "demos"))
            demos = rng.sample(pool, min(self.cfg.num_demos, len(pool)))
            c.fields["seed_ids"] = [d.id for d in demos]
            text = "\n".join(f"Task {i + 1}: {d.text}" for i, d in enumerate(demos))
            return self.prompts.render(
                "self_instruct", demos=text, rules=self._rules, **_lang_fields(c.lang)
            )
        source = c.fields["source_instruction"]
        return self.prompts.render(
            REWRITE_STYLES[self.cfg.style],
            instruction=fence(source, "INSTRUCTION"),
            source_language=lang_name(c.fields["source_lang"])
            if c.fields["source_lang"] != "und"
            else "given",
            rules=self._rules,
            **_lang_fields(c.lang),
        )

    def pre_query(self, lang: str) -> PreQuery:
        """Magpie's pre-query template for ``lang`` (the system turn carries the language)."""
        if lang not in self._pre_query:
            system = (
                self.prompts.render("magpie_system", rules=self._rules, **_lang_fields(lang)).strip()
                or None
            )

            def render(messages: list[dict[str, str]]) -> str:
                return self.backend.chat_prompt(messages, add_generation_prompt=False)

            try:
                self._pre_query[lang] = pre_query_template(render, system)
            except UserError:
                raise
            except Exception:  # noqa: BLE001 - some templates refuse a system turn (e.g. Gemma)
                from in2x_cli import console

                console.warn(
                    "the chat template rejects a system turn: Magpie queries are not steered by language; the language filter does the targeting"
                )
                self._pre_query[lang] = pre_query_template(render, None)
        return self._pre_query[lang]

    def _generate_magpie(self, cands: list[Candidate]) -> None:
        by_stop: dict[str, list[Candidate]] = {}
        for c in cands:
            by_stop.setdefault(self.pre_query(c.lang).end, []).append(c)
        for end, group in by_stop.items():
            params = self._gen_params(stop=(end,) if end else ())
            prompts = [self.pre_query(c.lang).prefix for c in group]
            self.stats.backend_requests += len(prompts)
            outs = self.backend.complete(
                prompts, params, seeds=[self._seed(c.key, "generate") for c in group]
            )
            for c, out in zip(group, outs, strict=True):
                comp = out[0]
                if comp.finish_reason == "length":
                    c.fail("generate", "truncated", text=comp.text[:500])
                    continue
                c.instruction = cut_user_turn(comp.text, end)

    def filter(self, cands: list[Candidate]) -> None:
        for c in cands:
            text = c.instruction or ""
            if not text.strip():
                c.fail("filter", "empty")
                continue
            if self.cfg.mode == "answer":
                if c.lang not in self.weights:
                    c.fail("filter", "lang_not_requested", lang=c.lang, langs=list(self.weights))
                continue
            if self.cfg.mode == "self-instruct":
                hit = self_instruct_filter(text)
                if hit:
                    c.fail("filter", hit[0], match=hit[1])
                    continue
            marker = self_answered(text) if self.cfg.mode != "answer" else None  # generated queries only
            if marker:
                c.fail("filter", "self_answered", marker=marker)
                continue
            detected = language_mismatch(text, c.lang)
            if detected:
                c.fail("filter", "wrong_language", field="instruction", expected=c.lang, detected=detected)

    def _pool(self, lang: str) -> Any:
        if lang not in self._pools:
            index: Any = EmbeddingIndex(self.embed) if self.cfg.dedup == "embedding" else RougeIndex()  # type: ignore[arg-type]
            if isinstance(index, EmbeddingIndex):
                index.prefetch([s.text for s in self.seeds])
            for s in self.seeds:
                index.add(f"seed:{s.id}", s.text)
            self._pools[lang] = index
        return self._pools[lang]

    def remember(self, lang: str, key: str, text: str) -> None:
        """Add a text that passed the near-duplicate check to its language's pool."""
        if self.cfg.dedup != "none":
            self._pool(lang).add(key, text)

    def dedup(self, cands: list[Candidate]) -> None:
        """Sequential in block order: each candidate's final text (after ReReading, when on) is
        compared with the seeds and the final text of every earlier candidate of its language
        that passed this check (Self-Instruct compares with the whole pool, accepted or not
        later)."""
        if self.cfg.dedup == "embedding":
            for lang in {c.lang for c in cands}:
                self._pool(lang).prefetch([c.instruction or "" for c in cands if c.lang == lang])
        for c in cands:
            if self.cfg.dedup != "none":
                match = self._pool(c.lang).nearest(c.instruction or "")
                if match is not None and match.score >= self.cfg.dedup_threshold:
                    c.fail(
                        "dedup",
                        "near_duplicate",
                        similar_to=match.key,
                        score=round(match.score, 4),
                        method=self.cfg.dedup,
                    )
                    continue
            self.remember(c.lang, c.id, c.instruction or "")
        for pool in self._pools.values():
            if isinstance(pool, EmbeddingIndex):
                pool.clear_cache()

    def _judge(
        self,
        backend: Backend,
        cands: list[Candidate],
        prompts: list[str],
        parse: Callable[[str], Any],
        stage: str,
    ) -> list[tuple[Any, str | None, str, int]]:
        """Ask for a JSON verdict; replies without exactly one valid verdict get ``--judge-retries``
        follow-up turns (prompt json_retry). Returns (verdict or None, last error, last reply, attempts)."""
        convs = [[{"role": "user", "content": p}] for p in prompts]
        results: list[tuple[Any, str | None, str, int]] = [(None, None, "", 0)] * len(cands)
        pending = list(range(len(cands)))
        params = SamplingParams(
            n=1, temperature=0.0, max_tokens=self.cfg.judge_max_tokens, seed=self.cfg.seed
        )
        for attempt in range(1 + self.cfg.judge_retries):
            if not pending:
                break
            if attempt:
                self.stats.judge_retries[stage] += len(pending)
            outs = self._call(
                backend,
                [convs[i] for i in pending],
                params,
                [self._seed(cands[i].key, stage, attempt) for i in pending],
            )
            still = []
            for i, out in zip(pending, outs, strict=True):
                try:
                    results[i] = (parse(out.text), None, out.text, attempt + 1)
                except VerdictError as exc:
                    if attempt == 0:
                        self.stats.judge_parse_failures[stage] += 1
                    results[i] = (None, str(exc), out.text, attempt + 1)
                    convs[i] = [
                        *convs[i],
                        {"role": "assistant", "content": out.text},
                        {"role": "user", "content": self.prompts.render("json_retry", error=str(exc))},
                    ]
                    still.append(i)
            pending = still
        return results

    def reread(self, cands: list[Candidate]) -> None:
        """ReReading: the generating model reviews each task; keep, rewrite (original kept in
        ``reread.original_instruction``) or reject. A rewrite must still be in the target language."""
        prompts = [reread_prompt(self.prompts, c.instruction or "", c.lang, self._rules_check) for c in cands]
        for c, (verdict, error, reply, attempts) in zip(
            cands, self._judge(self.backend, cands, prompts, parse_reread_verdict, "reread"), strict=True
        ):
            if verdict is None:
                c.fail("reread", "reread_unparseable", error=error, reply=reply[:1000], attempts=attempts)
                continue
            c.reread = {"verdict": verdict.verdict, "reason": verdict.reason}
            if verdict.verdict == "reject":
                c.fail("reread", "reread_rejected", reason=verdict.reason)
            elif verdict.verdict == "rewrite":
                new = clean_instruction(verdict.rewrite or "")
                c.reread["original_instruction"] = c.instruction
                c.instruction = new
                detected = language_mismatch(new, c.lang) if new else "und"
                if detected:
                    c.fail(
                        "reread", "wrong_language", field="instruction", expected=c.lang, detected=detected
                    )

    def answer(self, cands: list[Candidate]) -> None:
        """Responses with the answer_system prompt (answer_reasoning_system for rewrite --style
        exam); cut-off, empty and wrong-language responses are rejected."""
        name = (
            ANSWER_PROMPT_FOR_STYLE.get(self.cfg.style, "answer_system")
            if self.cfg.mode == "rewrite"
            else "answer_system"
        )
        convs = []
        for c in cands:
            system = self.prompts.render(name, rules=self._rules, **_lang_fields(c.lang)).strip()
            own = _system_turn(c.origin)
            if own:  # the input's own system turn comes first; it is kept in the output messages
                system = f"{own[0]['content']}\n\n{system}".strip()
            convs.append(
                ([{"role": "system", "content": system}] if system else [])
                + [{"role": "user", "content": c.instruction or ""}]
            )
        params = SamplingParams(
            n=1,
            temperature=self.cfg.answer_temperature,
            max_tokens=self.cfg.answer_max_tokens,
            seed=self.cfg.seed,
        )
        outs = self._call(self.backend, convs, params, [self._seed(c.key, "answer") for c in cands])
        for c, out in zip(cands, outs, strict=True):
            c.response = out.text.strip()
            if out.finish_reason == "length":
                c.fail("answer", "truncated", field="response")
            elif not c.response:
                c.fail("answer", "empty_response")
            else:
                detected = language_mismatch(c.response, c.lang, allow_undetermined=True)
                if detected:
                    c.fail("answer", "wrong_language", field="response", expected=c.lang, detected=detected)

    def critic(self, cands: list[Candidate]) -> None:
        """The critic answers each task itself (greedy), then judges task + candidate response
        against its answer: flagged rows are rejected with the flags and the critic's reason."""
        assert self.critic_backend is not None
        params = SamplingParams(
            n=1, temperature=0.0, max_tokens=self.cfg.answer_max_tokens, seed=self.cfg.seed
        )
        answers = self._call(
            self.critic_backend,
            [[{"role": "user", "content": c.instruction or ""}] for c in cands],
            params,
            [self._seed(c.key, "critic_answer") for c in cands],
        )
        prompts = []
        for c, ans in zip(cands, answers, strict=True):
            prompts.append(
                critic_prompt(self.prompts, c.instruction or "", ans.text.strip(), c.response, self._rules_check)
            )
        judged = self._judge(self.critic_backend, cands, prompts, parse_critic_verdict, "critic")
        model = os.path.basename(os.path.normpath(self.cfg.critic_model or "")) or self.cfg.critic_model
        for c, ans, (verdict, error, reply, attempts) in zip(cands, answers, judged, strict=True):
            if verdict is None:
                c.critic = {"model": model, "answer": ans.text.strip(), "attempts": attempts}
                c.fail("critic", "critic_unparseable", error=error, reply=reply[:1000], attempts=attempts)
                continue
            c.critic = {"model": model, **verdict.to_dict(), "answer": ans.text.strip(), "attempts": attempts}
            if verdict.flags:
                c.fail("critic", "critic_flagged", flags=verdict.flags, reason=verdict.reason)

    def process(self, cands: list[Candidate]) -> None:
        """One block through every stage, in the order of ``--order`` (module docstring)."""
        self.stats.candidates += len(cands)
        self.generate(cands)
        self.filter(_alive(cands))
        if self.cfg.order == "paper":
            self.process_paper_order(cands)
            return
        if self.cfg.reread:
            self.reread(_alive(cands))
        self.dedup(_alive(cands))  # after ReReading: a rewrite is checked, and remembered, as written
        if self.cfg.answer:
            self.answer(_alive(cands))
        if self.critic_backend is not None:
            self.critic(_alive(cands))

    def process_paper_order(self, cands: list[Candidate]) -> None:
        """The paper's order after generation (prompt engineering): the critic validates the task
        and its response first, then ReReading re-reads what survived; a task ReReading rewrote is
        answered again (its response must answer the text as written) and the near-duplicate check
        runs last, on the final text."""
        if self.cfg.answer:
            self.answer(_alive(cands))
        if self.critic_backend is not None:
            self.critic(_alive(cands))
        if self.cfg.reread:
            self.reread(_alive(cands))
            rewritten = [c for c in _alive(cands) if c.reread and "original_instruction" in c.reread]
            if rewritten and self.cfg.answer:
                self.answer(rewritten)
        self.dedup(_alive(cands))

    # ----------------------------------------------------------------- rows
    def source_of(self, c: Candidate) -> str:
        if self.cfg.mode == "answer":
            src = c.origin.extra.get("source") if c.origin else None
            if isinstance(src, str) and src:
                return src
            return os.path.basename(self.cfg.input or "-") if self.cfg.input not in (None, "-") else "stdin"
        return f"{self.cfg.mode}:{self.model_name}"

    def row(self, c: Candidate) -> dict[str, Any]:
        """An output row (accepted) or a rejects row (with stage, reason, detail)."""
        row: dict[str, Any] = {"id": c.id, "mode": self.cfg.mode, "lang": c.lang, "source": self.source_of(c)}
        if c.reject is not None:
            row.update(stage=c.reject.stage, reason=c.reject.reason, detail=c.reject.detail)
        row["instruction"] = c.instruction
        if c.response is not None:
            row["response"] = c.response
            if c.reject is None:
                row["messages"] = [
                    *_system_turn(c.origin),
                    {"role": "user", "content": c.instruction},
                    {"role": "assistant", "content": c.response},
                ]
        row["critic"] = c.critic
        row["reread"] = c.reread
        row.update(c.fields)
        if c.origin is not None and self.cfg.mode == "answer":
            for k, v in c.origin.to_dict().items():
                if k not in row and k not in ("messages", "prompt", "query", "response"):
                    row[k] = v
            if c.origin.response is not None:
                row["input_response"] = c.origin.response
        return row

    # ----------------------------------------------------------------- blocks (driven by schedule.BlockRunner)
    def candidates_for(self, members: list[Any]) -> list[Candidate]:
        cands = []
        for m in members:
            if self.cfg.mode in GENERATING_MODES:
                lang, slot = m
                cands.append(
                    Candidate(slot_id(self.cfg.mode, self.run, lang, slot), f"{lang}-{slot}", lang, m)
                )
            else:
                index, line, lang = m
                origin = InstructionRow.from_line(line)
                c = Candidate(row_id(self.cfg.mode, self.run, index), str(index), lang, index, origin=origin)
                if origin.id is not None:
                    c.fields["origin_id"] = origin.id
                if self.cfg.mode == "rewrite":
                    src = origin.instruction or ""
                    c.fields.update(
                        style=self.cfg.style,
                        source_instruction=src,
                        source_lang=_row_lang(origin, line.where),
                    )
                cands.append(c)
        return cands

    def input_members(self, lines: Iterable[Any]) -> Iterator[tuple[int, Any, str]]:
        """(index, line, target language) for each input row (rewrite: from the --lang-ratio
        schedule, answer: the row's own language)."""
        schedule = weighted_schedule(self.weights) if self.cfg.mode == "rewrite" else None
        for index, line in enumerate(lines):
            if schedule is not None:
                lang = next(schedule)
            else:
                row = InstructionRow.from_line(line)
                lang = _row_lang(row, line.where)
            yield index, line, lang


def _lang_fields(lang: str) -> dict[str, str]:
    """The {language} / {native_language} fields of the prompts for ``lang``."""
    return {"language": lang_name(lang), "native_language": NATIVE_NAMES.get(lang, lang_name(lang))}


def rules_to_check(prompts: PromptSet, rules: str | None) -> str:
    """The {rules_to_check} block of the reviewer prompts for a --rules text (empty without rules)."""
    rules = (rules or "").strip()
    return prompts.render("rules_to_check_block", text=rules) if rules else ""


def reread_prompt(prompts: PromptSet, instruction: str, lang: str, rules_check: str = "") -> str:
    """The ReReading request for one task in ``lang`` (the user turn ``--reread`` sends)."""
    return prompts.render(
        "reread",
        instruction=fence(instruction, "INSTRUCTION"),
        rules_to_check=rules_check,
        **_lang_fields(lang),
    )


def critic_prompt(
    prompts: PromptSet, instruction: str, critic_answer: str, response: str | None, rules_check: str = ""
) -> str:
    """The critic's judging turn (the user turn ``--critic-model`` gets after answering the task)."""
    return prompts.render(
        "critic_judge",
        instruction=fence(instruction, "INSTRUCTION"),
        reference_answer=fence(critic_answer, "CRITIC ANSWER"),
        response=fence(response, "CANDIDATE RESPONSE") if response is not None else prompts.render("no_response"),
        rules_to_check=rules_check,
    )


def _system_turn(origin: InstructionRow | None) -> list[dict[str, Any]]:
    """An input row's leading system message (kept in the output ``messages``), if any."""
    messages = origin.extra.get("messages") if origin is not None else None
    if (
        isinstance(messages, list)
        and messages
        and isinstance(messages[0], dict)
        and messages[0].get("role") == "system"
    ):
        return [messages[0]]
    return []


def _row_lang(row: InstructionRow, where: str) -> str:
    if row.lang:
        return normalize_lang(row.lang, where=where)
    return detect_lang(row.instruction or "")
