"""``in2x sample-difficulty`` end to end: quotas, rounds, shortfall report, grading and resume."""

import json
from collections import Counter

import pytest

from in2x_cli.tiny import corpus_dir
from tests.fakes import CALLS, SCRIPTS
from tests.util import assert_user_error, invoke, write_jsonl

INSTRUCTIONS = corpus_dir() / "instructions.jsonl"
SCRIPTED = ["--backend", "tests.fakes:ScriptedBackend"]


def _strata(rows):
    return Counter((r["lang"], r["difficulty"]) for r in rows)


def test_sample_follows_the_ratio_and_is_deterministic(tmp_path):
    report = tmp_path / "r.json"
    args = ["sample-difficulty", str(INSTRUCTIONS), "--total", "30", "--report", str(report), "--seed", "1"]
    res = invoke(args)
    assert res.code == 0, res.stderr
    rows = res.rows()
    expected = {(lang, lv): n for lang in ("zh", "en", "ja") for lv, n in (("very_hard", 3), ("hard", 3), ("medium", 3), ("easy", 1))}
    assert _strata(rows) == expected
    assert all(r["round"] == 0 for r in rows)
    assert invoke(args).stdout == res.stdout
    assert invoke([*args[:-2], "--seed", "2"]).stdout != res.stdout
    rep = json.loads(report.read_text())
    assert rep["selected_per_round"] == 30 and rep["achieved_level_shares"] == {"very_hard": 0.3, "hard": 0.3, "medium": 0.3, "easy": 0.1, "very_easy": 0.0}
    assert rep["rounding"].startswith("largest remainder") and rep["notes"] == []
    # round-robin over tags: the 3 medium en rows come from 3 different tags
    assert len({r["tag"] for r in rows if (r["lang"], r["difficulty"]) == ("en", "medium")}) == 3


def test_rounds_disjoint_and_shortfall_reported(tmp_path):
    res = invoke(["sample-difficulty", str(INSTRUCTIONS), "--total", "12", "--rounds", "2"])
    assert res.code == 0, res.stderr
    rows = res.rows()
    by_round = [[r["id"] for r in rows if r["round"] == k] for k in (0, 1)]
    assert len(by_round[0]) == len(by_round[1]) == 12 and not set(by_round[0]) & set(by_round[1])
    # 150 per round: very_hard/hard strata run short (zh has 6 very_hard rows; quota 15)
    out = tmp_path / "o.jsonl"
    res = invoke(["sample-difficulty", str(INSTRUCTIONS), "-n", "150", "--lang-ratio", "zh=1,en=1,ja=1", "-o", str(out), "-v"])
    assert res.code == 0
    assert "stratum zh/very_hard: quota 15, only 6 rows (shortfall 9; rule: redistribute)" in res.stderr
    rep = json.loads(res.stderr[res.stderr.index("{"):res.stderr.rindex("}") + 1])  # the report on stderr
    zh_vh = next(s for s in rep["strata"] if (s["lang"], s["difficulty"]) == ("zh", "very_hard"))
    assert (zh_vh["quota"], zh_vh["available"], zh_vh["shortfall"], zh_vh["selected_per_round"]) == (15, 6, 9, 6)
    assert rep["selected_per_round"] == 150 and "rows moved to other levels of zh" in rep["notes"][0]
    assert sum(1 for _ in out.open()) == 150
    assert json.loads((tmp_path / "o.jsonl.meta.json").read_text())["report"]["selected_per_round"] == 150
    res = invoke(["sample-difficulty", str(INSTRUCTIONS), "-n", "150", "--shortfall", "none"])
    assert len(res.rows()) == (6 + 7 + 7) + 3 * 9 + 3 * 15 + 3 * 5  # short strata keep what they hold
    assert res.code == 0


def test_lang_ratio_bare_weights_mean_zh_en_ja(tmp_path):
    named = invoke(["sample-difficulty", str(INSTRUCTIONS), "-n", "30", "--lang-ratio", "zh=2,en=1,ja=1"])
    bare = invoke(["sample-difficulty", str(INSTRUCTIONS), "-n", "30", "--lang-ratio", "2:1:1"])
    assert named.code == bare.code == 0 and bare.rows() == named.rows()
    # strata zh/en/ja × 3:3:3:1:0 of 30: exact 4.5/2.25/2.25 per hard level, 1.5/.75/.75 easy; floors
    # sum to 25, the 5 left go to en/easy, ja/easy (.75), then zh very_hard, hard, medium (.5)
    assert Counter(r["lang"] for r in bare.rows()) == {"zh": 16, "en": 7, "ja": 7}
    assert_user_error(invoke(["sample-difficulty", str(INSTRUCTIONS), "-n", "3", "--lang-ratio", "1:1"]), "has 2 weights for 3 languages (zh,en,ja)")


