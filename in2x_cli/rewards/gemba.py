"""``gemba``: the GEMBA-ESA judge (``core.gemba``, as ``in2x eval -m gemba-esa``) as a reward.

Each completion of a translation row is judged against the row's ``src`` in the two GEMBA-ESA
steps (error spans, then a 0–100 score against the ESA anchors) by ``--judge-model`` through
``--judge-backend``; the reward is score / 100, in [0, 1]. Unreadable replies are retried at a
higher temperature (``core.gemba.RETRY_TEMPERATURES``); one that stays unreadable is never
guessed as a score: it gets ``judge_failure_score`` (default 0.0, the minimum, so that a policy
cannot gain by confusing the judge, as ``generative_judge``), is counted in the
``judge_failures`` metric and reported on stderr. Rows without ``src`` or ``tgt_lang`` get
``None`` (not applicable).

A system trained with this reward and evaluated with ``-m gemba-esa`` is flagged by eval's
metric-overfit guard (``evaluate/overfit.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from in2x_cli import console
from in2x_cli.rewards import RewardContext, answer_text, column


class GembaReward:
    """The ``gemba`` reward (module docstring). Needs ``--judge-model``."""

    def __init__(self, context: RewardContext) -> None:
        from in2x_cli.errors import UserError
        from in2x_cli.evaluate.gemba import EsaJudge, JudgeSettings

        if not context.judge_model:
            raise UserError("reward gemba needs --judge-model (the GEMBA-ESA judge: a local model directory or module:Class backend name)")
        self.context = context
        settings = JudgeSettings(context.judge_model, context.judge_backend, context.judge_max_tokens, seed=context.seed, trust_remote_code=context.trust_remote_code)
        self.judge = EsaJudge(settings)
        self.judge.backend()  # load now: a wrong --judge-model fails before training starts
        self._last: dict[str, float] = {}

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        src: Sequence[Any] | None = None,
        src_lang: Sequence[Any] | None = None,
        tgt_lang: Sequence[Any] | None = None,
        **_: Any,
    ) -> list[float | None]:
        n = len(completions)
        sources, s_langs, t_langs = (column(c, n) for c in (src, src_lang, tgt_lang))
        todo = [i for i in range(n) if isinstance(sources[i], str) and sources[i].strip() and isinstance(t_langs[i], str) and t_langs[i].strip()]
        out: list[float | None] = [None] * n
        failures, first_error = 0, None
        # one judge call per language pair (the prompts name both languages)
        by_pair: dict[tuple[Any, Any], list[int]] = {}
        for i in todo:
            by_pair.setdefault((s_langs[i] if isinstance(s_langs[i], str) else None, t_langs[i]), []).append(i)
        for (s_lang, t_lang), idx in by_pair.items():
            results = self.judge.judge([sources[i] for i in idx], [answer_text(completions[i] or "") for i in idx], s_lang, t_lang)
            for i, r in zip(idx, results, strict=True):
                if r.score is None:
                    failures += 1
                    first_error = first_error or r.error
                    out[i] = float(self.context.judge_failure_score)
                else:
                    out[i] = r.score / 100.0
        self._last = {"judge_failures": float(failures), "not_applicable": float(n - len(todo))}
        if failures:
            console.warn(f"gemba: {failures}/{len(todo)} completions got no valid judge score; scored {self.context.judge_failure_score} (first: {first_error})")
        return out

    def metrics(self) -> dict[str, float]:
        return dict(self._last)
