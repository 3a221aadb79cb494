"""Composite MT rewards (repetition, terminology, round_trip, gemba): golden numbers, None where a
reward does not apply, registry names and weights."""

from __future__ import annotations

import json

import pytest

from in2x_cli.errors import InputError, UserError
from in2x_cli.rewards import RewardContext, parse_reward_spec, resolve_rewards
from in2x_cli.rewards.repetition import repetition, repetition_rate
from in2x_cli.rewards.round_trip import RoundTrip, round_trip_similarity
from in2x_cli.rewards.terminology import TerminologyReward, aligned_key_terms
from tests import fakes

# --------------------------------------------------------------------------- repetition


def test_repetition_rate_golden() -> None:
    # 4-grams of a b c d a b c d: abcd bcda cdab dabc abcd → 5, unique 4 → 1 - 4/5
    assert repetition_rate("a b c d a b c d".split(), 4) == pytest.approx(0.2)
    assert repetition_rate(["a", "b"], 4) == 0.0
    assert repetition_rate(list("ababab"), 2) == pytest.approx(1 - 2 / 5)


def test_repetition_reward_units_by_language() -> None:
    completions = ["a b c d a b c d", "the cat sat", "ああああああああああ", "<think>x x x x x x</think> a b c d e", "今日は晴れです。今日は晴れです。"]
    scores = repetition([""] * 5, completions, tgt_lang=[None, "en", "ja", "en", None])
    # ja: 10 identical characters → 3 char 8-grams, 1 unique → -(1 - 1/3); the think block is not judged;
    # the last is detected as Japanese: 16 characters → 9 8-grams, 8 unique (今日は晴れです。 twice) → -(1 - 8/9)
    assert scores == pytest.approx([-0.2, 0.0, -2 / 3, 0.0, -1 / 9])


# --------------------------------------------------------------------------- terminology


def _glossary(tmp_path, rows) -> str:
    path = tmp_path / "glossary.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_terminology_with_a_glossary(tmp_path) -> None:
    glossary = _glossary(tmp_path, [
        {"src": "neural network", "tgt": ["ニューラルネットワーク", "神経回路網"]},
        {"src": "GPU", "tgt": "GPU"},
        {"src": "network", "tgt": "网络", "tgt_lang": "zh"},  # another pair: not counted for en-ja
        {"src": "cat", "tgt": "猫"},  # not in this source
    ])  # fmt: skip
    reward = TerminologyReward(RewardContext(glossary=glossary))
    src = "The Neural Network runs on a GPU."
    scores = reward(
        ["", "", "", ""],
        ["ニューラルネットワークはグラフィックスで動く。", "神経回路網はgpuで動く。", "何か", "x"],
        src=[src, src, "No glossary term here.", None],
        src_lang=["en"] * 4,
        tgt_lang=["ja"] * 4,
    )
    assert scores == [0.5, 1.0, None, None]


def test_row_terms_override_and_bad_glossaries_name_the_line(tmp_path) -> None:
    reward = TerminologyReward(RewardContext())
    scores = reward([""], ["東京タワー"], src=["Tokyo Tower"], terms=[[{"src": "Tokyo Tower", "tgt": "東京タワー"}, {"src": "Tower", "tgt": "塔"}]])
    assert scores == [0.5]
    bad = _glossary(tmp_path, [{"src": "ok", "tgt": "ok"}, {"src": "x"}])
    with pytest.raises(InputError, match="glossary.jsonl:2"):
        TerminologyReward(RewardContext(glossary=bad))


def test_aligned_key_terms_without_a_glossary() -> None:
    src, ref = "The WMT25 results for GPT-4 in 2024 are out in Zürich.", "2024年のWMT25におけるGPT-4の結果がチューリッヒで発表された。"
    assert [t.src for t in aligned_key_terms(src, ref)] == ["WMT25", "GPT-4", "2024"]  # "The", "Zürich" are not in the ref
    reward = TerminologyReward(RewardContext())
    assert reward([""] * 3, ["WMT25とgpt-4の結果", "結果", "x"], src=[src, src, "plain words only"], ref=[ref, ref, "ただの言葉"]) == [2 / 3, 0.0, None]


