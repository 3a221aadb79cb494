"""End-to-end Trajectory-Corrected GRPO on the tiny model, on CPU, through the real CLI.

One run (module fixture) exercises everything at once: rule rewards, a translation reward, the
generative judge (scripted), off-policy updates (2 per rollout batch), temperature decay and a
checkpoint every step; the other tests resume from its checkpoints (bit-identical weights) and
check a learning trend.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from in2x_cli.train.rundir import read_metrics
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

    rows = [{"instruction": r["instruction"], "answer": r["answer"]} for r in load_corpus("instructions") if r.get("answer")][:4]
    # open-ended rows (no reference): the only ones the generative judge scores
    rows += [{"instruction": r["instruction"]} for r in load_corpus("instructions") if not r.get("answer")][2:4]
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
    # the scripted judge says principle 1 of 5 is satisfied: reward exactly 0.2, no failures; it
    # skips the rows with a reference (answer / ref: 6 of the 8), at least 2 of each rollout batch's 4 prompts
    judged = [r["rewards/generative_judge/mean"] for r in rows if "rewards/generative_judge/mean" in r]
    assert judged and all(v == pytest.approx(0.2) or math.isnan(v) for v in judged) and not all(map(math.isnan, judged))
    skipped = [r["rewards/generative_judge/not_applicable"] for r in rows if "rewards/generative_judge/not_applicable" in r]
    assert skipped and all(v >= 8 for v in skipped)


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


def test_paper_knobs_together_take_effect(tiny_model_warm, prompts, tmp_path, monkeypatch) -> None:
    """--length-penalty, --reward-clip-high, --ratio-level sequence-mean and --advantage group in one
    run, each checked against what it must produce:

    - length penalty 0:100 is −L/100 for every completion here (L ≤ 12 < 100), so its logged mean is
      exactly −(mean completion length)/100;
    - the clip at 0.1 sits below most totals: a clip fraction > 0 and a shaped mean ≤ 0.1;
    - group advantages and the sequence-mean (GSPO) ratio: the loss and the advantage functions the
      trainer called are recorded, and the logged ratio mean of an off-policy update equals
      mean_i exp(mean_t(log π_θ − log π_old)) recomputed from the recorded log-probabilities."""
    from in2x_cli.core import grpo_loss

    calls: dict[str, list] = {"advantages": [], "loss": []}
    real_group, real_length, real_loss = grpo_loss.group_advantages, grpo_loss.length_corrected_advantages, grpo_loss.tic_grpo_loss

    def group(*a, **kw):
        calls["advantages"].append("group")
        return real_group(*a, **kw)

    def length_corrected(*a, **kw):
        calls["advantages"].append("length-corrected")
        return real_length(*a, **kw)

    def loss(per_token_logps, old, *a, **kw):
        m = a[1].float()
        lw = (per_token_logps.detach() - old) * m
        calls["loss"].append({"level": kw["ratio_level"], "seq_mean": float(((lw.sum(-1) / m.sum(-1)).exp()).mean()), "traj": float(lw.sum(-1).exp().mean())})
        return real_loss(per_token_logps, old, *a, **kw)

    monkeypatch.setattr(grpo_loss, "group_advantages", group)
    monkeypatch.setattr(grpo_loss, "length_corrected_advantages", length_corrected)
    monkeypatch.setattr(grpo_loss, "tic_grpo_loss", loss)
    out = tmp_path / "out"
    res = invoke(
        [
            "grpo", str(prompts), "--model", str(tiny_model_warm), "--output", str(out),
            "--reward", "language_match", "--reward", "tests.train.test_grpo_train:favour_the",
            "-G", "4", "--rollout-batch", "2", "--minibatch", "1", "--batch-size", "4", "--max-steps", "2",
            "--max-completion-tokens", MAX_TOKENS, "--lr", "3e-3", "--report-to", "none", "--seed", "1",
            "--length-penalty", "0:100", "--reward-clip-high", "0.1", "--ratio-level", "sequence-mean", "--advantage", "group",
        ]
    )  # fmt: skip
    assert res.code == 0, res.stderr[-3000:]
    rows = train_rows(out)
    assert [r["step"] for r in rows] == [1, 2]
    first = rows[0]  # the rollout batch's metrics are logged with its first update
    assert first["length_penalty/mean"] == pytest.approx(-first["completions/mean_length"] / 100, abs=1e-6)
    assert first["length_penalty/mean"] < 0
    assert 0 < first["reward_clip/fraction"] <= 1 and first["reward_shaped/mean"] <= 0.1 + 1e-6
    assert calls["advantages"] == ["group"]
    assert [c["level"] for c in calls["loss"]] == ["sequence-mean", "sequence-mean"]
    off_policy = calls["loss"][1]  # second update on the same rollouts
    assert rows[1]["ratio/mean"] == pytest.approx(off_policy["seq_mean"], rel=1e-5)
    assert abs(off_policy["seq_mean"] - off_policy["traj"]) > 1e-4  # the trajectory ratio would differ


def test_token_level_ratio_runs_end_to_end(tiny_model_warm, prompts, tmp_path) -> None:
    """--ratio-level token (plain GRPO): one ratio per token, so the off-policy update logs per-token
    ratio statistics that differ from 1 while the on-policy one is exactly 1."""
    out = tmp_path / "out"
    res = invoke(
        [
            "grpo", str(prompts), "--model", str(tiny_model_warm), "--output", str(out), "--reward", "tests.train.test_grpo_train:favour_the",
            "-G", "4", "--rollout-batch", "2", "--minibatch", "1", "--batch-size", "4", "--max-steps", "2",
            "--max-completion-tokens", MAX_TOKENS, "--lr", "3e-3", "--report-to", "none", "--ratio-level", "token",
        ]
    )  # fmt: skip
    assert res.code == 0, res.stderr[-3000:]
    rows = train_rows(out)
    assert rows[0]["ratio/mean"] == 1.0 and rows[0]["ratio/log_abs_mean"] == 0.0
    assert rows[1]["ratio/log_abs_mean"] > 0 and rows[1]["ratio/min"] < rows[1]["ratio/max"]
    assert json.loads((out / "in2x_provenance.json").read_text())["config"]["ratio_level"] == "token"


class FakeVLLMGeneration:
    """Stands in for TRL's ``VLLMGeneration`` (colocate mode) on CPU: same constructor keywords,
    ``sync_weights`` and ``generate`` contract; it samples with the policy at ``self.temperature``,
    which is the attribute TRL's real engine reads on every ``generate`` call, and returns the
    sampled tokens' log-probabilities (what vLLM reports) for the importance-sampling correction."""

    instances: list[FakeVLLMGeneration] = []

    def __init__(self, model, accelerator, processing_class, **kwargs) -> None:
        self.model, self.kwargs = model, kwargs
        self.temperature = kwargs["temperature"]
        self.max_completion_length = kwargs["max_completion_length"]
        self.pad_id = processing_class.pad_token_id
        self.eos_id = processing_class.convert_tokens_to_ids("<|im_end|>")
        self.temperatures: list[float] = []
        self.syncs = 0
        FakeVLLMGeneration.instances.append(self)

    def sync_weights(self) -> None:
        self.syncs += 1

    def generate(self, prompts, images, num_generations, profiler=None):
        self.temperatures.append(self.temperature)
        completions, logprobs = [], []
        with torch.no_grad():
            for ids in prompts:
                out = self.model.generate(
                    torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), do_sample=True,
                    temperature=self.temperature, top_p=1.0, top_k=0, max_new_tokens=self.max_completion_length,
                    eos_token_id=self.eos_id, pad_token_id=self.pad_id, output_scores=True, return_dict_in_generate=True,
                )  # fmt: skip
                new = out.sequences[0, len(ids) :].tolist()
                if self.eos_id in new:
                    new = new[: new.index(self.eos_id) + 1]
                completions.append(new)
                logprobs.append([[float(torch.log_softmax(s[0].float(), -1)[t])] for s, t in zip(out.scores, new, strict=False)])
        return prompts, completions, logprobs, None


