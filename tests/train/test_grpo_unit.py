"""grpo glue without training: batch plan, prompt rows, the reward adapter, reward shaping."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from in2x_cli.errors import UserError
from in2x_cli.rewards import Reward
from in2x_cli.train.grpo import (
    TICGRPOTrainer,
    TRLRewardAdapter,
    load_prompt_rows,
    plan_batches,
    prompt_messages,
)
from tests.util import write_jsonl

# --------------------------------------------------------------------------- batch plan


def test_paper_batch_sizes_map_to_trl_knobs() -> None:
    # paper: 128 prompts per rollout batch, minibatch 32, 16 rollouts; 8 GPUs with 8 completions each per micro-step
    plan = plan_batches(rollout_batch=128, minibatch=32, num_generations=16, per_device_batch=8, world_size=8)
    assert plan.generation_batch_size == 2048
    assert plan.gradient_accumulation_steps == 8  # 32·16 / (8·8)
    assert plan.steps_per_generation == 32  # 2048 / (8·8) micro-steps per rollout batch
    assert plan.updates_per_rollout == 4  # 128/32
    assert plan_batches(rollout_batch=8, minibatch=4, num_generations=4, per_device_batch=4, world_size=1, num_iterations=2).updates_per_rollout == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rollout_batch": 100, "minibatch": 32}, "multiple of --minibatch"),
        ({"per_device_batch": 7}, "multiple of --batch-size"),
        ({"num_generations": 1}, "at least two"),
        ({"minibatch": 0}, ">= 1"),
    ],
)
def test_batch_plan_errors_name_the_flag(kwargs: dict, match: str) -> None:
    base = {"rollout_batch": 128, "minibatch": 32, "num_generations": 16, "per_device_batch": 8, "world_size": 1}
    with pytest.raises(UserError, match=match):
        plan_batches(**{**base, **kwargs})


# --------------------------------------------------------------------------- prompt rows


def test_prompt_rows_of_every_kind(tmp_path) -> None:
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"instruction": "What is 2+2?", "answer": 4, "system": "Be brief."},
            {"prompt": "Say hi.", "id": 7},
            {"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "ref answer"}], "lang": "en"},
            {"src_text": "The cat sleeps.", "ref_text": "猫が寝ている。", "src_lang": "en", "tgt_lang": "ja_JP"},
        ],
    )
    rows = load_prompt_rows(str(path))
    assert rows[0]["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
    assert json.loads(rows[0]["row"])["answer"] == 4  # original types ride along
    assert rows[1]["prompt"] == [{"role": "user", "content": "Say hi."}]
    assert rows[2]["prompt"] == [{"role": "user", "content": "Hello"}]  # trailing assistant turn dropped
    translation = rows[3]["prompt"][-1]["content"]
    assert "The cat sleeps." in translation and "日本語" in translation  # target-language template
    fields = json.loads(rows[3]["row"])
    assert (fields["src"], fields["ref"], fields["tgt_lang"], fields["src_lang"]) == ("The cat sleeps.", "猫が寝ている。", "ja", "en")


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"text": "no prompt here"}, "row has no prompt"),
        ({"instruction": "   "}, "empty"),
        ({"instruction": 5}, "must be a string"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, "end with a user turn"),
        ({"messages": "hi"}, "non-empty list"),
        ({"src": "x"}, "tgt_lang"),
        ({"src": "x", "tgt_lang": "??"}, "invalid language"),
        ({"instruction": "x", "system": 3}, "'system'"),
    ],
)
def test_bad_prompt_rows(row: dict, match: str) -> None:
    with pytest.raises(UserError, match=match) as exc:  # InputError, or UserError from normalize_lang
        prompt_messages(row, "p.jsonl:3")
    assert exc.value.where == "p.jsonl:3"


# --------------------------------------------------------------------------- reward adapter


def test_adapter_turns_chat_into_text_and_rows_into_columns() -> None:
    seen = {}

    def fn(prompts, completions, **fields):
        seen.update(prompts=prompts, completions=completions, fields=fields)
        return [1.0, None]

    adapter = TRLRewardAdapter(Reward("probe", 1.0, fn))
    assert adapter.__name__ == "probe"
    logged = []
    out = adapter(
        prompts=[[{"role": "system", "content": "s"}, {"role": "user", "content": "q1"}], [{"role": "user", "content": "q2"}]],
        completions=[[{"role": "assistant", "content": "a1"}], [{"role": "assistant", "content": "a2"}]],
        row=[json.dumps({"answer": "4", "completions": "shadowed"}), json.dumps({"ref": "r"})],
        completion_ids=[[1], [2]],
        trainer_state=None,
        log_metric=lambda k, v: logged.append((k, v)),
    )
    assert out == [1.0, None]
    assert seen["prompts"] == ["q1", "q2"] and seen["completions"] == ["a1", "a2"]
    assert seen["fields"] == {"answer": ["4", None], "ref": [None, "r"]}  # reserved names dropped


def test_adapter_rejects_non_finite_and_miscounted_rewards() -> None:
    nan_reward = TRLRewardAdapter(Reward("bad", 1.0, lambda p, c, **f: [math.nan] * len(c)))
    with pytest.raises(UserError, match="non-finite"):
        nan_reward(prompts=["p"], completions=["c"], row=["{}"])
    short = TRLRewardAdapter(Reward("short", 1.0, lambda p, c, **f: []))
    with pytest.raises(UserError, match="returned 0 values for 1"):
        short(prompts=["p"], completions=["c"], row=["{}"])


# --------------------------------------------------------------------------- reward shaping inside the trainer


def _shaping_host(**cfg) -> SimpleNamespace:
    defaults = {"length_penalty_target": None, "length_penalty_cap": None, "length_penalty_weight": 1.0, "reward_clip_high": None, "advantage_type": "group"}
    return SimpleNamespace(args=SimpleNamespace(**{**defaults, **cfg}), reward_weights=torch.tensor([1.0, 0.5]), num_generations=2)


def test_shaped_advantages_weighting_nan_penalty_and_clip() -> None:
    # two reward functions, weights [1, 0.5]; NaN = not applicable
    rpf = torch.tensor([[1.0, 2.0], [0.0, float("nan")], [float("nan"), float("nan")], [3.0, 0.0]])
    lengths = torch.tensor([10.0, 30.0, 5.0, 5.0])
    host = _shaping_host(length_penalty_target=10, length_penalty_cap=20, reward_clip_high=1.5)
    adv, stats = TICGRPOTrainer.shaped_advantages(host, rpf, lengths)
    # totals: [1+1, 0, nan, 3]; penalties [0, -1, 0, 0] -> [2, -1, nan, 3]; clip 1.5 -> [1.5, -1, nan, 1.5]
    # group 1: [1.5, -1] -> ±2.5/2 / (1.76777 + 1e-4); group 2: one valid value -> 0, NaN -> 0
    expected = 1.25 / (2.5 / math.sqrt(2) + 1e-4)
    assert adv.tolist() == pytest.approx([expected, -expected, 0.0, 0.0], abs=1e-4)
    assert stats["reward_clip/fraction"] == pytest.approx(0.5)
    assert stats["length_penalty/mean"] == pytest.approx(-0.25)
    # length-corrected advantages divide by the lengths first
    host = _shaping_host(advantage_type="length-corrected")
    adv, _ = TICGRPOTrainer.shaped_advantages(host, torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([2.0, 4.0]))
    assert adv[0] > 0 > adv[1]


def test_reference_length_advantage_reads_the_rows_reference() -> None:
    """--advantage reference-length: L_ref is the token length of the row's ref (else answer); a
    completion longer than its reference is scaled down, a row without one is left as it is."""
    host = SimpleNamespace(processing_class=lambda text, add_special_tokens=False: {"input_ids": text.split()})
    inputs = [{"row": json.dumps({"ref": "a b c d"})}, {"row": json.dumps({"answer": "42"})}, {"row": "{}"}, {"prompt": []}]
    refs = TICGRPOTrainer.reference_lengths(host, inputs)
    assert refs[:2].tolist() == [4.0, 1.0] and torch.isnan(refs[2:]).all()
    shaping = _shaping_host(advantage_type="reference-length")
    # group [r=1, L=8, L_ref=4 -> 0.5] vs [r=1, L=4 -> 1.0]: the longer one loses
    adv, _ = TICGRPOTrainer.shaped_advantages(shaping, torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([8.0, 4.0]), torch.tensor([4.0, 4.0]))
    assert adv[0] < 0 < adv[1]
    # auto logs the share of pass/fail groups
    adv, stats = TICGRPOTrainer.shaped_advantages(_shaping_host(advantage_type="auto"), torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([8.0, 4.0]))
    assert stats["advantages/length_corrected_groups"] == 1.0
