"""``repetition``: a penalty for repeated n-grams in the completion (degenerate loops).

The rate is seq-rep-n of Welleck et al. (2020, "Neural Text Generation with Unlikelihood
Training", https://arxiv.org/abs/1908.04319): ``1 − |unique n-grams| / |n-grams|`` over the
completion's units; the reward is its negative, in [−1, 0] (0 = no n-gram occurs twice).

Units: whitespace-separated words with n = 4 (Welleck's seq-rep-4); for Japanese, Chinese and
Korean, whose words are not space-separated, characters with n = 8 (ours: about four words). The
language is the row's ``tgt_lang`` (else ``lang``), else the script of the completion
(``langs.detect_lang``). Text shorter than one n-gram scores 0.0. Applies to every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from in2x_cli.rewards import answer_text

WORD_N = 4
CHAR_N = 8
CHARACTER_LANGS = frozenset({"ja", "zh", "ko"})


def repetition_rate(units: Sequence[str], n: int) -> float:
    """``1 − unique/total`` over the n-grams of ``units``; 0.0 when there is no n-gram."""
    grams = [tuple(units[i : i + n]) for i in range(len(units) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def text_units(text: str, lang: str | None) -> tuple[list[str], int]:
    """(units, n): characters and CHAR_N for ja/zh/ko, words and WORD_N otherwise."""
    from in2x_cli.errors import UserError
    from in2x_cli.langs import detect_lang, normalize_lang

    try:
        code = normalize_lang(lang) if lang else detect_lang(text)
    except UserError:
        code = detect_lang(text)
    if code in CHARACTER_LANGS:
        return [c for c in text if not c.isspace()], CHAR_N
    return text.split(), WORD_N


def repetition(
    prompts: Sequence[str], completions: Sequence[str], tgt_lang: Sequence[Any] | None = None, lang: Sequence[Any] | None = None, **_: Any
) -> list[float]:
    """−seq-rep-n of each completion (module docstring)."""
    n = len(completions)
    targets = list(tgt_lang) if tgt_lang is not None else [None] * n
    fallback = list(lang) if lang is not None else [None] * n
    out = []
    for completion, t, f in zip(completions, targets, fallback, strict=True):
        code = t if isinstance(t, str) else f if isinstance(f, str) else None
        units, order = text_units(answer_text(completion or ""), code)
        out.append(-repetition_rate(units, order))
    return out
