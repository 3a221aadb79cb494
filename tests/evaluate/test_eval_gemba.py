"""`in2x eval -m gemba-esa` through the real CLI with a scripted judge backend (tests/fakes.py),
and the metric-overfit guard (evaluate/overfit.py) on recorded and on real provenance."""

from __future__ import annotations

import json
import re

import pytest

from tests import fakes
from tests.evaluate.test_eval_cmd import EN_JA_ROWS, rows_for
from tests.util import assert_user_error, invoke, write_jsonl

JUDGE = ["--judge-backend", "tests.fakes:ScriptedBackend"]


def _last_user(prompt: str) -> str:
    return prompt.rsplit("<|im_start|>user\n", 1)[1]


def _hyp(user: str) -> str:
    return user.split("translation:\n```", 1)[1].split("```", 1)[0]


def make_judge(name: str) -> dict[str, int]:
    """Scores 90 a hypothesis with no errors, 20 one with a major error; the empty hypothesis
    gets an unreadable score every time; "犬は公園に走った。" is annotated in prose first (retried)."""
    seen: dict[str, int] = {}

    def script(prompt: str, j: int) -> str:
        user = _last_user(prompt)
        hyp = _hyp(user)
        step = "score" if "Score (0-100)" in user else "spans"
        seen[f"{step}:{hyp}"] = seen.get(f"{step}:{hyp}", 0) + 1
        good = hyp in ("猫がマットの上に座った。", "犬は公園に走った。", "おはようございます。")
        if step == "spans":
            if hyp == "犬は公園に走った。" and seen[f"{step}:{hyp}"] == 1:
                return "This translation looks fine."
            return "Major:\nno-error\nMinor:\nno-error" if good else f'Major:\naccuracy/omission - "{hyp[:1]}"\n'
        if hyp == "":
            return "It is hard to say."
        return "90" if good else "Score: 20"

    fakes.SCRIPTS[name] = script
    return seen


def test_gemba_esa_scores_counts_invalid_and_writes_spans(tmp_path) -> None:
    seen = make_judge("esa-judge")
    rows = write_jsonl(tmp_path / "rows.jsonl", rows_for())
    seg = tmp_path / "seg.jsonl"
    res = invoke(["eval", str(rows), "-m", "gemba-esa,chrf", "--judge-model", "esa-judge", *JUDGE, "--segments", str(seg), "--autorank"])
    assert res.code == 0, res.stderr[-3000:]
    result = json.loads(res.stdout)["results"][0]
    good, bad = result["systems"]
    assert good["scores"]["gemba-esa"] == 90.0
    # "bad": 猫。 (20), "" (no valid score: never guessed), こんにちは。 (20) → mean of the 2 scored
    assert bad["scores"]["gemba-esa"] == 20.0
    assert good["judged"]["gemba-esa"] == {"scored": 3, "invalid": 0, "retried": 1, "errors": {}}
    assert bad["judged"]["gemba-esa"]["scored"] == 2 and bad["judged"]["gemba-esa"]["invalid"] == 1
    assert bad["judged"]["gemba-esa"]["errors"] == {"score: 0 numbers in the reply (expected exactly one score)": 1}
    assert result["metrics"]["gemba-esa"]["signature"].startswith("judge:esa-judge|protocol:gemba-esa|temperatures:0,0.5,1|")
    assert result["metrics"]["gemba-esa"]["higher_is_better"] is True
    assert seen["score:"] == 3  # the unreadable score was asked at 0, 0.5 and 1.0
    assert seen["spans:犬は公園に走った。"] == 2
    assert "gemba-esa: bad: 2/3 segments scored" in res.stderr and "1 without a valid judge reply get no score" in res.stderr
    assert "gemba-esa: good: 3/3 segments scored, 1 after a retry" in res.stderr
    assert [r["system"] for r in sorted(result["autorank"], key=lambda r: r["autorank"])][0] == "good"

    seg_rows = [json.loads(line) for line in seg.read_text(encoding="utf-8").splitlines()]
    empty = next(r for r in seg_rows if r["system"] == "bad" and r["hyp"] == "")
    assert empty["scores"]["gemba-esa"] is None
    assert empty["judgements"]["gemba-esa"]["score"] is None and empty["judgements"]["gemba-esa"]["error"].startswith("score:")
    cat = next(r for r in seg_rows if r["system"] == "bad" and r["hyp"] == "猫。")
    assert cat["judgements"]["gemba-esa"]["spans"] == [{"severity": "major", "category": "accuracy/omission", "span": "猫", "start": 0}]
    assert cat["scores"]["gemba-esa"] == 20.0