def _judge(prompt, j):
    text = prompt.split("<<<\n", 1)[1].split("\n>>>", 1)[0] if "<<<" in prompt else ""
    if "GARBAGE" in text:
        return "I refuse to answer in JSON."
    if "LATE" in text and "not usable" not in prompt:
        return "hmm"
    level = "very_hard" if "hard" in text else "medium"
    return json.dumps({"tag_l1": "Mathematics", "tag_l2": "Algebra", "difficulty": level, "reason": "test"})


def _pool(tmp_path, n=12):
    rows = [{"id": f"r{i}", "lang": "en", "instruction": f"question {i}" + (" hard" if i % 2 else "")} for i in range(n)]
    rows[3]["instruction"] = "GARBAGE question"
    rows[4]["instruction"] = "LATE question hard"
    rows.append({"id": "given", "lang": "ja", "instruction": "既に", "difficulty": "Moderate"})
    return write_jsonl(tmp_path / "pool.jsonl", rows)


def test_judge_grading_retry_rejects_and_tags(tmp_path):
    SCRIPTS["judge-e2e"] = _judge
    CALLS.pop("judge-e2e", None)
    src = _pool(tmp_path)
    out, rejects, report = tmp_path / "o.jsonl", tmp_path / "rej.jsonl", tmp_path / "rep.json"
    res = invoke(["sample-difficulty", str(src), "--grade-only", "--judge-model", "judge-e2e", *SCRIPTED, "-o", str(out),
                  "--rejects", str(rejects), "--report", str(report), "--batch-size", "5"])
    assert res.code == 0, res.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 12 and "r3" not in {r["id"] for r in rows}  # 13 rows, one ungradable
    by_id = {r["id"]: r for r in rows}
    assert by_id["r1"]["difficulty"] == "very_hard" and by_id["r2"]["difficulty"] == "medium"
    assert by_id["r4"]["difficulty"] == "very_hard"  # valid on the retry
    assert by_id["r2"]["tag"] == "Mathematics - Algebra" and "round" not in by_id["r2"]
    assert by_id["given"]["difficulty"] == "medium" and "tag" not in by_id["given"]  # not graded
    rej = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [r["id"] for r in rej] == ["r3"] and rej[0]["grade_error"] == "no JSON object found"
    rep = json.loads(report.read_text())
    assert rep["grading"]["invalid"] == 1 and rep["grading"]["retried"] == 2 and rep["grading"]["judge"] == 12
    assert rep["grading"]["invalid_rows"] == [{"where": f"{src}:4", "error": "no JSON object found"}]
    assert "1 prompts could not be graded" in res.stderr
    grades = [json.loads(x) for x in (tmp_path / "o.jsonl.grades.jsonl").read_text().splitlines()]
    assert len(grades) == 12 and len(CALLS["judge-e2e"]) == 12 + 2  # first attempts + two retries


def test_grading_resumes_after_interruption_with_identical_output(tmp_path):
    src = _pool(tmp_path, n=20)
    base = ["sample-difficulty", str(src), "--total", "8", "--lang-ratio", "en=1", "--judge-model", "judge-r", *SCRIPTED, "--batch-size", "4"]
    SCRIPTS["judge-r"] = _judge
    ref = invoke([*base, "-o", str(tmp_path / "ref.jsonl")])
    assert ref.code == 0, ref.stderr

    calls = {"n": 0}

    def dying(prompt, j):
        calls["n"] += 1
        if calls["n"] > 12:  # batches 1 and 2 take 5 calls each (one retry each): dies in batch 3
            raise KeyboardInterrupt
        return _judge(prompt, j)

    SCRIPTS["judge-r"] = dying
    out = tmp_path / "o.jsonl"
    res = invoke([*base, "-o", str(out)])
    assert res.code == 130 and not out.exists()
    partial = tmp_path / "o.jsonl.grades.jsonl.partial"
    done = partial.read_text().splitlines()
    assert len(done) == 8  # two complete batches survived
    with partial.open("a") as fh:  # a torn line, as a SIGKILL mid-write leaves
        fh.write('{"key": "tor')
    SCRIPTS["judge-r"] = _judge
    CALLS.pop("judge-r", None)
    res = invoke([*base, "-o", str(out), "--resume", "-v"])
    assert res.code == 0, res.stderr
    assert out.read_text() == (tmp_path / "ref.jsonl").read_text()
    assert len(CALLS["judge-r"]) == 20 - 8  # only the rest is graded
    assert json.loads(res.stderr[res.stderr.index("{"):res.stderr.rindex("}") + 1])["grading"]["resumed"] == 8


