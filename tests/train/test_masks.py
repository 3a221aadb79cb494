"""Assistant-only label masks, token by token, for a template with {% generation %} markers (the tiny
model's) and for the real Qwen2.5 template (no markers: TRL's training twin, and our render mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from in2x_cli.errors import UserError
from in2x_cli.train.data import IGNORE_INDEX, ChatFormatter, chat_messages, make_chat_formatter

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Translate: good morning"},
    {"role": "assistant", "content": "おはようございます。"},
    {"role": "user", "content": "And in Chinese?"},
    {"role": "assistant", "content": "早上好。"},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model))


def qwen25_template() -> str:
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text(encoding="utf-8")


def expected(tokenizer, segments: list[tuple[str, bool]]) -> tuple[list[int], list[int]]:
    """Token ids and the expected label row, built segment by segment (byte-level BPE never merges
    across these boundaries: each starts at a special token or a newline)."""
    ids: list[int] = []
    labels: list[int] = []
    for text, trained in segments:
        seg = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += seg
        labels += seg if trained else [IGNORE_INDEX] * len(seg)
    return ids, labels


def assert_token_by_token(got: dict[str, list[int]], want: tuple[list[int], list[int]], tokenizer) -> None:
    ids, labels = want
    assert got["input_ids"] == ids
    for k, (tok, lab, exp) in enumerate(zip(got["input_ids"], got["labels"], labels, strict=True)):
        assert lab == exp, f"token {k} {tokenizer.decode([tok])!r}: label {lab}, expected {exp}"


def test_markers_template_masks_assistant_content_and_end_of_turn(tokenizer):
    fmt = make_chat_formatter(tokenizer)
    assert fmt.mode == "markers"
    want = expected(
        tokenizer,
        [
            ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nTranslate: good morning<|im_end|>\n<|im_start|>assistant\n", False),
            ("おはようございます。<|im_end|>", True),
            ("\n<|im_start|>user\nAnd in Chinese?<|im_end|>\n<|im_start|>assistant\n", False),
            ("早上好。<|im_end|>", True),
            ("\n", False),
        ],
    )
    assert_token_by_token(fmt.tokenize(CONVERSATION), want, tokenizer)
    # the render mode finds exactly the same tokens on this template
    render = ChatFormatter(tokenizer, "render", fmt.template, fmt.template, tokenizer.eos_token)
    assert render.tokenize(CONVERSATION) == fmt.tokenize(CONVERSATION)


def test_qwen25_template_without_markers(tokenizer):
    tok = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tok.chat_template = qwen25_template()
    auto = make_chat_formatter(tok)
    assert auto.mode == "trl" and auto.inference_template == tok.chat_template
    prefix_sys = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nTranslate: good morning<|im_end|>\n<|im_start|>assistant"
    # TRL's Qwen2.5 training template marks '\n' + content + '<|im_end|>\n' of each assistant turn
    want_trl = expected(
        tok,
        [
            (prefix_sys, False),
            ("\nおはようございます。<|im_end|>\n", True),
            ("<|im_start|>user\nAnd in Chinese?<|im_end|>\n<|im_start|>assistant", False),
            ("\n早上好。<|im_end|>\n", True),
        ],
    )
    assert_token_by_token(auto.tokenize(CONVERSATION), want_trl, tok)
    # our render mode on the same template: content + end-of-turn token, template newlines are context
    render = make_chat_formatter(tok, "render")
    assert render.mode == "render"
    want_render = expected(
        tok,
        [
            (prefix_sys + "\n", False),
            ("おはようございます。<|im_end|>", True),
            ("\n<|im_start|>user\nAnd in Chinese?<|im_end|>\n<|im_start|>assistant\n", False),
            ("早上好。<|im_end|>", True),
            ("\n", False),
        ],
    )
    assert_token_by_token(render.tokenize(CONVERSATION), want_render, tok)
    # Qwen2.5 adds its default system prompt when there is none: never trained on
    out = render.tokenize(CONVERSATION[1:3])
    text = tok.decode([t for t, lab in zip(out["input_ids"], out["labels"], strict=True) if lab != IGNORE_INDEX])
    assert text == "おはようございます。<|im_end|>"


def test_unknown_template_falls_back_to_render_and_rejects_non_prefix_templates(tokenizer):
    tok = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tok.chat_template = "{% for m in messages %}[{{ m['role'] }}]: {{ m['content'] }}<|im_end|>{% endfor %}"
    fmt = make_chat_formatter(tok)
    assert fmt.mode == "render"
    out = fmt.tokenize(CONVERSATION[1:3])
    trained = tok.decode([t for t, lab in zip(out["input_ids"], out["labels"], strict=True) if lab != IGNORE_INDEX])
    assert trained == "[assistant]: おはようございます。<|im_end|>"
    # a template that renders the last message differently is not prefix-preserving
    tok.chat_template = "{% for m in messages %}{% if loop.last %}LAST {% endif %}{{ m['content'] }}<|im_end|>{% endfor %}"
    with pytest.raises(UserError, match="prefix-preserving"):
        make_chat_formatter(tok).tokenize(CONVERSATION[1:5], "d.jsonl:4")
    with pytest.raises(UserError, match="markers"):
        make_chat_formatter(tok, "markers")


def test_chat_messages_accepts_instruction_rows_and_requires_an_assistant_turn():
    assert chat_messages({"instruction": "Hi", "response": "Hello"}, "f:1") == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    with pytest.raises(UserError, match="f:2: 'messages' has no assistant turn"):
        chat_messages({"messages": [{"role": "user", "content": "x"}]}, "f:2")
    with pytest.raises(UserError, match="f:3: messages\\[0\\] must be an object"):
        chat_messages({"messages": ["x"]}, "f:3")
