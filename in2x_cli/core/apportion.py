"""Apportionment: split an integer total over weights (Hamilton's largest-remainder method).

Hamilton (1792): each part gets ⌊T·w_i/Σw⌋, then the T − Σ⌊·⌋ leftover units go one each to the
parts with the largest fractional remainders. Used for sampling quotas (3:3:3:1:0 over levels,
1:1:1 over languages), synthesis language ratios and SFT language-temperature epochs.

Arithmetic follows the weights' type: ``int``/``Fraction`` weights are exact (10 at 1:1:1 is
always 4:3:3); ``float`` weights use float arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from fractions import Fraction
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
Weight = int | float | Fraction


def largest_remainder(total: int, weights: Sequence[Weight], tie_key: Callable[[int], object] | None = None) -> list[int]:
    """Hamilton apportionment of ``total`` over ``weights``; returns one count per weight.

    Ties between equal remainders go to the smaller ``tie_key(i)`` (default: the earlier index).
    ``total <= 0`` or ``Σw <= 0`` gives all zeros.

    Example: 10 over (1, 1, 1) → exact 3⅓ each → floors (3, 3, 3), one unit left → (4, 3, 3).
    """
    n = len(weights)
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * n
    exact = [Fraction(total) * w / s for w in weights]  # Fraction·int stays exact; Fraction·float is a float
    seats = [int(e) for e in exact]  # floor: shares are non-negative
    left = total - sum(seats)
    key = tie_key if tie_key is not None else (lambda i: i)
    by_remainder = sorted(range(n), key=lambda i: (-(exact[i] - seats[i]), key(i)))
    for i in by_remainder[:left]:
        seats[i] += 1
    return seats


def apportion(total: int, weights: Mapping[K, Weight], tie_key: Callable[[K], object] | None = None) -> dict[K, int]:
    """``largest_remainder`` over a mapping: keys keep their order; ties go to the smaller
    ``tie_key(key)`` (default: the key listed first)."""
    keys = list(weights)
    key = (lambda i: tie_key(keys[i])) if tie_key is not None else None
    return dict(zip(keys, largest_remainder(total, [weights[k] for k in keys], key), strict=True))


__all__ = ["apportion", "largest_remainder"]
