"""GEMBA-ESA (core/gemba.py): prompts, reply parsing on scripted judge replies (well-formed and
malformed), and the two-step driver with its retry ladder."""

from __future__ import annotations

import pytest

from in2x_cli.core.gemba import (
    ErrorSpan,
    EsaItem,
    format_spans,
    judge_esa,
    parse_score,
    parse_spans,
    retry_temperatures,
    score_messages,
    span_messages,
)
from in2x_cli.core.judging import VerdictError

HYP = "Ich entschuldige mich, dies mit dir involvement."


# --------------------------------------------------------------------------- step 1: spans


def test_gemba_format_with_both_severities() -> None:
    reply = 'Major:\naccuracy/mistranslation - "involvement"\nMinor:\nfluency/register - "dir"\n'
    spans = parse_spans(reply, HYP)
    assert spans == (
        ErrorSpan("major", "accuracy/mistranslation", "involvement", HYP.index("involvement")),
        ErrorSpan("minor", "fluency/register", "dir", 32),
    )
    assert HYP[32:35] == "dir"


def test_no_error_replies_are_zero_spans() -> None:
    assert parse_spans("no-error") == ()
    assert parse_spans("Major:\nno-error\nMinor:\nno-error\n") == ()
    assert parse_spans("Major:\nMinor:\n") == ()


def test_prose_before_the_annotation_is_ignored_and_a_span_not_in_the_hyp_has_no_offset() -> None:
    reply = 'Here is my analysis of the translation.\nAnswer:\nMajor:\naccuracy/omission - "the account holder"\n'
    assert parse_spans(reply, HYP) == (ErrorSpan("major", "accuracy/omission", "the account holder", None),)


def test_json_annotation_is_read_through_core_judging() -> None:
    reply = 'Sure.\n```json\n{"errors": [{"severity": "Minor", "category": "style/awkward", "span": "dir"}]}\n```'
    assert parse_spans(reply, HYP) == (ErrorSpan("minor", "style/awkward", "dir", 32),)


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("", "empty reply"),
        ("The translation looks fine to me overall.", "no Major:/Minor:"),
        ('Critical:\naccuracy/omission - "x"', "'Critical' is not major or minor"),
        ('Major:\naccuracy/omission - "x"\nCritical:\nother - "y"', "'Critical' is not major or minor"),
        ('Major:\naccuracy/omission - "x"\nI also think the tone is off.', "unreadable line"),
        ('Major:\naccuracy/omission "x"', "unreadable line"),
        ('{"errors": [{"severity": "critical", "category": "other", "span": "x"}]}', "'critical' is not major or minor"),
        ('{"errors": [{"severity": "major", "span": "x"}]}', "without a category"),
        ('{"errors": "none"}', "not a list"),
        ('{"errors": []} {"errors": []}', "2 verdict objects"),
    ],
)
def test_malformed_annotations_are_invalid(reply: str, why: str) -> None:
    with pytest.raises(VerdictError, match=why):
        parse_spans(reply, HYP)


def test_format_spans_round_trips() -> None:
    spans = (ErrorSpan("minor", "fluency/grammar", "wäre"), ErrorSpan("major", "accuracy/addition", "ve Vídni"))
    text = format_spans(spans)
    assert text == 'Major:\naccuracy/addition - "ve Vídni"\nMinor:\nfluency/grammar - "wäre"'
    assert {(s.severity, s.span) for s in parse_spans(text)} == {(s.severity, s.span) for s in spans}
    assert format_spans(()) == "no-error"


# --------------------------------------------------------------------------- step 2: score


@pytest.mark.parametrize(
    ("reply", "score"),
    [("85", 85.0), (" 72.5\n", 72.5), ("Score (0-100): 40", 40.0), ("I would give it 66.", 66.0), ("90/100", 90.0),
     ('{"score": 33}', 33.0), ("0", 0.0), ("100", 100.0)],
)
def test_valid_scores(reply: str, score: float) -> None:
    assert parse_score(reply) == score


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("", "empty"),
        ("The translation is good.", "0 numbers"),
        ("Between 60 and 70.", "2 numbers"),
        ("150", "outside 0-100"),
        ("-5", "outside 0-100"),
        ('{"score": "high"}', "not a number"),
        ('{"score": true}', "not a number"),
        ('{"score": 101}', "outside 0-100"),
    ],
)
def test_invalid_scores(reply: str, why: str) -> None:
    with pytest.raises(VerdictError, match=why):
        parse_score(reply)


# --------------------------------------------------------------------------- prompts


def test_span_prompt_is_the_few_shot_conversation_and_text_cannot_break_out() -> None:
    msgs = span_messages("Hello ```world```", "Hallo", "English", "German")
    assert [m["role"] for m in msgs] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert msgs[2]["content"].startswith("Major:\naccuracy/mistranslation")
    last = msgs[-1]["content"]
    assert last.startswith("English source:\n```Hello `` `world`` ````\nGerman translation:\n```Hallo```")
    assert "major or minor" in last


def test_score_prompt_holds_the_anchors_and_the_spans() -> None:
    (msg,) = score_messages("src", "hyp", "English", "Japanese", (ErrorSpan("major", "accuracy/omission", "x"),))
    text = msg["content"]
    for anchor in ('0="No meaning preserved"', '33="Some meaning preserved"', '66="Most meaning preserved and few grammar mistakes"', '100="Perfect meaning'):
        assert anchor in text
    assert 'Annotated error spans:\n```Major:\naccuracy/omission - "x"```\nScore (0-100): ' in text


# --------------------------------------------------------------------------- driver


def test_judge_esa_retries_hotter_and_never_guesses() -> None:
    items = [EsaItem("a", "A", "English", "German"), EsaItem("b", "B", "English", "German"), EsaItem("c", "C", "English", "German")]
    calls: list[tuple[int, float]] = []
    # per segment, per step: the replies at temperatures 0, 0.5, 1.0
    span_replies = {"A": ['Minor:\nstyle/awkward - "A"'], "B": ["blah", 'Major:\nother - "B"'], "C": ["no-error"]}
    score_replies = {"A": ["90"], "B": ["70"], "C": ["great", "very good", "excellent"]}

    def generate(conversations, temperature):
        calls.append((len(conversations), temperature))
        out = []
        for conv in conversations:
            text = conv[-1]["content"]
            hyp = text.split("translation:\n```", 1)[1][0]
            table, step = (score_replies, "score") if "Score (0-100)" in text else (span_replies, "spans")
            out.append(table[hyp][[0.0, 0.5, 1.0].index(temperature)])
        return out

    a, b, c = judge_esa(items, generate, retry_temperatures(2))
    assert (a.score, a.attempts) == (90.0, {"spans": 1, "score": 1})
    assert a.spans == (ErrorSpan("minor", "style/awkward", "A", 0),)
    assert (b.score, b.attempts) == (70.0, {"spans": 2, "score": 1})
    assert c.score is None and c.spans == () and c.attempts == {"spans": 1, "score": 3}
    assert c.error == "score: 0 numbers in the reply (expected exactly one score)"
    # step 1: 3 segments at 0.0, 1 retry at 0.5; step 2: 3 at 0.0, C at 0.5 and 1.0
    assert calls == [(3, 0.0), (1, 0.5), (3, 0.0), (1, 0.5), (1, 1.0)]


def test_retry_temperatures() -> None:
    assert retry_temperatures(0) == (0.0,)
    assert retry_temperatures(2) == (0.0, 0.5, 1.0)
    with pytest.raises(ValueError):
        retry_temperatures(-1)
