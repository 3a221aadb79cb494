"""Rule-based rewards: exact final answers, required format tags, output language.

The In2x RL stage scores math/STEM/logic prompts with rules (arXiv 2508.14472, RL section);
these are the rules, each 1.0 (pass) or 0.0 (fail), ``None`` where the row has nothing to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from in2x_cli.rewards import RewardContext, answer_text
from in2x_cli.rewards import column as _column


def math_exact(prompts: Sequence[str], completions: Sequence[str], answer: Sequence[Any] | None = None, **_: Any) -> list[float | None]:
    """1.0 when the completion's final answer (last ``\\boxed{}``, "answer:" line or last number;
    ``core.answers.extract_final_answer``) matches the row's ``answer`` after normalisation
    (``answers_match``: numbers compared numerically, 1,000 = 1000 = 1000.0, 3/4 = 0.75); else 0.0.
    Rows without ``answer`` get ``None``."""
    from in2x_cli.core.answers import answers_match, extract_final_answer

    golds = _column(answer, len(completions))
    out: list[float | None] = []
    for completion, gold in zip(completions, golds, strict=True):
        if gold is None or (isinstance(gold, str) and not gold.strip()):
            out.append(None)
            continue
        pred = extract_final_answer(answer_text(completion or ""))
        out.append(1.0 if answers_match(pred, gold) else 0.0)
    return out


class FormatReward:
    """1.0 when the completion holds each required tag exactly once as ``<tag>…</tag>``, the
    pairs in the given order, not nested, each with non-empty content; else 0.0.

    The reward applies only to rows that ask for the format (the applicability contract in
    ``in2x_cli.rewards``): a row with a ``format_tags`` field (a list of names), or a row whose
    prompt writes every ``--format-tags`` tag (default ``think``: the prompt asks for
    ``<think>…</think>``). Every other row (a translation, a creative task) gets ``None``, so the
    format bonus neither penalises answers that were never asked to reason nor pushes the total
    of a correct math answer past the reward clip.
    """

    def __init__(self, context: RewardContext) -> None:
        self.default_tags = tuple(context.format_tags)

    @staticmethod
    def check(completion: str, tags: Sequence[str]) -> bool:
        text = completion or ""
        pos = 0
        for tag in tags:
            open_t, close_t = f"<{tag}>", f"</{tag}>"
            if text.count(open_t) != 1 or text.count(close_t) != 1:
                return False
            start, end = text.find(open_t), text.find(close_t)
            if start < pos or end < start:
                return False
            if not text[start + len(open_t) : end].strip():
                return False
            pos = end + len(close_t)
        return bool(tags)

    def asks_for(self, prompt: str) -> bool:
        """The prompt names every default tag (``<think>``): the row asks for the format."""
        return bool(self.default_tags) and all(f"<{tag}>" in (prompt or "") for tag in self.default_tags)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], format_tags: Sequence[Any] | None = None, **_: Any) -> list[float | None]:
        per_row = _column(format_tags, len(completions))
        out: list[float | None] = []
        for prompt, completion, row_tags in zip(prompts, completions, per_row, strict=True):
            if isinstance(row_tags, (list, tuple)) and row_tags:
                tags: tuple[str, ...] = tuple(str(t) for t in row_tags)
            elif self.asks_for(prompt):
                tags = self.default_tags
            else:
                out.append(None)
                continue
            out.append(1.0 if self.check(completion, tags) else 0.0)
        return out


# Languages written in Latin script: the offline detector (langs.detect_lang) reports all of them as
# "en", so for these a Latin-script answer is the best it can confirm.
_LATIN_SCRIPT = frozenset({"en", "de", "fr", "es", "it", "pt", "nl", "cs", "et", "is", "pl", "sv", "da", "no", "fi", "ro", "hu", "mas"})
_DETECTABLE = frozenset({"ja", "zh", "ko"})


def language_match(
    prompts: Sequence[str],
    completions: Sequence[str],
    tgt_lang: Sequence[Any] | None = None,
    lang: Sequence[Any] | None = None,
    **_: Any,
) -> list[float | None]:
    """1.0 when the completion is written in the row's target language, else 0.0.

    The target is ``tgt_lang`` (translation rows) or else ``lang``. Detection is
    ``langs.detect_lang`` (offline script ratios): ja/zh/ko are told apart exactly; Latin-script
    targets (en, de, fr, cs, …) match any Latin-script answer. Rows without a target, or whose
    target the detector cannot see (ru, ar, hi, …), get ``None``.
    """
    from in2x_cli.errors import UserError
    from in2x_cli.langs import detect_lang, normalize_lang

    targets = _column(tgt_lang, len(completions))
    fallback = _column(lang, len(completions))
    out: list[float | None] = []
    for completion, t, f in zip(completions, targets, fallback, strict=True):
        code = t if t is not None else f
        try:
            target = normalize_lang(code)
        except UserError:  # absent or not a language code
            out.append(None)
            continue
        if target in _LATIN_SCRIPT:
            target = "en"
        elif target not in _DETECTABLE:
            out.append(None)
            continue
        out.append(1.0 if detect_lang(answer_text(completion or "")) == target else 0.0)
    return out
