"""Settings of one ``in2x sample-difficulty`` run, and how its option strings parse."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from in2x_cli.core.sampling import LEVELS
from in2x_cli.errors import UserError


@dataclass(frozen=True)
class SampleRun:
    """Resolved settings of one run (recorded in the provenance)."""

    input: str
    output: str
    total: int | None
    ratio: str
    lang_ratio: str
    rounds: int
    shortfall: str
    grade_only: bool
    field: str | None
    judge_model: str | None
    solve_model: str | None
    backend: str
    k: int
    batch_size: int
    judge_max_tokens: int
    solve_max_tokens: int
    solve_temperature: float
    cutoffs: tuple[float, ...]
    grades: str | None
    resume: bool
    trust_remote_code: bool
    seed: int


def parse_cutoffs(text: str) -> tuple[float, ...]:
    """``"0.2,0.4,0.6,0.8"`` → the four increasing solve-rate cut-offs."""
    try:
        cuts = tuple(float(c) for c in text.split(","))
        if len(cuts) != 4 or list(cuts) != sorted(cuts):
            raise ValueError
    except ValueError:
        raise UserError(f"--cutoffs needs four increasing numbers, got {text!r}") from None
    return cuts


def parse_ratio(text: str) -> tuple[Fraction, ...]:
    """``"3:3:3:1:0"`` → five non-negative weights, hardest level first."""
    parts = text.split(":")
    if len(parts) != len(LEVELS):
        raise UserError(f"--ratio needs {len(LEVELS)} numbers separated by ':' (very_hard:hard:medium:easy:very_easy), got {text!r}")
    weights = tuple(_weight(p, "--ratio") for p in parts)
    if sum(weights) <= 0:
        raise UserError(f"--ratio {text!r} gives every level weight 0")
    return weights


def parse_lang_ratio(text: str) -> dict[str, Fraction]:
    """``"zh=1,en=1,ja=1"`` → {lang: weight} in the given order (codes normalised)."""
    from in2x_cli.langs import normalize_lang

    out: dict[str, Fraction] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        lang, sep, w = item.partition("=")
        if not sep:
            raise UserError(f"--lang-ratio items look like zh=1, got {item!r}")
        code = normalize_lang(lang.strip())
        if code in out:
            raise UserError(f"--lang-ratio names {code!r} twice")
        out[code] = _weight(w, "--lang-ratio")
    if not out or sum(out.values()) <= 0:
        raise UserError(f"--lang-ratio {text!r} gives every language weight 0")
    return out


def _weight(text: str, option: str) -> Fraction:
    try:
        w = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise UserError(f"{option}: {text.strip()!r} is not a number") from None
    if w < 0:
        raise UserError(f"{option}: weights must be >= 0, got {text.strip()}")
    return w