# --------------------------------------------------------------------------- round_trip


def test_round_trip_back_translates_and_scores_chrf() -> None:
    seen: list[str] = []

    def back(prompt: str, j: int) -> str:
        seen.append(prompt)
        return "Translation: The cat sat on the mat." if "猫" in prompt else "zzz"

    fakes.SCRIPTS["bt-model"] = back
    reward = RoundTrip(RewardContext(round_trip_model="bt-model", round_trip_backend="tests.fakes:ScriptedBackend"))
    scores = reward(
        [""] * 4,
        ["猫がマットの上に座った。", "犬", "猫", "猫"],
        src=["The cat sat on the mat.", "The dog ran.", "x", None],
        src_lang=["en", "en", None, "en"],
        tgt_lang=["ja", "ja", "ja", "ja"],
    )
    # the reply's label is cleaned off, so the back-translation equals the source: chrF 100
    assert scores == [1.0, 0.0, None, None]
    assert len(seen) == 2 and "Translate the following Japanese text into natural, idiomatic English." in seen[0]
    assert round_trip_similarity("The cat sat.", "The cat sat on the mat.") == pytest.approx(
        __import__("sacrebleu").sentence_chrf("The cat sat.", ["The cat sat on the mat."]).score / 100
    )


def test_round_trip_needs_a_model() -> None:
    with pytest.raises(UserError, match="--round-trip-model"):
        RoundTrip(RewardContext())


# --------------------------------------------------------------------------- gemba


def test_gemba_reward_is_the_esa_score_over_100_and_failures_score_the_minimum() -> None:
    def judge(prompt: str, j: int) -> str:
        user = prompt.rsplit("<|im_start|>user\n", 1)[1]
        hyp = user.split("translation:\n```", 1)[1].split("```", 1)[0]
        if "Score (0-100)" not in user:
            return "Major:\nno-error\nMinor:\nno-error"
        return {"良い訳": "85", "悪い訳": "no idea"}[hyp]

    fakes.SCRIPTS["esa-reward-judge"] = judge
    from in2x_cli.rewards.gemba import GembaReward

    reward = GembaReward(RewardContext(judge_model="esa-reward-judge", judge_backend="tests.fakes:ScriptedBackend"))
    scores = reward([""] * 3, ["良い訳", "悪い訳", "x"], src=["good", "bad", None], src_lang=["en"] * 3, tgt_lang=["ja", "ja", "ja"])
    assert scores == [0.85, 0.0, None]
    assert reward.metrics() == {"judge_failures": 1.0, "not_applicable": 1.0}
    with pytest.raises(UserError, match="--judge-model"):
        GembaReward(RewardContext())


# --------------------------------------------------------------------------- registry


def test_registered_and_weighted(tmp_path) -> None:
    fakes.SCRIPTS["bt-2"] = lambda p, j: "x"
    fakes.SCRIPTS["judge-2"] = lambda p, j: "x"
    ctx = RewardContext(round_trip_model="bt-2", round_trip_backend="tests.fakes:ScriptedBackend", judge_model="judge-2", judge_backend="tests.fakes:ScriptedBackend")
    specs = [parse_reward_spec(s) for s in ("repetition:0.5", "terminology:2", "round_trip", "gemba:0.25", "translation_chrf")]
    rewards = resolve_rewards(specs, ctx)
    assert [(r.name, r.weight) for r in rewards] == [("repetition", 0.5), ("terminology", 2.0), ("round_trip", 1.0), ("gemba", 0.25), ("translation_chrf", 1.0)]


def test_repetition_and_terminology_are_finite_on_hostile_completions() -> None:
    from tests.rewards.test_rewards import HOSTILE

    n = len(HOSTILE)
    rep = repetition([""] * n, HOSTILE, tgt_lang=["ja"] * n)
    assert all(-1.0 <= s <= 0.0 for s in rep)
    term = TerminologyReward(RewardContext())([""] * n, HOSTILE, src=["GPT-4 in 2024"] * n, ref=["2024年のGPT-4"] * n)
    assert all(s is not None and 0.0 <= s <= 1.0 for s in term)