def test_pass_at_k_grading(tmp_path):
    def solver(prompt, j):
        return "\\boxed{4}" if "2+2" in prompt and j < 14 else "\\boxed{5}"

    SCRIPTS["solver-e2e"] = solver
    src = write_jsonl(tmp_path / "p.jsonl", [
        {"id": 1, "lang": "en", "instruction": "2+2?", "answer": "4"},
        {"id": 2, "lang": "en", "instruction": "3+3?", "answer": 6},
    ])
    res = invoke(["sample-difficulty", str(src), "--grade-only", "--solve-model", "solver-e2e", *SCRIPTED, "--k", "16"])
    assert res.code == 0, res.stderr
    got = {r["id"]: (r["difficulty"], r["solve_rate"]) for r in res.rows()}
    assert got == {1: ("very_easy", 14 / 16), 2: ("very_hard", 0.0)}


def test_tiny_model_judge_output_is_reported_not_guessed(tmp_path, tiny_model):
    src = write_jsonl(tmp_path / "t.jsonl", [{"lang": "en", "instruction": f"What is {i} + {i}?"} for i in range(3)])
    rejects = tmp_path / "rej.jsonl"
    res = invoke(["sample-difficulty", str(src), "--total", "3", "--lang-ratio", "en=1", "--judge-model", str(tiny_model),
                  "--judge-max-tokens", "12", "--rejects", str(rejects), "--grades", str(tmp_path / "g.jsonl")])
    assert res.code == 0, res.stderr
    assert res.rows() == []  # a random tiny model never writes a valid verdict: nothing is guessed
    grades = [json.loads(x) for x in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert len(grades) == 3 and all(g["valid"] is False and g["attempts"] == 2 and g["error"] for g in grades)
    assert len(rejects.read_text().splitlines()) == 3
    assert "3 prompts could not be graded" in res.stderr


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        ([{"lang": "en", "instruction": "a", "difficulty": "hard"}, {"lang": "en", "instruction": "b", "difficulty": "extreme"}], [], "in.jsonl:2: field 'difficulty' is 'extreme'"),
        ([{"lang": "en", "instruction": "a"}], [], "in.jsonl:1: row has no 'difficulty' and nothing can grade it"),
        ([{"lang": 3, "instruction": "a", "difficulty": 2}], [], "in.jsonl:1: field 'lang' is 3"),
        ([{"lang": "en", "instruction": "a", "difficulty": 2, "cluster": "x"}], [], "in.jsonl:1: field 'cluster' must be an integer"),
        ([{"lang": "en", "instruction": "a", "difficulty": 2}], ["--ratio", "3:3:3"], "--ratio needs 5 numbers"),
        ([{"lang": "en", "instruction": "a", "difficulty": 2}], ["--shortfall", "guess"], "--shortfall must be one of"),
        ([{"lang": "en", "instruction": "a", "difficulty": 2}], ["--cutoffs", "0.5,0.2"], "--cutoffs needs four increasing numbers"),
        ([{"lang": "en", "instruction": "a"}], ["--resume", "--judge-model", "x"], "--resume needs a grades file"),
    ],
    ids=["bad-level", "ungradable", "bad-lang", "bad-cluster", "bad-ratio", "bad-rule", "bad-cutoffs", "resume-no-file"],
)
def test_bad_input_exits_2(tmp_path, rows, extra, message):
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    res = invoke(["sample-difficulty", str(src), "--total", "5", *extra])
    assert_user_error(res, message.replace("in.jsonl", str(src)) if "in.jsonl" in message else message)


def test_total_required_and_paper_names_and_detected_language(tmp_path):
    assert_user_error(invoke(["sample-difficulty", str(INSTRUCTIONS)]), "--total is required")
    src = write_jsonl(tmp_path / "d.jsonl", [
        {"instruction": "これは日本語の質問です。", "difficulty": "Very Difficult"},
        {"instruction": "This is English.", "difficulty": 4, "lang": "en_US"},
        {"instruction": "Bonjour", "difficulty": 1, "lang": "fr"},
    ])
    res = invoke(["sample-difficulty", str(src), "-n", "2", "--lang-ratio", "ja=1,en=1", "--ratio", "1:1:0:0:0", "-v"])
    assert res.code == 0, res.stderr
    assert {(r["instruction"][:4], r["difficulty"]) for r in res.rows()} == {("これは日", "very_hard"), ("This", "hard")}
    rep = json.loads(res.stderr[res.stderr.index("{"):res.stderr.rindex("}") + 1])
    assert rep["pool"] == {"rows": 3, "lang_detected": 1, "excluded_languages": {"fr": 1}, "grading_failed": 0}


