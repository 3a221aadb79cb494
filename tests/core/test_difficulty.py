"""Judge verdict validation, pass@k cut-offs, grading keys, and the answer matcher."""

import json

import pytest

from in2x_cli.core.answers import answers_match, extract_final_answer, normalize_answer
from in2x_cli.core.difficulty import (
    grade_key,
    level_from_solve_rate,
    parse_verdict,
)
from in2x_cli.core.judging import VerdictError

GOOD = {"tag_l1": "Mathematics", "tag_l2": "Quadratic Equations", "difficulty": "hard", "reason": "Needs factoring."}


def test_parse_verdict_accepts_json_in_prose_and_fences():
    v = parse_verdict(json.dumps(GOOD))
    assert (v.tag, v.difficulty, v.reason) == ("Mathematics - Quadratic Equations", "hard", "Needs factoring.")
    fenced = "Sure!\n```json\n" + json.dumps({**GOOD, "difficulty": "Very Difficult"}) + "\n```\nHope this helps."
    assert parse_verdict(fenced).difficulty == "very_hard"
    assert parse_verdict("Verdict: {not json} " + json.dumps({**GOOD, "difficulty": 1})).difficulty == "very_easy"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("no braces at all", "no JSON object"),
        ("{'tag_l1': 'x'}", "no JSON object"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "reason"}), "missing key(s) reason"),
        (json.dumps({**GOOD, "difficulty": "extreme"}), "difficulty 'extreme' is not one of"),
        (json.dumps({**GOOD, "tag_l1": ""}), "tag_l1 must be a non-empty string"),
        (json.dumps({**GOOD, "tag_l2": "x" * 81}), "longer than 80"),
        (json.dumps({**GOOD, "reason": 3}), "reason must be a string"),
    ],
)
def test_parse_verdict_rejects(reply, error):
    with pytest.raises(VerdictError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse_verdict(reply)


def test_solve_rate_cutoffs_for_k16():
    levels = [level_from_solve_rate(c / 16) for c in range(17)]
    assert levels == ["very_hard"] * 4 + ["hard"] * 3 + ["medium"] * 3 + ["easy"] * 3 + ["very_easy"] * 4
    assert level_from_solve_rate(0.5, (0.1, 0.2, 0.3, 0.4)) == "very_easy"
    with pytest.raises(ValueError):
        level_from_solve_rate(0.5, (0.4, 0.2, 0.6, 0.8))


def test_grade_key_depends_on_method_text_and_answer():
    assert grade_key("judge", "a") == grade_key("judge", "a")
    assert len({grade_key("judge", "a"), grade_key("judge", "b"), grade_key("pass@k", "a", 1), grade_key("pass@k", "a", 2)}) == 4


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("So 17 × 24 = 408. \\boxed{408}", "408"),
        ("\\boxed{\\frac{1}{2}} and later \\boxed{\\dfrac{3}{4}}", "\\dfrac{3}{4}"),
        ("\\boxed{\\text{Paris}}", "\\text{Paris}"),
        ("The final answer is 1,000.", "1,000"),
        ("答案是 ３６。", "３６"),
        ("Answer: x = 5\nbecause...", "x = 5"),
        ("we get 3 then 7 and finally -12.5", "-12.5"),
        ("no numbers here", None),
        ("", None),
    ],
)
def test_extract_final_answer(text, answer):
    assert extract_final_answer(text) == answer


@pytest.mark.parametrize(
    ("pred", "gold", "same"),
    [
        ("\\frac{1}{2}", "0.5", True),
        ("1,000", "1000", True),
        ("３６", "36", True),
        ("$408$", 408, True),
        ("Paris", "paris", True),
        ("\\dfrac{3}{4}", "3/4", True),
        ("15\\%", "15", True),
        ("x = 5", "5", True),
        ("0.3333333", "1/3", True),  # within 1e-6 relative
        ("0.333", "1/3", False),
        ("2", "3", False),
        (None, "3", False),
        ("", "3", False),
        ("Lyon", "Paris", False),
    ],
)
def test_answers_match(pred, gold, same):
    assert answers_match(pred, gold) is same


def test_normalize_answer():
    assert normalize_answer("  \\left( 3 \\right) ") == "3"
    assert normalize_answer("90^\\circ") == "90"
