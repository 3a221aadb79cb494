"""Hamilton apportionment (core/apportion.py): sampling quotas, synthesis language quotas."""

from __future__ import annotations

from fractions import Fraction

from in2x_cli.core.apportion import apportion, largest_remainder


def test_allocate_largest_remainder_golden():
    assert apportion(10, {"zh": 1, "en": 1, "ja": 1}) == {"zh": 4, "en": 3, "ja": 3}
    assert apportion(7, {"a": 2, "b": 1}) == {"a": 5, "b": 2}  # 4.67 / 2.33
    assert apportion(100, {"vh": 3, "h": 3, "m": 3, "e": 1}) == {"vh": 30, "h": 30, "m": 30, "e": 10}
    assert apportion(2, {"zh": 1, "en": 1, "ja": 1}) == {"zh": 1, "en": 1, "ja": 0}
    assert apportion(0, {"a": 1}) == {"a": 0}
    for total in range(0, 40):
        assert sum(apportion(total, {"a": Fraction(1, 3), "b": 5, "c": 2}).values()) == total


def test_int_weights_are_exact():
    # 3 over (1, 7, 1): exact 1/3, 7/3, 1/3 -> floors (0, 2, 0), three equal remainders 1/3, the
    # leftover unit goes to the earliest; float division would make 21/9 - 2 the largest
    assert largest_remainder(3, [1, 7, 1]) == [1, 2, 0]
    assert largest_remainder(3, [Fraction(1), Fraction(7), Fraction(1)]) == [1, 2, 0]