def test_vllm_rollout_path_with_a_fake_engine(tiny_model_warm, prompts, tmp_path, monkeypatch) -> None:
    """--rollout-engine vllm on CPU: TRL's vLLM generation class is replaced by a fake engine. The
    config reaches it (colocate, --vllm-gpu-memory), the decaying temperature is set on
    the engine before each rollout round (our ``_set_sampling_temperature`` vLLM branch), weights
    are synced, and TRL's sampler-mismatch weights reach the loss."""
    import trl.trainer.grpo_trainer as trl_grpo

    from in2x_cli.train import grpo as grpo_module

    FakeVLLMGeneration.instances.clear()
    monkeypatch.setattr(trl_grpo, "VLLMGeneration", FakeVLLMGeneration)
    monkeypatch.setattr(grpo_module, "vllm_available", lambda: True)
    out = tmp_path / "out"
    res = invoke(
        [
            "grpo", str(prompts), "--model", str(tiny_model_warm), "--output", str(out), "--reward", "tests.train.test_grpo_train:favour_the",
            "--rollout-engine", "vllm", "--vllm-gpu-memory", "0.25",
            "-G", "4", "--rollout-batch", "2", "--minibatch", "1", "--batch-size", "4", "--max-steps", "4",
            "--max-completion-tokens", MAX_TOKENS, "--lr", "1e-3", "--temperature-start", "1.0", "--temperature-end", "0.5",
            "--report-to", "none",
        ]
    )  # fmt: skip
    assert res.code == 0, res.stderr[-3000:]
    assert "rollouts by vLLM (colocate)" in res.stderr
    (engine,) = FakeVLLMGeneration.instances
    assert engine.kwargs["mode"] == "colocate" and engine.kwargs["gpu_memory_utilization"] == 0.25
    assert engine.temperatures == [1.0, 0.5]  # what the engine sampled each rollout round with
    assert engine.syncs >= 2  # new policy weights pushed before each round
    rows = train_rows(out)
    assert [r.get("sampling/temperature") for r in rows] == [1.0, None, 0.5, None]
    prov = json.loads((out / "in2x_provenance.json").read_text())
    assert prov["rollout_engine"] == "vllm"
    assert any(k.startswith("sampling/importance_sampling_ratio") or k.startswith("sampling/sampling_logp_difference") for k in set().union(*rows)), set().union(*rows)
