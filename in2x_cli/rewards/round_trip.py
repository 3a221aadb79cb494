"""``round_trip``: translate the completion back (B → A) and score how much of the source returns.

The dual-task idea of DuPO (She et al. 2025, "DuPO: Enabling Reliable LLM Self-Verification via
Dual Preference Optimization", https://arxiv.org/abs/2508.14460): a translation that keeps the
meaning lets the source be reconstructed from it, so reconstruction quality is a reward that
needs no reference. Here the back-translation model (``--round-trip-model``, any backend via
``--round-trip-backend``) translates the completion from ``tgt_lang`` into ``src_lang`` with the
same target-language prompt templates as ``in2x translate`` (greedy, output cleaned by
``core.translate.clean_output``), and the reward is sentence chrF (character 6-grams,
β = 2, sacreBLEU) of the back-translation against the row's ``src``, divided by 100: in [0, 1].

Rows without ``src``, ``src_lang`` or ``tgt_lang`` get ``None`` (not applicable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from in2x_cli.rewards import RewardContext, answer_text, column


def back_translation_messages(text: str, src_lang: str, tgt_lang: str) -> list[dict[str, str]]:
    """The request that translates ``text`` (written in ``tgt_lang``) back into ``src_lang``."""
    from in2x_cli.core.translate import TEMPLATES, build_messages, render_prompt, select_template

    return build_messages(render_prompt(select_template(TEMPLATES, tgt_lang, src_lang), text, tgt_lang, src_lang))


def round_trip_similarity(back: str, src: str) -> float:
    """Sentence chrF(back-translation, source) / 100, clipped to [0, 1]."""
    import math

    from in2x_cli.rewards.translation import _chrf

    value = _chrf().sentence_score(back, [src]).score / 100.0
    return min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0


def _lang(code: Any) -> str | None:
    from in2x_cli.errors import UserError
    from in2x_cli.langs import normalize_lang

    try:
        return normalize_lang(code) if isinstance(code, str) else None
    except UserError:
        return None


class RoundTrip:
    """The ``round_trip`` reward (module docstring). Needs ``--round-trip-model``."""

    def __init__(self, context: RewardContext) -> None:
        from in2x_cli.errors import UserError

        if not context.round_trip_model:
            raise UserError("reward round_trip needs --round-trip-model (the back-translation model: a local directory or module:Class backend name)")
        self.context = context
        self._backend: Any = None
        self.calls = 0
        self.backend()  # load now: a wrong model fails before training starts

    def backend(self) -> Any:
        if self._backend is None:
            from in2x_cli.backends import load_backend

            ctx = self.context
            self._backend = load_backend(ctx.round_trip_backend, ctx.round_trip_model, trust_remote_code=ctx.trust_remote_code)
        return self._backend

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        src: Sequence[Any] | None = None,
        src_lang: Sequence[Any] | None = None,
        tgt_lang: Sequence[Any] | None = None,
        **_: Any,
    ) -> list[float | None]:
        from in2x_cli.backends import SamplingParams
        from in2x_cli.core.translate import clean_output

        n = len(completions)
        sources, s_langs, t_langs = (column(c, n) for c in (src, src_lang, tgt_lang))
        todo = [i for i in range(n) if isinstance(sources[i], str) and sources[i].strip() and _lang(s_langs[i]) and _lang(t_langs[i])]
        out: list[float | None] = [None] * n
        if not todo:
            return out
        texts = {i: answer_text(completions[i] or "") for i in todo}
        requests = [back_translation_messages(texts[i], _lang(s_langs[i]) or "", _lang(t_langs[i]) or "") for i in todo]
        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.context.round_trip_max_tokens, seed=self.context.seed)
        replies = self.backend().chat(requests, params)
        self.calls += len(todo)
        for i, reply in zip(todo, replies, strict=True):
            back = clean_output(reply[0].text if reply else "", texts[i])
            out[i] = round_trip_similarity(back, sources[i])
        return out
