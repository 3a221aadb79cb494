"""The GEMBA-ESA judge behind a generation backend: ``in2x eval -m gemba-esa`` and the ``gemba``
GRPO reward both use ``EsaJudge``. The protocol and the reply parsing are ``core.gemba``; this
module only renders the chats through a backend (any of ``backends.BACKENDS`` or module:Class)
and keeps the counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from in2x_cli.core.gemba import EsaItem, EsaResult, judge_esa, retry_temperatures


@dataclass(frozen=True)
class JudgeSettings:
    """How the judge model is run (recorded in the metric signature)."""

    model: str
    backend: str = "transformers"
    max_tokens: int = 512
    retries: int = 2
    seed: int = 0
    trust_remote_code: bool = False


def language_name(code: str | None) -> str:
    """``ja`` → ``Japanese`` (the prompts name languages, as GEMBA does); unknown → the code."""
    from in2x_cli.errors import UserError
    from in2x_cli.langs import lang_name

    if not code:
        return "the source language"
    try:
        return lang_name(code)
    except UserError:
        return code


class EsaJudge:
    """``judge(srcs, hyps, src_lang, tgt_lang) -> list[EsaResult]`` with a lazily loaded backend.

    ``backend`` may be passed in (a loaded ``Backend``) instead of being opened from ``settings``."""

    def __init__(self, settings: JudgeSettings, backend: Any = None) -> None:
        self.settings = settings
        self.temperatures = retry_temperatures(settings.retries)
        self._backend = backend

    @property
    def signature(self) -> str:
        return f"protocol:gemba-esa|temperatures:{','.join(f'{t:g}' for t in self.temperatures)}|max_tokens:{self.settings.max_tokens}"

    def backend(self) -> Any:
        if self._backend is None:
            from in2x_cli.backends import load_backend

            self._backend = load_backend(self.settings.backend, self.settings.model, trust_remote_code=self.settings.trust_remote_code)
        return self._backend

    def generate(self, conversations: Sequence[list[dict[str, str]]], temperature: float) -> list[str]:
        from in2x_cli.backends import SamplingParams

        params = SamplingParams(n=1, temperature=temperature, max_tokens=self.settings.max_tokens, seed=self.settings.seed)
        replies = self.backend().chat(list(conversations), params)
        return [r[0].text if r else "" for r in replies]

    def judge(self, srcs: Sequence[str], hyps: Sequence[str], src_lang: str | None, tgt_lang: str | None) -> list[EsaResult]:
        items = [EsaItem(s or "", h or "", language_name(src_lang), language_name(tgt_lang)) for s, h in zip(srcs, hyps, strict=True)]
        return judge_esa(items, self.generate, self.temperatures) if items else []

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
