import pytest

from in2x_cli.errors import UserError
from in2x_cli.langs import detect_lang, normalize_lang, parse_pair


@pytest.mark.parametrize(
    "code, expected",
    [("ja_JP", "ja"), ("zh_CN", "zh"), ("ZH-Hans", "zh"), ("en", "en"), ("Japanese", "ja"), ("日本語", "ja"), ("cs_CZ", "cs")],
)
def test_normalize(code, expected):
    assert normalize_lang(code) == expected


def test_bad_codes():
    with pytest.raises(UserError):
        normalize_lang("")
    with pytest.raises(UserError):
        normalize_lang("12")
    assert parse_pair("en-ja_JP") == ("en", "ja")


@pytest.mark.parametrize(
    "text, lang",
    [
        ("The weather is nice today.", "en"),
        ("今日はいい天気ですね。", "ja"),
        ("東京都の人口は約千四百万人です。", "ja"),  # mostly kanji, a few kana
        ("今天天气很好。", "zh"),
        ("我们明天去北京。", "zh"),
        ("12345 !!!", "und"),
        ("", "und"),
        ("오늘 날씨가 좋네요.", "ko"),
    ],
)
def test_detect(text, lang):
    assert detect_lang(text) == lang
