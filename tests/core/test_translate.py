"""Pure translation helpers: prompts, cleaning rules (one test per rule), alignment, splitting."""

import pytest

from in2x_cli.core import translate as T

SRC = "The cat sat."


# ---------------------------------------------------------------------------------- prompts


def test_builtin_templates_are_in_the_target_language_and_ask_for_structure():
    ja = T.render_prompt(T.select_template(T.TEMPLATES, "en", "ja"), "A\n\nB", "en", "ja", paragraphs=2)
    assert ja.startswith("以下の英語の文章を自然な日本語に翻訳してください。")
    assert "2段落" in ja and ja.endswith("\n\nA\n\nB")
    zh = T.render_prompt(T.select_template(T.TEMPLATES, "ja", "zh"), "猫", "ja", "zh")
    assert zh.startswith("请将以下日语文本翻译成") and "段" not in zh.split("\n\n")[0].replace("只输出译文", "")
    other = T.render_prompt(T.select_template(T.TEMPLATES, "de", "fr"), "Hallo", "de", "fr")
    assert other.startswith("Translate the following German text into French")


def test_template_lookup_order_and_one_pass_substitution():
    templates = {"*": "any {src}", "ja": "ja {src}", "en-ja": "en-ja {src_name}->{tgt_name} {{literal}} {src}"}
    assert T.select_template(templates, "en", "ja").startswith("en-ja")
    assert T.select_template(templates, "zh", "ja") == "ja {src}"
    assert T.select_template(templates, "ja", "en") == "any {src}"
    # a source containing a placeholder is not re-expanded; unknown braces are left alone
    out = T.render_prompt(templates["en-ja"], "x {tgt_name} y", "en", "ja")
    assert out == "en-ja 英語->日本語 {{literal}} x {tgt_name} y"
    assert T.validate_template("no source here") is not None and T.validate_template("{src}") is None
    with pytest.raises(KeyError):
        T.select_template({"ja": "{src}"}, "en", "zh")


def test_build_messages_with_and_without_system():
    assert T.build_messages("hi") == [{"role": "user", "content": "hi"}]
    assert T.build_messages("hi", "be brief")[0] == {"role": "system", "content": "be brief"}


# ---------------------------------------------------------------------------------- cleaning


@pytest.mark.parametrize(
    "raw, src, expected, rule",
    [
        ("<think>The user wants Japanese.</think>\n猫が座った。", SRC, "猫が座った。", "think"),
        ("reasoning that lost its opening tag</think>猫が座った。", SRC, "猫が座った。", "think"),
        ("Here is the translation:\n\n猫が座った。", SRC, "猫が座った。", "preamble"),
        ("Sure! Here's the Japanese translation of the text:\n猫が座った。", SRC, "猫が座った。", "preamble"),
        ("以下が翻訳です：\n猫が座った。", SRC, "猫が座った。", "preamble"),
        ("翻译如下：\n猫坐下了。", "猫が座った。", "猫坐下了。", "preamble"),
        ("```\n猫が座った。\n```", SRC, "猫が座った。", "fence"),
        ("```text\n猫が座った。\n\n犬も。\n```", SRC, "猫が座った。\n\n犬も。", "fence"),
        ("Japanese: 猫が座った。", SRC, "猫が座った。", "label"),
        ("日本語：猫が座った。", SRC, "猫が座った。", "label"),
        ("译文：猫坐下了。", "猫が座った。", "猫坐下了。", "label"),
        ("「猫が座った。」", SRC, "猫が座った。", "quotes"),
        ('"The cat sat."', "猫が座った。", "The cat sat.", "quotes"),
        ("“猫坐下了。”", "猫が座った。", "猫坐下了。", "quotes"),
        ("猫が座った。\n\nNote: I kept the past tense.", SRC, "猫が座った。", "note"),
        ("猫坐下了。\n\n（注：保留了过去时。）", "猫が座った。", "猫坐下了。", "note"),
    ],
)
def test_each_cleaning_rule(raw, src, expected, rule):
    text, fired = T.clean_output_rules(raw, src)
    assert text == expected
    assert rule in fired


