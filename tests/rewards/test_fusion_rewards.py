"""Fusion rewards (rewards/fusion.py) on hand-checked cases, and the grpo ``fusion`` row type."""

from __future__ import annotations

import json
import math

import pytest

from in2x_cli.errors import UserError
from in2x_cli.rewards import RewardContext, RewardSpec, resolve_reward
from in2x_cli.rewards.fusion import fusion_chrf, fusion_gain
from in2x_cli.train.grpo import load_prompt_rows, prompt_messages
from tests.rewards.test_rewards import HOSTILE
from tests.util import write_jsonl

REF = "猫がマットの上で寝ている。"


def test_fusion_chrf_and_gain_by_hand():
    cands = [["猫が寝ている。", REF]]
    # the fused output equals the reference: chrF 100 → 1.0; the best candidate is the reference too → gain 0
    assert fusion_chrf([""], [REF], ref=[REF], candidates=cands) == [1.0]
    assert fusion_gain([""], [REF], ref=[REF], candidates=cands) == [0.0]
    # an empty fusion (chrF 0) against a candidate equal to the reference: gain −1
    assert fusion_gain([""], [""], ref=[REF], candidates=cands) == [-1.0]
    # disjoint characters: chrF 0; best candidate 0 too → gain 0; a think block is not scored
    assert fusion_chrf([""], ["xyz"], ref=["abc"], candidates=[["qqq"]]) == [0.0]
    assert fusion_gain([""], ["<think>abc</think>abc"], ref=["abc"], candidates=[["qqq"]]) == [1.0]


def test_fusion_rewards_are_not_applicable_to_other_rows_and_finite_on_hostile_input():
    n = len(HOSTILE)
    for fn in (fusion_chrf, fusion_gain):
        # a translation row (no candidates), a fusion row without a reference, a malformed candidates field
        assert fn(["", "", ""], ["a", "a", "a"], ref=["a", None, "a"], candidates=[None, ["a"], "a"]) == [None, None, None]
        assert fn(["p"] * 2, ["x"] * 2) == [None, None]  # no columns at all
        scores = fn(["p"] * n, HOSTILE, ref=[REF] * n, candidates=[["猫", REF[:5]]] * n)
        assert all(s is not None and math.isfinite(s) and -1.0 <= s <= 1.0 for s in scores)
    assert resolve_reward(RewardSpec("fusion_gain", 0.5), RewardContext()).fn is fusion_gain


def test_grpo_fusion_rows_get_the_translate_fusion_prompt(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"src": "The cat sleeps.", "candidates": ["猫が寝る。", "猫が寝る。", "猫は眠る。"], "ref": REF, "src_lang": "en", "tgt_lang": "ja_JP", "id": 3},
        {"src": "The cat sleeps.", "ref": REF, "tgt_lang": "ja"},
    ])
    fusion, translation = load_prompt_rows(str(path))
    text = fusion["prompt"][-1]["content"]
    assert "Source:\nThe cat sleeps.\n\nCandidate 1:\n猫が寝る。\n\nCandidate 2:\n猫は眠る。" in text  # repeats once
    assert "2 candidate translations" in text and "Only output the refined translation." in text
    fields = json.loads(fusion["row"])
    assert fields["candidates"] == ["猫が寝る。", "猫が寝る。", "猫は眠る。"] and fields["tgt_lang"] == "ja" and fields["id"] == 3
    assert "Candidate" not in translation["prompt"][-1]["content"]  # a plain translation row is untouched


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"src": "x", "candidates": [], "tgt_lang": "ja"}, "non-empty list of strings"),
        ({"src": "x", "candidates": ["a", 3], "tgt_lang": "ja"}, "non-empty list of strings"),
        ({"src": "x", "candidates": ["", " "], "tgt_lang": "ja"}, "empty"),
        ({"src": " ", "candidates": ["a"], "tgt_lang": "ja"}, "non-empty 'src'"),
        ({"src": "x", "candidates": ["a"]}, "tgt_lang"),
    ],
)
def test_bad_fusion_rows_name_the_line(row, match):
    with pytest.raises(UserError, match=match) as exc:
        prompt_messages(row, "f.jsonl:2")
    assert exc.value.where == "f.jsonl:2"