def _level_pool(tmp_path, counts):
    rows = [{"id": f"{lv}-{i}", "lang": "en", "instruction": f"{lv} task {i}", "difficulty": lv, "cluster": i % 5}
            for lv, n in zip(("very_hard", "hard", "medium", "easy", "very_easy"), counts, strict=True) for i in range(n)]
    return write_jsonl(tmp_path / "pool.jsonl", rows)


def test_rounds_stay_disjoint_when_a_stratum_is_short_for_all_rounds(tmp_path):
    # en only: 40 very_hard, 200 per other level; 100 per round x 2. very_hard can give 20 per
    # round without reuse (quota 30): its 10 missing rows go to hard/medium/easy as 4/4/2.
    src, report = _level_pool(tmp_path, [40, 200, 200, 200, 200]), tmp_path / "r.json"
    res = invoke(["sample-difficulty", str(src), "--lang-ratio", "en=1", "--total", "100", "--rounds", "2", "--report", str(report)])
    assert res.code == 0, res.stderr
    rows = res.rows()
    by_round = [[r for r in rows if r["round"] == k] for k in (0, 1)]
    assert not {r["id"] for r in by_round[0]} & {r["id"] for r in by_round[1]}
    for part in by_round:
        assert Counter(r["difficulty"] for r in part) == {"very_hard": 20, "hard": 34, "medium": 34, "easy": 12}
    rep = json.loads(report.read_text())
    vh = next(s for s in rep["strata"] if s["difficulty"] == "very_hard")
    assert (vh["quota"], vh["available"], vh["disjoint_per_round"], vh["shortfall"], vh["selected_per_round"]) == (30, 40, 20, 10, 20)
    assert rep["notes"] == ["10 rows moved to other levels of en"] and rep["rounds_disjoint"] and rep["reused_draws"] == 0
    assert "stratum en/very_hard: quota 30, only 40 rows for 2 rounds (20 per round without reuse) (shortfall 10; rule: redistribute)" in res.stderr
    assert "rounds are not disjoint" not in res.stderr


def test_rounds_reuse_is_reported_when_the_pool_is_too_small(tmp_path):
    # 40+30+30+10 rows give 55 per round without reuse, fewer than 100: quotas are kept by
    # drawing rows again (2·30-40 = 20, 30, 30, 2·10-10 = 10 repeated draws), and that is said.
    src, report = _level_pool(tmp_path, [40, 30, 30, 10, 0]), tmp_path / "r.json"
    res = invoke(["sample-difficulty", str(src), "--lang-ratio", "en=1", "--total", "100", "--rounds", "2", "--report", str(report)])
    assert res.code == 0, res.stderr
    rep = json.loads(report.read_text())
    assert not rep["rounds_disjoint"] and rep["reused_draws"] == 90
    assert [s["reused_across_rounds"] for s in rep["strata"]] == [20, 30, 30, 10, 0]
    assert rep["notes"][-1].startswith("the pool cannot fill 2 disjoint rounds of 100 rows")
    assert ("rounds are not disjoint: 90 draws repeat a row of another round (en/very_hard 20, en/hard 30, en/medium 30, en/easy 10); "
            "the pool is too small for 2 disjoint rounds of 100") in " ".join(res.stderr.split())
    assert Counter(r["difficulty"] for r in res.rows() if r["round"] == 1) == {"very_hard": 30, "hard": 30, "medium": 30, "easy": 10}


def test_without_report_one_summary_line_and_total_zero_is_an_error():
    # issue 20 item 14: no 200-line JSON on stderr by default; --total 0 picks nothing: refused
    res = invoke(["sample-difficulty", str(INSTRUCTIONS), "-n", "150"])
    assert res.code == 0, res.stderr
    info = [ln for ln in res.stderr.splitlines() if not ln.startswith("in2x: warning:")]
    assert len(info) == 1 and info[0].startswith("sample-difficulty: 150 rows per round × 1 (requested 150)"), res.stderr
    assert "{" not in res.stderr
    assert_user_error(invoke(["sample-difficulty", str(INSTRUCTIONS), "--total", "0"]), "--total", ">= 1")
