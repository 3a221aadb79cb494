"""``terminology``: the share of the row's key terms that the translation renders as required.

Which terms (first that applies):

1. the row's own ``terms`` field: a list of ``{"src": TERM, "tgt": RENDERING or [RENDERINGS]}``;
2. ``--glossary FILE``: JSONL rows of the same shape (optionally ``src_lang``/``tgt_lang`` to
   limit an entry to a language pair); an entry counts for a row when its ``src`` term occurs
   in the row's ``src`` (case-insensitively);
3. without a glossary, aligned key terms (ours): Latin-script tokens of the ``src`` that contain a
   digit or a capital letter and occur verbatim in the ``ref`` — numbers, acronyms, product and personal
   names, which a translation copies across (``WMT25``, ``GPT-4``, ``2024``, ``Zürich``).

Reward = (terms whose rendering occurs in the completion, case-insensitively) / (terms). A row
with no term (no ``src``, nothing from 1–3) gets ``None``: the reward does not apply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from in2x_cli.rewards import RewardContext, answer_text, column


@dataclass(frozen=True)
class Term:
    src: str
    tgt: tuple[str, ...]
    src_lang: str | None = None
    tgt_lang: str | None = None


_LATIN = "A-Za-z0-9\u00C0-\u024F"
_KEY_TOKEN = re.compile(rf"[{_LATIN}](?:[{_LATIN}.\-+/']*[{_LATIN}])?")


def parse_term(obj: Any, where: str) -> Term:
    """One glossary entry; InputError naming ``where`` when it is not ``{"src": str, "tgt": str | [str]}``."""
    from in2x_cli.errors import InputError
    from in2x_cli.langs import normalize_lang

    if not isinstance(obj, dict) or not isinstance(obj.get("src"), str) or not obj["src"].strip():
        raise InputError('a term needs "src" (a non-empty string) and "tgt"', where)
    tgt = obj.get("tgt")
    targets = (tgt,) if isinstance(tgt, str) else tuple(tgt) if isinstance(tgt, list) else ()
    if not targets or not all(isinstance(t, str) and t.strip() for t in targets):
        raise InputError('a term\'s "tgt" must be a non-empty string or a list of them', where)
    langs = [normalize_lang(obj[k], where=where) if obj.get(k) else None for k in ("src_lang", "tgt_lang")]
    return Term(obj["src"].strip(), tuple(t.strip() for t in targets), langs[0], langs[1])


def load_glossary(path: str) -> list[Term]:
    from in2x_cli.io import iter_jsonl

    return [parse_term(line.data, line.where) for line in iter_jsonl(path)]


def aligned_key_terms(src: str, ref: str) -> list[Term]:
    """Latin-script tokens of ``src`` with a digit or a capital letter that occur verbatim in
    ``ref`` (a substring: CJK references do not separate words), each once (module docstring, 3)."""
    keys = [t for t in dict.fromkeys(_KEY_TOKEN.findall(src)) if any(c.isdigit() or c.isupper() for c in t) and t in ref]
    return [Term(t, (t,)) for t in keys]


def term_recall(completion: str, terms: Sequence[Term]) -> float | None:
    """Share of ``terms`` with a rendering in ``completion``; None for no terms."""
    if not terms:
        return None
    text = completion.casefold()
    return sum(any(t.casefold() in text for t in term.tgt) for term in terms) / len(terms)


def _lang(code: Any) -> str | None:
    from in2x_cli.errors import UserError
    from in2x_cli.langs import normalize_lang

    try:
        return normalize_lang(code) if isinstance(code, str) else None
    except UserError:
        return None


class TerminologyReward:
    """The ``terminology`` reward (module docstring); ``--glossary FILE`` is optional."""

    def __init__(self, context: RewardContext) -> None:
        self.glossary = load_glossary(context.glossary) if context.glossary else []

    def terms_for(self, src: Any, ref: Any, terms: Any, src_lang: Any, tgt_lang: Any, where: str = "row") -> list[Term]:
        if isinstance(terms, list) and terms:
            return [parse_term(t, f"{where} field 'terms'") for t in terms]
        if not isinstance(src, str) or not src.strip():
            return []
        if not self.glossary:
            return aligned_key_terms(src, ref) if isinstance(ref, str) else []
        folded = src.casefold()
        s_lang, t_lang = _lang(src_lang), _lang(tgt_lang)
        return [
            t for t in self.glossary
            if t.src.casefold() in folded and (t.src_lang is None or t.src_lang == s_lang) and (t.tgt_lang is None or t.tgt_lang == t_lang)
        ]  # fmt: skip

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        src: Sequence[Any] | None = None,
        ref: Sequence[Any] | None = None,
        terms: Sequence[Any] | None = None,
        src_lang: Sequence[Any] | None = None,
        tgt_lang: Sequence[Any] | None = None,
        **_: Any,
    ) -> list[float | None]:
        n = len(completions)
        cols = [column(c, n) for c in (src, ref, terms, src_lang, tgt_lang)]
        return [
            term_recall(answer_text(completions[i] or ""), self.terms_for(*(c[i] for c in cols), where=f"row {i + 1}"))
            for i in range(n)
        ]
