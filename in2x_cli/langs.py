"""Language codes and an offline zh/en/ja detector based on Unicode script ratios.

Codes: WMT25 writes ``ja_JP`` / ``zh_CN``, WMT24 ``ja`` / ``zh``; people write ``Japanese``. All map to
the ISO 639-1 code used everywhere inside in2x (``normalize_lang``).

Detector (``detect_lang``): count letters by script —
  kana (Hiragana U+3040–309F, Katakana U+30A0–30FF, half-width katakana U+FF66–FF9D),
  han (CJK Unified Ideographs U+4E00–9FFF, Extension A U+3400–4DBF, compatibility U+F900–FAFF),
  hangul, latin (ASCII and Latin-1/Extended letters).
Rules, in order, over L = kana + han + hangul + latin:
  1. L == 0                          → "und" (digits, punctuation, empty)
  2. kana ≥ 5% of L or kana ≥ 20% of (kana + han) → "ja" (Japanese prose is rarely under 20% kana;
     Chinese text has none, so a few kana are decisive)
  3. hangul ≥ 30% of L               → "ko"
  4. han ≥ 30% of L                  → "zh"
  5. latin ≥ 50% of L                → "en" (the detector only separates the project's languages:
     any Latin-script text is reported as "en")
  6. otherwise                       → "und"
It is deliberately simple: it separates the three languages of the recipe reliably on sentences
and fails only on very short, script-ambiguous strings (a lone kanji word is reported as "zh").
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from in2x_cli.errors import UserError

DEFAULT_LANGS = ("zh", "en", "ja")  # the paper's languages, in the order its 1:1:1 names them

LANG_NAMES = {
    "en": "English",
    "ja": "Japanese",
    "zh": "Chinese",
    "ko": "Korean",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "ru": "Russian",
    "cs": "Czech",
    "uk": "Ukrainian",
    "ar": "Arabic",
    "it": "Italian",
    "et": "Estonian",
    "is": "Icelandic",
    "hi": "Hindi",
    "bho": "Bhojpuri",
    "mas": "Maasai",
    "sr": "Serbian",
}

# Names in the target language itself, used by prompts written in the target-language convention.
NATIVE_NAMES = {"en": "English", "ja": "日本語", "zh": "中文", "ko": "한국어"}

_ALIASES = {
    "english": "en",
    "japanese": "ja",
    "chinese": "zh",
    "korean": "ko",
    "日本語": "ja",
    "中文": "zh",
    "汉语": "zh",
    "jp": "ja",
    "cn": "zh",
    "zho": "zh",
    "jpn": "ja",
    "eng": "en",
}


def normalize_lang(code: str, *, where: str | None = None) -> str:
    """``ja_JP``, ``ja-JP``, ``JA``, ``Japanese`` → ``ja``; ``zh_CN``/``zh-Hans`` → ``zh``."""
    if not isinstance(code, str) or not code.strip():
        raise UserError(f"invalid language code {code!r}", where)
    raw = code.strip()
    low = raw.lower()
    if low in _ALIASES:
        return _ALIASES[low]
    base = low.replace("-", "_").split("_", 1)[0]
    if base in _ALIASES:
        return _ALIASES[base]
    if base.isalpha() and 2 <= len(base) <= 3:
        return base
    raise UserError(f"invalid language code {code!r} (expected e.g. en, ja, ja_JP, zh_CN)", where)


def lang_name(code: str) -> str:
    code = normalize_lang(code)
    return LANG_NAMES.get(code, code)


def parse_pair(pair: str) -> tuple[str, str]:
    """``en-ja_JP`` → ("en", "ja")."""
    parts = pair.split("-")
    if len(parts) != 2:
        raise UserError(f"invalid language pair {pair!r} (expected SRC-TGT such as en-ja_JP)")
    return normalize_lang(parts[0]), normalize_lang(parts[1])


def parse_weight(value: str, context: str) -> Fraction:
    """One non-negative weight of a ratio option (``3``, ``0.5``, ``1/3``); ``context`` starts
    the error message (the option, and its value where that helps)."""
    try:
        w = Fraction(value.strip())
    except (ValueError, ZeroDivisionError):
        raise UserError(f"{context}: {value.strip()!r} is not a number") from None
    if w < 0:
        raise UserError(f"{context}: weights must be >= 0, got {value.strip()}")
    return w


def parse_lang_ratio(text: str, langs: Sequence[str] | None = None) -> dict[str, Fraction]:
    """``--lang-ratio``, one grammar for every command: ``zh=1,en=1,ja=1`` (named weights, kept
    in the order given, codes normalised) or ``1:1:1`` (bare weights for ``langs``, in order).

    Weights are non-negative numbers (``0.5``, ``1/3``); a language with weight 0 is kept (the
    caller decides what 0 means); at least one weight must be > 0.
    """
    weights: dict[str, Fraction] = {}
    if "=" in text:
        for part in text.split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise UserError(f"--lang-ratio {text!r}: mix of 'lang=w' and bare weights")
            lang = normalize_lang(name, where="--lang-ratio")
            if lang in weights:
                raise UserError(f"--lang-ratio {text!r} names {lang} twice")
            weights[lang] = parse_weight(value, f"--lang-ratio {text!r}")
    else:
        if langs is None:
            raise UserError("--lang-ratio a:b:c needs --langs to say which weight is which language")
        parts = text.split(":")
        if len(parts) != len(langs):
            raise UserError(f"--lang-ratio {text!r} has {len(parts)} weights for {len(langs)} languages ({','.join(langs)})")
        weights = {lang: parse_weight(v, f"--lang-ratio {text!r}") for lang, v in zip(langs, parts, strict=True)}
    if not any(w > 0 for w in weights.values()):
        raise UserError(f"--lang-ratio {text!r}: every weight is 0")
    return weights


def script_counts(text: str) -> dict[str, int]:
    counts = {"kana": 0, "han": 0, "hangul": 0, "latin": 0}
    for ch in text:
        cp = ord(ch)
        if 0x3040 <= cp <= 0x30FF or 0xFF66 <= cp <= 0xFF9D or 0x31F0 <= cp <= 0x31FF:
            if cp not in (0x30FB, 0x30FC):  # ・ and ー are shared punctuation-like marks
                counts["kana"] += 1
        elif 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF:
            counts["han"] += 1
        elif 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF:
            counts["hangul"] += 1
        elif ch.isalpha() and (cp < 0x0250 or 0x1E00 <= cp <= 0x1EFF):
            counts["latin"] += 1
    return counts


def detect_lang(text: str) -> str:
    """Return "ja", "zh", "en", "ko" or "und" by the script-ratio rules in the module docstring."""
    c = script_counts(text)
    total = c["kana"] + c["han"] + c["hangul"] + c["latin"]
    if total == 0:
        return "und"
    cjk = c["kana"] + c["han"]
    if c["kana"] >= 0.05 * total or (cjk and c["kana"] >= 0.2 * cjk):
        return "ja"
    if c["hangul"] >= 0.3 * total:
        return "ko"
    if c["han"] >= 0.3 * total:
        return "zh"
    if c["latin"] >= 0.5 * total:
        return "en"
    return "und"
