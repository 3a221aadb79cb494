"""End-to-end Trajectory-Corrected GRPO on the tiny model, on CPU, through the real CLI.

One run (module fixture) exercises everything at once: rule rewards, a translation reward, the
generative judge (scripted), off-policy updates (2 per rollout batch), temperature decay and a
checkpoint every step; the other tests resume from its checkpoints (bit-identical weights) and
check a learning trend.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from in2x_cli.train.common import read_metrics
from tests import fakes
from tests.util import invoke, write_jsonl

MAX_TOKENS = "12"


def favour_the(prompts, completions, **_):
    """Rewards completions for saying "the" (up to 3 times): a target the tiny model can learn fast."""
    return [min(c.count("the"), 3) / 3 for c in completions]


def judge_script(prompt: str, j: int) -> str:
    if "You write grading guidelines" in prompt:
        return "Answer briefly."
    principles = prompt.split("Principles:\n", 1)[1].split("\n\nGuidelines", 1)[0]
    n = len(principles.splitlines())
    return json.dumps({"verdicts": [{"id": i, "satisfied": i == 1} for i in range(1, n + 1)]})


@pytest.fixture(scope="module", autouse=True)
def one_thread(tiny_model_warm):
    # 2 shared cores: OpenMP threads fighting other processes make each step ~10x slower. The
    # session's warm model is built first, with the default threads, so other modules see the same one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> Path:
    from in2x_cli.tiny import load_corpus

    rows = [{"instruction": r["instruction"], "answer": r["answer"]} for r in load_corpus("instructions") if r.get("answer")][:6]
    for r in load_corpus("parallel")[:2]:
        rows.append({"src": r["en"], "ref": r["ja"], "src_lang": "en", "tgt_lang": "ja"})
    return write_jsonl(tmp_path_factory.mktemp("grpo") / "prompts.jsonl", rows)


def base_args(model: Path, prompts: Path, out: Path) -> list[str]:
    return [
        "grpo", str(prompts), "--model", str(model), "--output", str(out),
        "--reward", "math_exact:1.0", "--reward", "language_match:0.5", "--reward", "translation_chrf:0.5",
        "--reward", "generative_judge:0.2", "--judge-model", "grpo-e2e-judge", "--judge-backend", "tests.fakes:ScriptedBackend",
        "-G", "4", "--rollout-batch", "4", "--minibatch", "2", "--batch-size", "4",
        "--max-steps", "4", "--max-completion-tokens", MAX_TOKENS, "--lr", "1e-3",
        "--temperature-start", "1.0", "--temperature-end", "0.5",
        "--save-steps", "1", "--save-total-limit", "0", "--report-to", "none", "--seed", "3",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def run_a(tiny_model_warm, prompts, tmp_path_factory):
    """4 updates = 2 rollout batches of 4 prompts × 4 rollouts, 2 updates each."""
    fakes.SCRIPTS["grpo-e2e-judge"] = judge_script
    temperatures: list[float] = []
    from transformers.generation.utils import GenerationMixin

    original = GenerationMixin.generate

    def spy(self, *args, **kwargs):
        temperatures.append(kwargs["generation_config"].temperature)
        return original(self, *args, **kwargs)

    out = tmp_path_factory.mktemp("run_a") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(GenerationMixin, "generate", spy)
        res = invoke(base_args(tiny_model_warm, prompts, out))
    assert res.code == 0, res.stderr[-3000:]
    return {"out": out, "res": res, "temperatures": temperatures}


def train_rows(out: Path) -> list[dict]:
    """metrics.jsonl rows of optimizer steps (not the end-of-training summary)."""
    return [r for r in read_metrics(out) if "loss" in r]


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_run_writes_a_loadable_model_with_provenance(run_a, tiny_model_warm) -> None:
    out = run_a["out"]
    assert run_a["res"].stdout == ""  # stdout is for data only
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert sum(p.numel() for p in model.parameters()) > 0
    prov = json.loads((out / "in2x_provenance.json").read_text())
    assert prov["command"] == "grpo" and prov["seed"] == 3 and prov["steps"] == 4
    assert prov["config"]["ratio_level"] == "trajectory" and prov["batch_plan"]["updates_per_rollout"] == 2
    assert [r["name"] for r in prov["rewards"]] == ["math_exact", "language_match", "translation_chrf", "generative_judge"]
    assert any(i["path"].endswith("prompts.jsonl") and i.get("sha256") for i in prov["inputs"])
    # training moved the weights
    before, after = weights(tiny_model_warm), weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in after)


def test_metrics_have_rewards_clip_ratio_entropy_and_length(run_a) -> None:
    rows = train_rows(run_a["out"])
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    keys = set().union(*rows)
    for key in (
        "rewards/math_exact/mean", "rewards/math_exact/std", "rewards/translation_chrf/mean", "rewards/language_match/mean",
        "rewards/generative_judge/mean", "rewards/generative_judge/judge_failures", "reward", "reward_shaped/mean",
        "clip/high_fraction", "clip/dual_fraction", "ratio/mean", "ratio/min", "ratio/max", "entropy", "policy_loss",
        "completions/mean_length", "sampling/temperature", "loss", "grad_norm",
    ):  # fmt: skip
        assert key in keys, key
    # the scripted judge says principle 1 of 5 is satisfied: reward exactly 0.2, no failures
    judged = [r["rewards/generative_judge/mean"] for r in rows if "rewards/generative_judge/mean" in r]
    assert judged and all(v == pytest.approx(0.2) for v in judged)


def test_off_policy_updates_see_a_trajectory_ratio(run_a) -> None:
    rows = {r["step"]: r for r in train_rows(run_a["out"])}
    # first update of each rollout batch is on-policy: every ratio exactly 1 (also checks that the
    # loss recomputes log-probs at the batch's sampling temperature, 0.5 in round 2)
    for step in (1, 3):
        assert rows[step]["ratio/mean"] == 1.0 and rows[step]["ratio/log_abs_mean"] == 0.0
    # the second update reuses the rollouts after one optimizer step: π_θ ≠ π_old
    for step in (2, 4):
        assert rows[step]["ratio/log_abs_mean"] > 1e-3
        assert rows[step]["ratio/min"] < 1.0 < rows[step]["ratio/max"] or rows[step]["ratio/mean"] != 1.0


def test_temperature_decays_in_the_generation_path(run_a) -> None:
    rows = train_rows(run_a["out"])
    logged = [r["sampling/temperature"] for r in rows if "sampling/temperature" in r]
    assert logged == [1.0, 0.5]
    assert run_a["temperatures"] == [1.0, 0.5]  # what model.generate actually received


def test_mid_rollout_checkpoints_keep_their_rollouts(run_a) -> None:
    out = run_a["out"]
    assert list((out / "checkpoint-1").glob("in2x_rollout_buffer.pt*"))  # mid-rollout
    assert not list((out / "checkpoint-2").glob("in2x_rollout_buffer.pt*"))  # at a rollout boundary


@pytest.mark.parametrize("checkpoint", ["checkpoint-1", "checkpoint-2"])
def test_resume_is_bit_identical(run_a, tiny_model_warm, prompts, tmp_path, checkpoint) -> None:
    # as if the run had been killed right after writing this checkpoint
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(run_a["out"] / checkpoint, out / checkpoint)
    shutil.copy(run_a["out"] / "metrics.jsonl", out / "metrics.jsonl")
    res = invoke([*base_args(tiny_model_warm, prompts, out), "--resume"])
    assert res.code == 0, res.stderr[-3000:]
    assert f"continuing from {out / checkpoint}" in res.stderr
    expected, got = weights(run_a["out"]), weights(out)
    assert expected.keys() == got.keys()
    for k in expected:
        assert torch.equal(expected[k], got[k]), k
    assert [r["step"] for r in train_rows(out)] == [1, 2, 3, 4]


def test_a_reward_for_a_fixed_token_goes_up(tiny_model_warm, tmp_path) -> None:
    """Golden trend: favour_the's mean goes from ~0.1 to ~1 in 4 rollout batches (8 off-policy
    updates, seed 0); measured on the reference CPU: [0.115, 0.01, 0.552, 0.99]."""
    from in2x_cli.tiny import load_corpus

    rows = [{"instruction": r["instruction"]} for r in load_corpus("instructions")[:16]]
    prompts = write_jsonl(tmp_path / "p.jsonl", rows)
    out = tmp_path / "out"
    res = invoke(
        [
            "grpo", str(prompts), "--model", str(tiny_model_warm), "--output", str(out),
            "--reward", "tests.train.test_grpo_train:favour_the",
            "-G", "8", "--rollout-batch", "4", "--minibatch", "2", "--batch-size", "8", "--max-steps", "8",
            "--max-completion-tokens", "16", "--lr", "3e-3", "--save-steps", "100", "--report-to", "none",
        ]
    )  # fmt: skip
    assert res.code == 0, res.stderr[-3000:]
    curve = [r["rewards/favour_the/mean"] for r in train_rows(out) if "rewards/favour_the/mean" in r]
    assert len(curve) == 4, curve
    assert curve[0] < 0.3 and curve[-1] > 0.8, curve
    assert curve[-1] - curve[0] > 0.5, curve


def test_num_iterations_reuse_and_kl_to_the_reference(tiny_model_warm, prompts, tmp_path) -> None:
    """--num-iterations 2: the same rollouts are optimised twice, the second pass off-policy; with
    --kl-coef the reference model is scored at each round's temperature too."""
    out = tmp_path / "out"
    res = invoke(
        [
            "grpo", str(prompts), "--model", str(tiny_model_warm), "--output", str(out), "--reward", "language_match",
            "-G", "4", "--rollout-batch", "2", "--minibatch", "2", "--batch-size", "4", "--num-iterations", "2",
            "--max-steps", "4", "--max-completion-tokens", MAX_TOKENS, "--lr", "1e-3", "--report-to", "none",
            "--kl-coef", "0.1", "--temperature-end", "0.5",
        ]
    )  # fmt: skip
    assert res.code == 0, res.stderr[-3000:]
    rows = train_rows(out)
    assert [r.get("sampling/temperature") for r in rows] == [1.0, None, 0.5, None]
    for first, second in (rows[0:2], rows[2:4]):
        assert "completions/mean_length" in first and "completions/mean_length" not in second  # no new rollouts
        assert first["ratio/log_abs_mean"] == 0.0 and second["ratio/log_abs_mean"] > 1e-3
    assert rows[0]["kl"] == 0.0  # policy = reference before the first update
    assert rows[2]["kl"] > 0.0 and rows[3]["kl"] > 0.0
