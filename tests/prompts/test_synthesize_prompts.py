"""The synthesize prompt set: every built-in template is valid, overrides are checked."""

from __future__ import annotations

import json

import pytest

from in2x_cli.errors import UserError
from in2x_cli.prompts import SYNTHESIZE_PROMPTS, synthesize_prompts
from in2x_cli.prompts.base import Prompt


def test_builtin_prompts_are_valid_and_documented():
    for name, prompt in SYNTHESIZE_PROMPTS.items():
        assert prompt.name == name and len(prompt.purpose) > 20
        prompt.check()


def test_render_substitutes_only_known_placeholders():
    p = Prompt(
        "p",
        "test prompt for rendering",
        'Say {language}. JSON: {"verdict": "keep"} {other}',
        fields=("language",),
    )
    with pytest.raises(UserError, match=r"unknown placeholder\(s\) \{other\}"):
        p.check()
    p = Prompt(
        "p",
        "test prompt for rendering",
        'Say {language}. JSON: {"verdict": "{language}"}',
        fields=("language",),
    )
    p.check()
    assert p.render(language="日本語") == 'Say 日本語. JSON: {"verdict": "日本語"}'
    # A value containing braces is inserted as is (never re-expanded).
    assert p.render(language="{language}") == 'Say {language}. JSON: {"verdict": "{language}"}'


def test_judge_prompts_render_with_fenced_text():
    prompts = synthesize_prompts()
    text = prompts.render(
        "critic_judge",
        instruction="<<<INSTRUCTION>>>\nx\n<<<END INSTRUCTION>>>",
        reference_answer="A",
        response="R",
        rules_to_check="",
    )
    assert "<<<INSTRUCTION>>>" in text and '"contradiction": true or false' in text


def test_prompt_file_yaml_and_json(tmp_path):
    y = tmp_path / "p.yaml"
    y.write_text("answer_system: |\n  Reply in {language}, briefly.{rules}\n", encoding="utf-8")
    assert (
        synthesize_prompts(y)
        .render("answer_system", language="Japanese", native_language="日本語", rules="")
        .strip()
        == "Reply in Japanese, briefly."
    )
    j = tmp_path / "p.json"
    j.write_text(json.dumps({"json_retry": "Bad: {error}. JSON only."}), encoding="utf-8")
    prompts = synthesize_prompts(j)
    assert prompts.render("json_retry", error="x") == "Bad: x. JSON only."
    assert prompts.digest() != synthesize_prompts().digest()


@pytest.mark.parametrize(
    "content, message",
    [
        ("nope: text\n", "unknown prompt 'nope'"),
        ("reread: 'Review {instruction} in {lang}'\n", r"unknown placeholder\(s\) \{lang\}"),
        ("critic_judge: 'Judge {instruction}'\n", r"must contain \{reference_answer\}"),
        ("reread: [1, 2]\n", "must be a string template"),
        ("- a\n- b\n", "expected a mapping"),
        ("reread: 'x\n  bad: [\n", "invalid YAML"),
    ],
)
def test_prompt_file_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "prompts.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message) as info:
        synthesize_prompts(path)
    assert str(path) in str(info.value)
