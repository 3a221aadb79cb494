"""Settings of one ``in2x sample-difficulty`` run, and how its option strings parse."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from in2x_cli.core.sampling import LEVELS
from in2x_cli.errors import UserError
from in2x_cli.langs import parse_weight


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
    weights = tuple(parse_weight(p, "--ratio") for p in parts)
    if sum(weights) <= 0:
        raise UserError(f"--ratio {text!r} gives every level weight 0")
    return weights
