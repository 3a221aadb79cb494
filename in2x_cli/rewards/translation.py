"""Translation rewards: sentence-level chrF / BLEU against the row's reference, and COMET.

Scores are scaled to [0, 1] (sacrebleu reports 0–100). The text scored is the completion without
a leading ``<think>…</think>`` block. BLEU tokenisation follows the target language as sacrebleu
recommends (ja → ``ja-mecab``, zh → ``zh``, everything else → ``13a``); sentence BLEU uses
``effective_order=True`` so a short hypothesis is not zeroed by a missing 4-gram. chrF is
tokenisation-free (character 6-grams, β = 2). Rows without ``ref`` get ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from in2x_cli.rewards import RewardContext, answer_text
from in2x_cli.rewards import column as _column

BLEU_TOKENIZERS = {"ja": "ja-mecab", "zh": "zh"}


def bleu_tokenizer(tgt_lang: str | None) -> str:
    """sacrebleu tokenizer for a target language (``ja_JP`` → ja-mecab, ``zh_CN`` → zh, else 13a)."""
    from in2x_cli.errors import UserError
    from in2x_cli.langs import normalize_lang

    if not tgt_lang:
        return "13a"
    try:
        return BLEU_TOKENIZERS.get(normalize_lang(tgt_lang), "13a")
    except UserError:
        return "13a"


@lru_cache(maxsize=8)
def _bleu(tokenize: str) -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize=tokenize, effective_order=True)


@lru_cache(maxsize=1)
def _chrf() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF()


def _finite01(score: float) -> float:
    value = score / 100.0
    return min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0


def translation_chrf(prompts: Sequence[str], completions: Sequence[str], ref: Sequence[Any] | None = None, **_: Any) -> list[float | None]:
    """Sentence chrF(hypothesis, ref) / 100."""
    metric = _chrf()
    out: list[float | None] = []
    for completion, reference in zip(completions, _column(ref, len(completions)), strict=True):
        if not isinstance(reference, str):
            out.append(None)
            continue
        out.append(_finite01(metric.sentence_score(answer_text(completion or ""), [reference]).score))
    return out


def translation_bleu(
    prompts: Sequence[str],
    completions: Sequence[str],
    ref: Sequence[Any] | None = None,
    tgt_lang: Sequence[Any] | None = None,
    **_: Any,
) -> list[float | None]:
    """Sentence BLEU(hypothesis, ref) / 100 with the target language's tokenizer."""
    out: list[float | None] = []
    langs = _column(tgt_lang, len(completions))
    for completion, reference, lang in zip(completions, _column(ref, len(completions)), langs, strict=True):
        if not isinstance(reference, str):
            out.append(None)
            continue
        metric = _bleu(bleu_tokenizer(lang if isinstance(lang, str) else None))
        out.append(_finite01(metric.sentence_score(answer_text(completion or ""), [reference]).score))
    return out


class TranslationComet:
    """COMET score of (src, completion, ref) through the COMET worker (``in2x_cli.comet``).

    Needs ``--comet-model`` (a COMET checkpoint directory or model name available offline) and the
    COMET environment (``make comet-env``). Reference-free models (QE) ignore ``ref``. Rows
    without ``src`` (or without ``ref`` for reference-based models) get ``None``; a non-finite score
    is reported as 0.0.
    """

    def __init__(self, context: RewardContext) -> None:
        from in2x_cli.errors import UserError

        if not context.comet_model:
            raise UserError("reward translation_comet needs --comet-model (a COMET checkpoint; see `in2x eval --help`)")
        self.model = context.comet_model
        self._client: Any = None
        self.client()  # start the worker now: a missing COMET environment fails before training starts

    def client(self) -> Any:
        if self._client is None:
            from in2x_cli.comet import get_client

            self._client = get_client(self.model)
        return self._client

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        src: Sequence[Any] | None = None,
        ref: Sequence[Any] | None = None,
        **_: Any,
    ) -> list[float | None]:
        client = self.client()
        needs_ref = client.requires_references
        sources, refs = _column(src, len(completions)), _column(ref, len(completions))
        todo = [
            i
            for i in range(len(completions))
            if isinstance(sources[i], str) and (not needs_ref or isinstance(refs[i], str))
        ]
        out: list[float | None] = [None] * len(completions)
        if not todo:
            return out
        rows = [{"src": sources[i], "mt": answer_text(completions[i] or ""), "ref": refs[i]} for i in todo]
        for i, score in zip(todo, client.score(rows), strict=True):
            out[i] = float(score) if math.isfinite(score) else 0.0
        return out