@pytest.mark.parametrize(
    "raw, src",
    [
        ("Here is what happened:\nthe cat sat.", "Voici ce qui s'est passé :\nle chat s'est assis."),  # no 'translation' word
        ("Translation: a word.", "Translation: a word."),  # the source has the label too
        ('"The cat sat."', '"猫が座った。"'),  # quoted source keeps its quotes
        ('"a" and "b"', "「a」と「b」"),  # not one enclosing pair
        ("Text.\n\nNote: keep this.", "Texte.\n\nNote : à garder."),  # the source has a note paragraph
        ("```\ncode\n```", "```\ncode\n```"),  # fenced source
    ],
)
def test_rules_are_source_aware(raw, src):
    text, fired = T.clean_output_rules(raw, src)
    assert text == raw.strip() and fired == []


def test_nested_wrappers_and_whitespace():
    raw = "Sure! Here's the translation:\n```\n「猫が座った。」\n```\n"
    assert T.clean_output(raw, SRC) == "猫が座った。"
    assert T.clean_output("A.  \r\n\r\n\r\n\r\nB.\n", "x") == "A.\n\nB."


# ---------------------------------------------------------------------------------- alignment


def test_alignment_by_blank_lines_then_by_lines():
    src = ["One.", "Two.", "Three."]
    assert T.align_paragraphs("一。\n\n二。\n \n三。", src) == ["一。", "二。", "三。"]
    assert T.align_paragraphs("一。\n二。\n三。", src) == ["一。", "二。", "三。"]  # single newlines
    assert T.align_paragraphs("一。二。\n\n三。", src) is None
    # a source paragraph with an inner line break: single newlines are not paragraph breaks
    assert T.align_paragraphs("一\n二\n三", ["One\nline", "Two", "Three"]) is None
    assert T.as_single_paragraph("a\n\nb\n") == "a\nb"


# ---------------------------------------------------------------------------------- sentences


def test_sentence_splitting():
    en = 'Mr. Smith went to Washington. He said "Hi!" Then he left. 3 days later, e.g. Monday.'
    assert T.split_sentences(en, "en") == ["Mr. Smith went to Washington.", 'He said "Hi!"', "Then he left.", "3 days later, e.g. Monday."]
    assert T.split_sentences("猫が座った。「こんにちは！」と言った。それから去った", "ja") == ["猫が座った。", "「こんにちは！」と言った。", "それから去った"]
    assert T.split_sentences("真的吗？是的！！", "zh") == ["真的吗？", "是的！！"]
    assert T.sentence_joiner("ja") == "" and T.sentence_joiner("en") == " "


# ---------------------------------------------------------------------------------- context


def test_context_budget_arithmetic():
    auto = T.ContextBudget(context=1000, overhead=100)
    # prompt 100 + s + (2s + 64) <= 1000  →  s <= 278
    assert auto.source_budget() == 278
    assert auto.output_tokens(278) == 620 and 100 + 278 + 620 <= 1000
    fixed = T.ContextBudget(context=1000, overhead=100, max_tokens=300)
    assert fixed.source_budget() == 600 and fixed.output_tokens(5) == 300


def test_plan_chunks_fewest_then_balanced():
    assert T.plan_chunks([], 10) == []
    assert T.plan_chunks([10] * 5, 100) == [(0, 5)]
    # greedy at 35 would give 3+2 paragraphs (34 and 22 tokens with 2-token breaks): already minimal
    assert T.plan_chunks([10] * 5, 35) == [(0, 3), (3, 5)]
    # greedy at 40 packs [30, 5] + [5, 5]; balancing moves the small ones together: [30] + [5, 5, 5]
    assert T.plan_chunks([30, 5, 5, 5], 40) == [(0, 1), (1, 4)]
    # greedy at 50 packs four paragraphs (46 tokens) + two; balanced: three + three (34 each)
    assert T.plan_chunks([10] * 6, 50) == [(0, 3), (3, 6)]
    # an oversized paragraph stands alone
    assert T.plan_chunks([50, 5, 5], 20) == [(0, 1), (1, 3)]
