"""vLLM engines sharing a rank's GPU (TRL's colocated rollouts, a vLLM judge) must add up (issue 15, item 3)."""

from __future__ import annotations

from typing import Any

import pytest

from in2x_cli.backends.vllm import GPU_MEMORY_BUDGET, check_gpu_memory_budget
from in2x_cli.errors import UserError
from in2x_cli.rewards import RewardContext, RewardSpec
from in2x_cli.train.grpo import GRPORunConfig, check_vllm_budget
from in2x_cli.train.options import TrainOptions

BUILT: list[dict[str, Any]] = []


class RecordingBackend:
    def __init__(self, model: str, **options: Any) -> None:
        BUILT.append({"model": model, **options})


def _cfg(tmp_path, judge_backend: str, judge_share: float, rollout_share: float) -> GRPORunConfig:
    return GRPORunConfig(
        model="m", prompts="p.jsonl", train=TrainOptions(output_dir=tmp_path),
        rewards=(RewardSpec("generative_judge"),),
        reward_context=RewardContext(judge_model="j", judge_backend=judge_backend, judge_gpu_memory_utilization=judge_share),
        vllm_gpu_memory_utilization=rollout_share,
    )  # fmt: skip


def test_shares_must_add_up():
    check_gpu_memory_budget({"a": 0.3, "b": 0.6})
    assert GPU_MEMORY_BUDGET == 0.95
    with pytest.raises(UserError, match=r"a 0.9 \+ b 0.3 = 1.2"):
        check_gpu_memory_budget({"a": 0.9, "b": 0.3})


def test_grpo_checks_rollout_plus_judge(tmp_path):
    check_vllm_budget(_cfg(tmp_path, "vllm", 0.3, 0.3), use_vllm=True)
    with pytest.raises(UserError, match="--judge-gpu-memory"):
        check_vllm_budget(_cfg(tmp_path, "vllm", 0.9, 0.3), use_vllm=True)
    check_vllm_budget(_cfg(tmp_path, "vllm", 0.9, 0.3), use_vllm=False)  # rollouts by transformers
    check_vllm_budget(_cfg(tmp_path, "transformers", 0.9, 0.3), use_vllm=True)  # judge not on vLLM


def test_judge_gets_its_share(tmp_path):
    from in2x_cli.rewards.judge import GenerativeJudge

    BUILT.clear()
    GenerativeJudge(RewardContext(judge_model="j", judge_backend=f"{__name__}:RecordingBackend", judge_gpu_memory_utilization=0.25))
    assert BUILT == [{"model": "j", "trust_remote_code": False, "gpu_memory_utilization": 0.25}]
