"""The ``grpo`` ``fusion`` row type: a source, candidate translations and (for rewards) a reference.

    {"src": "...", "candidates": ["...", "..."], "ref": "...", "src_lang": "en", "tgt_lang": "ja"}

The prompt is the one ``in2x translate --fuse`` sends (``core.fusion.DEFAULT_FUSE_TEMPLATE``, the
candidates numbered, repeats shown once), so a fuser trained here is prompted the same way at
translation time. ``in2x_cli.rewards.fusion`` scores the fused output against ``ref``.
"""

from __future__ import annotations

from typing import Any

from in2x_cli.errors import InputError


def fusion_prompt(data: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """The fusion prompt of a row and the canonical fields rewards see (InputError naming the row)."""
    from in2x_cli.core.fusion import DEFAULT_FUSE_TEMPLATE, distinct, render_fuse_prompt
    from in2x_cli.langs import normalize_lang
    from in2x_cli.records import TranslationRow
    from in2x_cli.wmt import split_paragraphs

    cands = data.get("candidates")
    if not isinstance(cands, list) or not cands or not all(isinstance(c, str) for c in cands):
        raise InputError("field 'candidates' must be a non-empty list of strings (a fusion row)", where)
    if not distinct(cands):
        raise InputError("every candidate of the fusion row is empty", where)
    rest = {k: v for k, v in data.items() if k != "candidates"}
    tr = TranslationRow.from_dict(rest, where)
    if not (tr.src or "").strip():
        raise InputError("a fusion row needs a non-empty 'src'", where)
    if not tr.tgt_lang:
        raise InputError("a fusion row needs 'tgt_lang'", where)
    tgt = normalize_lang(tr.tgt_lang, where=where)
    src_lang = normalize_lang(tr.src_lang, where=where) if tr.src_lang else "en"
    src = tr.src or ""
    text = render_fuse_prompt(DEFAULT_FUSE_TEMPLATE, src, distinct(cands), src_lang, tgt, max(1, len(split_paragraphs(src))))
    return text, {"src": src, "ref": tr.ref, "candidates": list(cands), "src_lang": src_lang, "tgt_lang": tgt}
