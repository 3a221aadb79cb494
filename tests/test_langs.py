import pytest

from in2x_cli.errors import UserError
from in2x_cli.langs import DEFAULT_LANGS, detect_lang, normalize_lang, parse_lang_ratio, parse_pair


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


def test_lang_ratio_one_grammar_named_or_bare():
    assert parse_lang_ratio("zh=1, ja_JP=2,en=0") == {"zh": 1, "ja": 2, "en": 0}  # weight 0 kept, order kept
    assert parse_lang_ratio("1:1:2", DEFAULT_LANGS) == {"zh": 1, "en": 1, "ja": 2}
    assert list(parse_lang_ratio("1/3:0.5", ("ja", "en"))) == ["ja", "en"]
    for text, langs, message in [
        ("1:1", DEFAULT_LANGS, "has 2 weights for 3 languages"),
        ("1:1:1", None, "needs --langs"),
        ("zh=1,2", None, "mix of"),
        ("zh=1,zh=2", None, "names zh twice"),
        ("zh=x", None, "'x' is not a number"),
        ("zh=-1", None, "weights must be >= 0"),
        ("0:0:0", DEFAULT_LANGS, "every weight is 0"),
    ]:
        with pytest.raises(UserError, match=message):
            parse_lang_ratio(text, langs)
