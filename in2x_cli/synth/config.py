"""Settings of one ``in2x synthesize`` run (the command's options resolved and checked once, in
``resolve_config``), its seed tasks and its counters."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from in2x_cli.errors import UserError
from in2x_cli.io import read_text_lines
from in2x_cli.langs import DEFAULT_LANGS, detect_lang, normalize_lang, parse_lang_ratio
from in2x_cli.prompts import PromptSet
from in2x_cli.records import InstructionRow

ORDERS = ("paper", "reread-first")  # synth/pipeline.py's module docstring


@dataclass(frozen=True)
class SynthConfig:
    """Resolved settings of one ``in2x synthesize`` run (recorded in the provenance sidecar)."""

    mode: str
    model: str
    backend: str = "transformers"
    input: str | None = None
    output: str = "-"
    rejects: str | None = None
    resume: bool = False
    seed: int = 0
    num: int = 100
    langs: tuple[tuple[str, str], ...] = (
        ("zh", "1"),
        ("en", "1"),
        ("ja", "1"),
    )  # (lang, weight as a fraction)
    rules: str | None = None
    prompt_file: str | None = None
    style: str = "localize"
    dedup: str = "rouge"  # rouge | embedding | none
    dedup_threshold: float = 0.7
    embedder: str = "hashing"
    embed_model: str | None = None
    num_demos: int = 8
    answer: bool = True
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 512
    answer_temperature: float = 0.0
    answer_max_tokens: int = 1024
    judge_max_tokens: int = 512
    critic_model: str | None = None
    critic_backend: str | None = None
    reread: bool = False
    order: str = "paper"  # paper (answer → critic → reread → dedup) | reread-first
    judge_retries: int = 1
    max_attempts: float = 4.0
    batch_size: int = 32
    trust_remote_code: bool = False

    @property
    def lang_weights(self) -> dict[str, Any]:
        from fractions import Fraction

        return {lang: Fraction(w) for lang, w in self.langs}

    def run_key(self, prompts: PromptSet, seeds_digest: str | None) -> str:
        """8 hex digits naming everything that decides the rows; part of every id, so --resume can
        refuse an output made with other settings. Output paths and --batch-size are not in it."""
        settings = {
            k: v
            for k, v in self.__dict__.items()
            if k not in ("output", "rejects", "resume", "batch_size", "prompt_file", "trust_remote_code")
        }
        settings["prompts"] = prompts.digest()
        settings["seeds"] = seeds_digest
        if settings.get("input") not in (None, "-"):
            settings["input"] = os.path.realpath(str(settings["input"]))
        blob = json.dumps(settings, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:8]


# (temperature, top_p) for generating instructions; the paper is silent, so these follow the
# method papers: Self-Instruct sampled at 0.7 / top-p 0.5, Magpie at 1.0 / 1.0.
GEN_DEFAULTS = {
    "self-instruct": (0.7, 0.5),
    "magpie": (1.0, 1.0),
    "rewrite": (0.7, 1.0),
    "answer": (0.7, 1.0),
}


def resolve_config(
    *, mode: str, input: str | None, model: str, output: str, rejects: str | None, resume: bool, num: int, langs: str | None,
    lang_ratio: str | None, rules: str | None, prompt_file: str | None, style: str, dedup: str, dedup_threshold: float | None,
    embedder: str, embed_model: str | None, num_demos: int, answer: bool, temperature: float | None, top_p: float | None,
    max_tokens: int, answer_temperature: float, answer_max_tokens: int, critic_model: str | None, critic_backend: str | None,
    reread: bool, judge_retries: int, judge_max_tokens: int, max_attempts: float, batch_size: int, backend: str, seed: int,
    trust_remote_code: bool, order: str = "paper",
) -> SynthConfig:
    """The ``in2x synthesize`` options → a checked ``SynthConfig``: defaults that depend on the mode
    resolved (``--dedup auto``, thresholds, sampling, the rejects file), every choice checked
    once, output paths checked before anything runs, the ``--rules`` file read."""
    from in2x_cli.io import check_output_path

    m = mode
    if m == "magpie" and input is not None:
        raise UserError("magpie takes no INPUT: it writes user queries from the chat template alone")
    if m != "magpie" and input is None:
        raise UserError(
            f"{m} needs INPUT ({'seed tasks' if m == 'self-instruct' else 'tasks'} JSONL, or - for stdin)"
        )
    for name, value in (
        ("--num", num),
        ("--num-demos", num_demos),
        ("--batch-size", batch_size),
        ("--max-tokens", max_tokens),
        ("--answer-max-tokens", answer_max_tokens),
        ("--judge-max-tokens", judge_max_tokens),
    ):
        if value < 1:
            raise UserError(f"{name} must be >= 1")
    if judge_retries < 0:
        raise UserError("--judge-retries must be >= 0")
    if order not in ORDERS:
        raise UserError(f"unknown --order {order!r} (expected {', '.join(ORDERS)})")
    if max_attempts < 1:
        raise UserError("--max-attempts must be >= 1")
    method = dedup if dedup != "auto" else ("rouge" if m in ("self-instruct", "magpie") else "none")
    threshold = dedup_threshold if dedup_threshold is not None else (0.9 if method == "embedding" else 0.7)
    if not 0 < threshold <= 1:
        raise UserError("--dedup-threshold must be in (0, 1]")
    weights = parse_lang_weights(
        langs if langs is not None else (None if lang_ratio and "=" in lang_ratio else ",".join(DEFAULT_LANGS)), lang_ratio
    )
    if resume and output == "-":
        raise UserError("--resume needs --output FILE (stdout cannot be resumed)")
    rejects_path = rejects if rejects is not None else default_rejects_path(output)
    check_output_path(output)
    if rejects_path:
        check_output_path(rejects_path)
    for other in (rejects_path, input):
        if same_file(output, other):
            raise UserError(f"--output is the same file as {other}")
    if same_file(rejects_path, input):
        raise UserError(f"--rejects is the same file as {input}")
    if rejects_path == "-" and output == "-":
        raise UserError("--rejects - needs --output FILE (stdout cannot carry both)")
    gen_t, gen_p = GEN_DEFAULTS[m]
    cfg = SynthConfig(
        mode=m, model=model, backend=backend, input=input, output=output, rejects=rejects_path, resume=resume, seed=seed, num=num,
        langs=tuple((lang, str(w)) for lang, w in weights.items()), rules=read_rules(rules) if rules else None,
        prompt_file=prompt_file, style=style, dedup=method, dedup_threshold=threshold,
        embedder=embedder, embed_model=embed_model, num_demos=num_demos, answer=answer, temperature=gen_t if temperature is None else temperature,
        top_p=gen_p if top_p is None else top_p, max_tokens=max_tokens, answer_temperature=answer_temperature,
        answer_max_tokens=answer_max_tokens, judge_max_tokens=judge_max_tokens, critic_model=critic_model,
        critic_backend=critic_backend, reread=reread, order=order, judge_retries=judge_retries, max_attempts=max_attempts,
        batch_size=batch_size, trust_remote_code=trust_remote_code,
    )  # fmt: skip
    try:
        from in2x_cli.backends import SamplingParams

        SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p)
        SamplingParams(temperature=cfg.answer_temperature)
    except ValueError as exc:
        raise UserError(f"--temperature/--top-p: {exc}") from None
    return cfg


def read_rules(path: str) -> str:
    text = "\n".join(read_text_lines(path)).strip()
    if not text:
        raise UserError("rules file is empty", path)
    return text


def default_rejects_path(output: str) -> str | None:
    """``out.jsonl`` → ``out.rejects.jsonl`` (``.gz`` kept); None for stdout."""
    if output == "-":
        return None
    for ext in (".jsonl.gz", ".jsonl", ".json.gz", ".json"):
        if output.endswith(ext):
            return output[: -len(ext)] + ".rejects" + ext
    return output + ".rejects.jsonl"


def same_file(a: str | None, b: str | None) -> bool:
    if not a or not b or a == "-" or b == "-":
        return False
    return os.path.realpath(a) == os.path.realpath(b)


def parse_lang_weights(langs: str | None, ratio: str | None) -> dict[str, Fraction]:
    """``--langs zh,en,ja --lang-ratio 1:1:1`` (or ``--lang-ratio zh=1,en=1,ja=1``) → weights
    (``langs.parse_lang_ratio`` reads --lang-ratio).

    Order is kept (it breaks ties in quota rounding). A language with weight 0 is dropped.
    """
    lang_list: list[str] | None = None
    if langs is not None:
        lang_list = [normalize_lang(x, where="--langs") for x in langs.split(",") if x.strip()]
        if not lang_list:
            raise UserError("--langs is empty (expected e.g. zh,en,ja)")
        if len(set(lang_list)) != len(lang_list):
            raise UserError(f"--langs {langs!r} names a language twice")
    if ratio is None or not ratio.strip():
        if lang_list is None:
            raise UserError("give --langs (e.g. zh,en,ja)")
        return {lang: Fraction(1) for lang in lang_list}
    weights = parse_lang_ratio(ratio, lang_list)
    if lang_list is not None and set(lang_list) != set(weights):
        raise UserError(f"--langs {','.join(lang_list)} and --lang-ratio {ratio!r} name different languages")
    return {k: v for k, v in weights.items() if v > 0}


@dataclass(frozen=True)
class SeedTask:
    id: str
    lang: str
    text: str


def load_seed_tasks(lines: Iterable[Any]) -> list[SeedTask]:
    """Seed tasks from InstructionRow-compatible rows (``instruction`` or ``messages``; optional
    ``input`` appended on its own line; ``lang`` or else detected)."""
    seeds = []
    for i, line in enumerate(lines):
        row = InstructionRow.from_line(line)
        text = row.instruction.strip() if row.instruction else ""
        if not text:
            raise UserError("seed task has an empty instruction", line.where)
        extra_input = row.extra.get("input")
        if isinstance(extra_input, str) and extra_input.strip():
            text = f"{text}\n{extra_input.strip()}"
        lang = normalize_lang(row.lang, where=line.where) if row.lang else detect_lang(text)
        seeds.append(SeedTask(str(row.id) if row.id is not None else f"seed{i}", lang, text))
    return seeds


@dataclass
class Stats:
    candidates: int = 0
    accepted: int = 0
    resumed_accepted: int = 0
    resumed_rejected: int = 0
    rejected: Counter = field(default_factory=Counter)
    judge_parse_failures: Counter = field(default_factory=Counter)  # first replies without a valid verdict
    judge_retries: Counter = field(default_factory=Counter)
    shortfall: dict[str, str] = field(default_factory=dict)
    backend_requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "accepted": self.accepted,
            "resumed_accepted": self.resumed_accepted,
            "resumed_rejected": self.resumed_rejected,
            "rejected": dict(sorted(self.rejected.items())),
            "judge_parse_failures": dict(self.judge_parse_failures),
            "judge_retries": dict(self.judge_retries),
            "shortfall": self.shortfall,
            "backend_requests": self.backend_requests,
        }
