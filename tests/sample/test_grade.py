"""Grading in batches (sample/grade.py): the judge retried once, pass@k, lazy backends."""

import json

from in2x_cli.backends import SamplingParams
from in2x_cli.core.difficulty import Request, grade_key
from in2x_cli.sample.grade import grade_stream, judge_batch, solve_batch
from tests.fakes import CALLS, SCRIPTS, ScriptedBackend

GOOD = {"tag_l1": "Mathematics", "tag_l2": "Quadratic Equations", "difficulty": "hard", "reason": "Needs factoring."}


def _script(name, fn):
    SCRIPTS[name] = fn
    CALLS.pop(name, None)
    return ScriptedBackend(name)


def test_judge_retries_once_then_reports():
    def fn(prompt, j):
        if "LATE" in prompt:  # valid only on the retry (the retry prompt quotes the error)
            return json.dumps(GOOD) if "not usable" in prompt else "I think it is hard."
        if "NEVER" in prompt:
            return '{"difficulty": "hard"}'
        return json.dumps({**GOOD, "difficulty": "easy"})

    backend = _script("judge-unit", fn)
    reqs = [Request(grade_key("judge", t), t) for t in ("ok prompt", "LATE prompt", "NEVER prompt")]
    recs = judge_batch(backend, reqs, SamplingParams(max_tokens=64))
    assert [r["valid"] for r in recs] == [True, True, False]
    assert [r["attempts"] for r in recs] == [1, 2, 2]
    assert recs[0]["difficulty"] == "easy" and recs[1]["difficulty"] == "hard"
    assert recs[2]["error"] == "missing key(s) tag_l1, tag_l2, reason" and recs[2]["raw"] == '{"difficulty": "hard"}'
    assert len(CALLS["judge-unit"]) == 5  # 3 first attempts + 2 retries
    retry_prompt = CALLS["judge-unit"][3]
    assert "I think it is hard." in retry_prompt and "no JSON object found" in retry_prompt


def test_pass_at_k_counts_matching_answers():
    backend = _script("solver-unit", lambda p, j: f"work... \\boxed{{{408 if j < 7 else 400}}}")
    recs = solve_batch(backend, [Request("k1", "What is 17 × 24?", "pass@k", "408")], SamplingParams(n=16, temperature=0.7))
    assert recs[0]["correct"] == 7 and recs[0]["solve_rate"] == 7 / 16 and recs[0]["difficulty"] == "medium"
    assert "\\boxed" in CALLS["solver-unit"][0]  # the solve prompt asks for a boxed answer


def test_grade_stream_batches_per_method_and_loads_lazily():
    loaded = []

    def load(name, fn):
        def make():
            loaded.append(name)
            return _script(name, fn)

        return make

    sink = []
    reqs = [Request(f"j{i}", f"judge me {i}") for i in range(5)] + [Request("s0", "2+2?", "pass@k", "4")]
    grade_stream(
        reqs,
        backends={"judge": load("gs-judge", lambda p, j: json.dumps(GOOD)), "pass@k": load("gs-solve", lambda p, j: "\\boxed{4}")},
        params={"judge": SamplingParams(), "pass@k": SamplingParams(n=4, temperature=0.5)},
        batch_size=2,
        sink=lambda recs: sink.append([r["key"] for r in recs]),
    )
    assert sink == [["j0", "j1"], ["j2", "j3"], ["j4"], ["s0"]]
    assert loaded == ["gs-judge", "gs-solve"]
