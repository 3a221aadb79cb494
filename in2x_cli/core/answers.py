"""Final-answer extraction and matching for verifiable prompts (math-style answers).

Used by pass@k difficulty grading (``sample-difficulty --solve-model``) and by answer-checking
rewards. Two functions:

``extract_final_answer(text)`` — the answer a completion commits to, by priority:
  1. the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced;
  2. the text after the last "final answer is" / "answer:" / "答案是" / "答え：" marker, up to the
     end of that line;
  3. the last number in the text (``-1,234.5``, ``3/4``, ``12%``, full-width digits included).
  ``None`` when there is none of these.

``answers_match(pred, gold)`` — equality after ``normalize_answer``:
  NFKC (full-width → ASCII), strip ``$``/``\\(\\)``, ``\\text{}``/``\\mathrm{}`` wrappers, ``\\left``/
  ``\\right``, ``\\dfrac``/``\\tfrac``/``\\frac{a}{b}`` → ``a/b``, spaces, a trailing period,
  thousands separators (``1,000`` → ``1000``), ``\\%`` → ``%``, a leading ``x =``; then, when both sides
  are numbers (integers, decimals, fractions ``a/b``, percentages as their number), they match
  when ``|p − g| ≤ 1e-6 · max(1, |g|)``; otherwise the normalised strings must be equal (case-
  insensitive). ``None`` never matches.
"""

from __future__ import annotations

import math
import re
import unicodedata

_BOX_OPENERS = ("\\boxed{", "\\fbox{", "\\boxed {")
_MARKERS = re.compile(
    r"(?:final answer(?: is)?|the answer is|answer\s*[:：]|答案(?:是|为|：|:)|答え(?:は|：|:)|正解(?:は|：|:))\s*",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?%?")
_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|operatorname|mbox)\s*\{([^{}]*)\}")
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_FRAC_SHORT = re.compile(r"\\[dt]?frac(\d)(\d)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?:\D|$))")


def _last_boxed(text: str) -> str | None:
    start = -1
    opener_len = 0
    for opener in _BOX_OPENERS:
        pos = text.rfind(opener)
        if pos > start:
            start, opener_len = pos, len(opener)
    if start < 0:
        return None
    depth = 1
    i = start + opener_len
    begin = i
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[begin:i].strip()
        i += 1
    return None  # unbalanced: the completion was cut off inside the box


def extract_final_answer(text: str | None) -> str | None:
    """The final answer a completion commits to (see the module docstring), or ``None``."""
    if not text:
        return None
    boxed = _last_boxed(text)
    if boxed:
        return boxed
    markers = list(_MARKERS.finditer(text))
    if markers:
        tail = text[markers[-1].end():].strip()
        line = tail.splitlines()[0].strip() if tail else ""
        line = line.rstrip("。.．")
        if line:
            return line
    numbers = _NUMBER.findall(unicodedata.normalize("NFKC", text))
    if numbers:
        return numbers[-1].strip()
    return None


def normalize_answer(answer: str | int | float) -> str:
    """A canonical string form of an answer (see the module docstring)."""
    s = unicodedata.normalize("NFKC", str(answer)).strip()
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    s = s.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "").replace("\\ ", "")
    for _ in range(3):  # nested wrappers: \text{\textbf{x}}
        s = _WRAPPERS.sub(r"\1", s)
    s = _FRAC.sub(r"(\1)/(\2)", s)
    s = _FRAC_SHORT.sub(r"\1/\2", s)
    s = s.replace("^\\circ", "").replace("°", "")
    s = s.replace("\\%", "%")
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"^[a-zA-Z](?:_\w+)?=(?=[^=])", "", s)  # "x = 5" -> "5"
    s = s.rstrip(".。")
    s = _THOUSANDS.sub("", s)
    s = re.sub(r"\((-?[\d.]+)\)", r"\1", s)  # (3)/(4) -> 3/4
    return s.lower()


def _as_number(s: str) -> float | None:
    t = s[:-1] if s.endswith("%") else s
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            d = float(den)
            return None if d == 0 else float(num) / d
        value = float(t)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def answers_match(pred: str | int | float | None, gold: str | int | float | None) -> bool:
    """Whether a predicted final answer equals the gold answer (see the module docstring)."""
    if pred is None or gold is None:
        return False
    p, g = normalize_answer(pred), normalize_answer(gold)
    if not p or not g:
        return False
    pn, gn = _as_number(p), _as_number(g)
    if pn is not None and gn is not None:
        return abs(pn - gn) <= 1e-6 * max(1.0, abs(gn))
    return p == g