def test_gemba_esa_needs_a_judge_model_and_sources(tmp_path) -> None:
    rows = write_jsonl(tmp_path / "rows.jsonl", rows_for())
    assert_user_error(invoke(["eval", str(rows), "-m", "gemba-esa"]), "gemba-esa needs a judge model", "--judge-model")
    ref = tmp_path / "ref.txt"
    ref.write_text("\n".join(r["ref"] for r in EN_JA_ROWS) + "\n", encoding="utf-8")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("a\nb\nc\n", encoding="utf-8")
    make_judge("esa-judge-2")
    res = invoke(["eval", "--ref", str(ref), "--hyp", str(hyp), "-m", "gemba-esa", "--judge-model", "esa-judge-2", *JUDGE])
    assert_user_error(res, "gemba-esa", "--src")


# --------------------------------------------------------------------------- overfit guard


def _checkpoint(path, provenance) -> str:
    path.mkdir(parents=True)
    (path / "in2x_provenance.json").write_text(json.dumps(provenance), encoding="utf-8")
    return str(path)


def test_a_system_trained_on_an_eval_metric_is_flagged_through_its_provenance_chain(tmp_path) -> None:
    grpo = _checkpoint(tmp_path / "grpo", {"command": "grpo", "rewards": [{"name": "translation_chrf", "weight": 1.0}, {"name": "format", "weight": 0.2}], "base_model": str(tmp_path / "sft")})
    merged = _checkpoint(tmp_path / "merged", {"command": "merge", "inputs": [{"path": grpo}, {"path": str(tmp_path / "missing")}]})
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("\n".join(r["src"] for r in EN_JA_ROWS) + "\n", encoding="utf-8")
    ref.write_text("\n".join(r["ref"] for r in EN_JA_ROWS) + "\n", encoding="utf-8")
    tuned, plain = tmp_path / "tuned.txt", tmp_path / "plain.txt"
    tuned.write_text("\n".join(["猫がマットの上に座った。", "犬は公園に走った。", "おはよう。"]) + "\n", encoding="utf-8")
    plain.write_text("\n".join(["猫。", "犬。", "おはよう。"]) + "\n", encoding="utf-8")
    (tmp_path / "tuned.txt.meta.json").write_text(json.dumps({"command": "translate", "config": {"models": [merged]}}), encoding="utf-8")
    res = invoke(["eval", "--src", str(src), "--ref", str(ref), "--hyp", f"plain={plain}", "--hyp", f"tuned={tuned}", "-m", "bleu,chrf", "-l", "en-ja"])
    assert res.code == 0, res.stderr
    plain_e, tuned_e = json.loads(res.stdout)["results"][0]["systems"]
    assert "reward_overlap" not in plain_e
    assert tuned_e["reward_overlap"] == {"rewards": ["format", "translation_chrf"], "metrics": ["chrf"], "held_out": ["bleu"], "models": [grpo]}
    assert re.search(r"tuned: trained with reward format, translation_chrf \(.*grpo\), so chrf \(marked †\) is not held out for it; held-out: bleu", " ".join(res.stderr.split()))
    assert re.search(r"tuned\s*│[^│]*│\s*† [\d.]+", res.stderr)  # the chrf cell carries the marker (before the number: decimals stay aligned)


