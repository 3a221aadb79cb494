"""Settings, seed tasks and counters of one ``in2x synthesize`` run."""

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
from in2x_cli.langs import detect_lang, normalize_lang, parse_lang_ratio
from in2x_cli.prompts import PromptSet
from in2x_cli.records import InstructionRow


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
