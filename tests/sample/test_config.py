"""Option strings of sample-difficulty: the level ratio and the language ratio."""

from fractions import Fraction

import pytest

from in2x_cli.errors import UserError
from in2x_cli.langs import parse_lang_ratio
from in2x_cli.sample.config import parse_ratio

PAPER = parse_ratio("3:3:3:1:0")


def test_parse_ratios():
    assert PAPER == (3, 3, 3, 1, 0)
    assert parse_lang_ratio("zh=1, ja_JP=2,en=0.5") == {"zh": 1, "ja": 2, "en": Fraction(1, 2)}
    for bad in ("3:3:3:1", "3:3:x:1:0", "0:0:0:0:0", "3:-1:3:1:0"):
        with pytest.raises(UserError):
            parse_ratio(bad)
    for bad in ("zh", "zh=1,zh=2", "zh=0", "zh=a"):
        with pytest.raises(UserError):
            parse_lang_ratio(bad)