@pytest.mark.slow
def test_guard_on_a_real_grpo_translate_eval_chain(tmp_path, tiny_model) -> None:
    rows = [{**r, "src_lang": "en", "tgt_lang": "ja"} for r in EN_JA_ROWS]
    prompts = write_jsonl(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "grpo"
    res = invoke(["grpo", str(prompts), "--model", str(tiny_model), "-o", str(out), "--reward", "translation_chrf", "--reward", "repetition:0.5",
                  "-G", "2", "--rollout-batch", "2", "--minibatch", "2", "--batch-size", "2", "--max-steps", "1", "--max-completion-tokens", "8",
                  "--report-to", "none"])  # fmt: skip
    assert res.code == 0, res.stderr[-3000:]
    rewards = json.loads((out / "in2x_provenance.json").read_text())["rewards"]
    assert [r["name"] for r in rewards] == ["translation_chrf", "repetition"]
    translated = tmp_path / "hyp.jsonl"
    res = invoke(["translate", "--model", str(out), "--backend", "transformers", str(prompts), "-o", str(translated), "--max-tokens", "8"])
    assert res.code == 0, res.stderr[-3000:]
    res = invoke(["eval", str(translated), "-m", "chrf,bleu"])
    assert res.code == 0, res.stderr[-3000:]
    (entry,) = json.loads(res.stdout)["results"][0]["systems"]
    assert entry["reward_overlap"]["metrics"] == ["chrf"] and entry["reward_overlap"]["held_out"] == ["bleu"]
    assert "trained with reward repetition, translation_chrf" in " ".join(res.stderr.split())


def test_gemba_esa_with_the_tiny_model_as_judge_never_guesses(tmp_path, tiny_model) -> None:
    """A random tiny model cannot follow the protocol: every reply is unreadable, retried, and the
    systems get no score (null) rather than a guessed one; the counts say so."""
    import shutil

    judge = tmp_path / "judge"
    shutil.copytree(tiny_model, judge)
    config = json.loads((judge / "config.json").read_text())
    (judge / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 8192}))  # the few-shot prompt is ~2.8k tiny tokens
    rows = write_jsonl(tmp_path / "rows.jsonl", rows_for(systems=("good",)))
    res = invoke(["eval", str(rows), "-m", "gemba-esa,chrf", "--judge-model", str(judge), "--judge-max-tokens", "16", "--judge-retries", "1"])
    assert res.code == 0, res.stderr[-3000:]
    (entry,) = json.loads(res.stdout)["results"][0]["systems"]
    assert entry["scores"]["gemba-esa"] is None and entry["scores"]["chrf"] > 0
    assert entry["judged"]["gemba-esa"]["scored"] == 0 and entry["judged"]["gemba-esa"]["invalid"] == 3
    assert "gemba-esa: good: 0/3 segments scored" in res.stderr


def test_two_judges_rank_through_the_segment_file_with_wmt25_names(tmp_path) -> None:
    """The docs' open-judge AutoRank recipe in small: two gemba-esa judges are two metrics, the
    segment file (with an unscored segment) ranks like --autorank, under WMT25's metric names."""
    make_judge("judge-a")
    make_judge("judge-b")
    rows = write_jsonl(tmp_path / "rows.jsonl", rows_for())
    seg = tmp_path / "seg.jsonl"
    res = invoke(["eval", str(rows), "-m", "gemba-esa=judge-a,gemba-esa=judge-b,chrf", *JUDGE, "--segments", str(seg), "--autorank", "-o", str(tmp_path / "s.json")])
    assert res.code == 0, res.stderr[-3000:]
    result = json.loads((tmp_path / "s.json").read_text())["results"][0]
    assert list(result["metrics"]) == ["gemba-esa:judge-a", "gemba-esa:judge-b", "chrf"]
    ranked = invoke(["eval", "autorank", str(seg), "--alias", "gemba-esa:judge-a=GEMBA-ESA-CMDA", "--alias", "gemba-esa:judge-b=GEMBA-ESA-GPT4.1"])
    assert ranked.code == 0, ranked.stderr
    (pair,) = json.loads(ranked.stdout)["pairs"]
    assert sorted(pair["metrics"]) == ["GEMBA-ESA-CMDA", "GEMBA-ESA-GPT4.1", "chrf"]
    by_system = {s["system"]: s for s in pair["systems"]}
    assert by_system["bad"]["scores"]["GEMBA-ESA-CMDA"] == 20.0  # the unscored segment is skipped, not zero
    assert {r["system"]: r["autorank"] for r in result["autorank"]} == {s: e["autorank"] for s, e in by_system.items()}
