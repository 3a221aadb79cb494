"""Candidate fusion: one refined translation written from the source and numbered candidates.

The WMT25 winner (Shy / Hunyuan-MT, arXiv 2509.05209, "Hunyuan-MT-Chimera") generated several
candidate translations (models, temperatures) and had a fusion model read the source with the
numbered candidates and write one refined translation. ``in2x translate --fuse MODEL`` and the
``grpo`` ``fusion`` row type share this module: the prompt, and the cleaning of the reply.

Prompt (``DEFAULT_FUSE_TEMPLATE``, ours; the winner's exact wording is not published; replace it
with ``--fuse-prompt-file``). Placeholders, filled in one pass (text that itself contains a
placeholder is never re-expanded): ``{src}`` source text · ``{candidates}`` the numbered
candidates (``Candidate 1:`` + text, blank line between) · ``{n}`` how many · ``{src_name}`` /
``{tgt_name}`` English language names · ``{src_lang}`` / ``{tgt_lang}`` codes · ``{paragraphs}``
paragraph count · ``{structure}`` a sentence asking to keep that many blank-line separated
paragraphs (empty for one). A template must contain ``{src}`` and ``{candidates}``.

Cleaning (``clean_fused``): the translate stage's rules (``core.translate.clean_output_rules``),
then a leading line that only labels the answer — "Refined translation:", "Final translation:",
"Improved translation:", "Candidate 2:" — is dropped (rule ``fusion_label``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from in2x_cli.core.translate import clean_output_rules
from in2x_cli.langs import LANG_NAMES

DEFAULT_FUSE_TEMPLATE = (
    "Below is a {src_name} source text and {n} candidate translations of it into {tgt_name}. "
    "Write one refined {tgt_name} translation that keeps the best of the candidates and corrects their errors "
    "(meaning, terminology, fluency). {structure}Only output the refined translation.\n\n"
    "Source:\n{src}\n\n{candidates}"
)

FUSE_PLACEHOLDERS = ("src", "candidates", "n", "src_name", "tgt_name", "src_lang", "tgt_lang", "paragraphs", "structure")
_PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(FUSE_PLACEHOLDERS) + r")\}")
_STRUCTURE = "The source has {paragraphs} paragraphs separated by blank lines; keep the same {paragraphs} paragraphs, separated by blank lines. "
_LABEL_RE = re.compile(
    r"^\s*(?:\*\*)?(?:(?:refined|final|improved|fused|best)\s+translation|candidate\s*\d+)\s*(?:\*\*\s*[:：]|[:：]\s*(?:\*\*)?)\s*", re.I
)


def validate_fuse_template(template: str) -> str | None:
    """An error message for an unusable fusion template, or None."""
    missing = [p for p in ("{src}", "{candidates}") if p not in template]
    return f"a fusion template must contain {' and '.join(missing)}" if missing else None


def number_candidates(candidates: Sequence[str]) -> str:
    """``Candidate 1:\\n<text>`` blocks separated by a blank line."""
    return "\n\n".join(f"Candidate {i}:\n{c.strip()}" for i, c in enumerate(candidates, 1))


def render_fuse_prompt(template: str, src: str, candidates: Sequence[str], src_lang: str, tgt_lang: str, paragraphs: int = 1) -> str:
    """Fill the fusion template (one pass: source and candidates are never re-expanded)."""
    if not candidates:
        raise ValueError("fusion needs at least one candidate")
    values = {
        "src": src,
        "candidates": number_candidates(candidates),
        "n": str(len(candidates)),
        "src_name": LANG_NAMES.get(src_lang, src_lang),
        "tgt_name": LANG_NAMES.get(tgt_lang, tgt_lang),
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
        "paragraphs": str(paragraphs),
        "structure": _STRUCTURE.replace("{paragraphs}", str(paragraphs)) if paragraphs > 1 else "",
    }
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)


def distinct(candidates: Sequence[str]) -> list[str]:
    """The candidates without repeats (first occurrence kept, order kept): a fusion model gains
    nothing from reading the same text twice."""
    seen: set[str] = set()
    out = []
    for c in candidates:
        key = c.strip()
        if key and key not in seen:
            seen.add(key)
            out.append(c)
    return out


def clean_fused(text: str, src: str = "") -> tuple[str, list[str]]:
    """The fusion model's reply as a translation, and the cleaning rules that fired."""
    out, fired = clean_output_rules(text, src)
    while True:
        stripped = _LABEL_RE.sub("", out, count=1)
        if stripped == out or _LABEL_RE.match(src or ""):
            break
        out, fired = stripped.strip(), [*fired, "fusion_label"]
    return out, fired
