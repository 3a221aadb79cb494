import pytest

from in2x_cli.errors import InputError
from in2x_cli.records import (
    ChatRow,
    InstructionRow,
    ScoredRow,
    TranslationRow,
    row_conversation,
    row_prompt,
    row_text,
)


def test_translation_row_aliases_round_trip():
    rec = TranslationRow.from_dict({"doc_id": "d1", "src_text": "a\n\nb", "src_lang": "en", "tgt_lang": "ja_JP"}, "f:1")
    assert rec.src == "a\n\nb" and rec.doc_id == "d1"
    assert rec.to_dict() == {"doc_id": "d1", "src_text": "a\n\nb", "src_lang": "en", "tgt_lang": "ja_JP"}


def test_wrong_type_names_field_and_place():
    with pytest.raises(InputError, match=r"^f:7: field 'ref' must be a string, got int$"):
        TranslationRow.from_dict({"src": "a", "ref": 3}, "f:7")


def test_bool_is_not_an_int_and_nan_is_not_a_number():
    with pytest.raises(InputError, match="cluster"):
        InstructionRow.from_dict({"instruction": "x", "cluster": True}, "f:1")
    with pytest.raises(InputError, match="scores"):
        ScoredRow.from_dict({"src": "a", "scores": {"bleu": float("nan")}}, "f:1")


def test_instruction_from_first_user_message_is_not_written_back():
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    rec = InstructionRow.from_dict({"messages": msgs, "lang": "en"}, "f:1")
    assert rec.instruction == "q"
    assert rec.to_dict() == {"messages": msgs, "lang": "en"}


@pytest.mark.parametrize(
    "messages, fragment",
    [
        ([], "non-empty list"),
        ([{"role": "user"}], "messages[0]"),
        ([{"role": "robot", "content": "x"}], "unknown role 'robot'"),
        ("hello", "must be a list"),
    ],
)
def test_chat_row_validates_messages(messages, fragment):
    with pytest.raises(InputError, match=fragment.replace("[", r"\[")):
        ChatRow.from_dict({"messages": messages}, "f:1")


def test_null_counts_as_missing():
    with pytest.raises(InputError, match="missing required field 'src'"):
        TranslationRow.from_dict({"src": None}, "f:1")


def test_row_conversation_accepts_each_stages_fields():
    """One parser, the stages' accepted fields as arguments (sft defaults; merge calibration lenient)."""
    msgs = [{"role": "user", "content": "q", "name": "u1"}, {"role": "assistant", "content": "a"}]
    assert row_conversation({"messages": msgs}, "f:1") == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    alpaca = {"prompt": "Fix:", "input": "teh cat", "output": "the cat"}
    assert row_conversation(alpaca, "f:1") == [{"role": "user", "content": "Fix:\n\nteh cat"}, {"role": "assistant", "content": "the cat"}]
    calibration = {"responses": ("response",), "lenient": True, "with_input": False}
    assert row_conversation(alpaca, "f:1", **calibration) is None  # 'output' is no calibration reply
    assert row_conversation({**alpaca, "response": "the cat"}, "f:1", **calibration)[0]["content"] == "Fix:"
    odd = {"instruction": 3, "query": "q", "response": "a"}
    assert row_conversation(odd, "f:1", **calibration)[0]["content"] == "q"  # non-strings passed over
    with pytest.raises(InputError, match="f:2: field 'instruction' must be a string, got int"):
        row_conversation(odd, "f:2")  # sft: the first field present decides
    assert row_conversation({"instruction": None, "query": "q", "response": "a"}, "f:1") is None
    assert row_conversation({"text": "t"}, "f:1") is None and row_prompt({"text": "t"}) is None


def test_row_text_order():
    assert row_text({"query": "q", "messages": [{"role": "user", "content": "u"}], "text": "t"}, None, "f:1") == "q"
    assert row_text({"prompt": 1, "messages": [{"role": "user", "content": "u"}]}, None, "f:1") == "u"
    assert row_text({"text": "t", "body": "b"}, "body", "f:1") == "b"
    with pytest.raises(InputError, match="f:3: field 'body' must be a string, got missing"):
        row_text({"text": "t"}, "body", "f:3")


# --------------------------------------------------------------------------- row ids (issue 16)


def test_row_id_uses_id_else_a_stable_content_hash() -> None:
    from in2x_cli.records import row_id

    assert row_id({"id": 7, "instruction": "x"}) == "id:7"
    assert row_id({"id": "7"}) != row_id({"id": 7})
    a = {"instruction": "Write a haiku.", "lang": "en"}
    # labels added by cluster / sample-difficulty / SFT sampling do not change the id
    labelled = dict(a, tag="Creative - Poetry", difficulty="simple", cluster=3, round=1, centroid_distance=0.2)
    assert row_id(a) == row_id(labelled) and row_id(a).startswith("sha256:") and len(row_id(a)) == 7 + 16
    assert row_id(a) != row_id({"instruction": "Write a limerick.", "lang": "en"})
    # the hash is fixed across processes and versions (a golden value)
    assert row_id({"instruction": "hello"}) == row_id({"instruction": "hello", "answer": "x"})
    import hashlib

    expected = hashlib.sha256(b'{"input":null,"instruction":"hello"}').hexdigest()[:16]
    assert row_id({"instruction": "hello"}) == "sha256:" + expected
    # messages, translation rows and text rows each hash their own content
    assert row_id({"messages": [{"role": "user", "content": "hi"}]}) != row_id({"text": "hi"})
    assert row_id({"src": "Hello", "tgt_lang": "ja"}) != row_id({"src": "Hello", "tgt_lang": "zh"})
