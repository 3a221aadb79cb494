"""synthesize's --langs / --lang-ratio resolution (synth/config.py)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from in2x_cli.errors import UserError
from in2x_cli.synth.config import parse_lang_weights


def test_parse_lang_weights_forms():
    assert parse_lang_weights("zh,en,ja", None) == {"zh": 1, "en": 1, "ja": 1}
    assert parse_lang_weights("zh,en,ja", "2:1:1") == {"zh": 2, "en": 1, "ja": 1}
    assert parse_lang_weights(None, "zh=1,en=0.5,ja=1") == {"zh": 1, "en": Fraction(1, 2), "ja": 1}
    assert parse_lang_weights("ja_JP,en", "1:0") == {"ja": 1}  # weight 0 drops a language
    assert list(parse_lang_weights("ja,zh", "zh=1,ja=1")) == ["zh", "ja"]


@pytest.mark.parametrize(
    "langs, ratio, message",
    [
        ("zh,en", "1:1:1", "3 weights for 2"),
        ("zh,zh", None, "twice"),
        ("zh,en", "a:1", "not a number"),
        ("zh,en", "-1:1", ">= 0"),
        ("zh,en", "0:0", "every weight is 0"),
        ("zh,en", "zh=1,ja=1", "different languages"),
        (None, "1:1", "needs --langs"),
        ("zh,12", None, "invalid language"),
    ],
)
def test_parse_lang_weights_errors(langs, ratio, message):
    with pytest.raises(UserError, match=message):
        parse_lang_weights(langs, ratio)
