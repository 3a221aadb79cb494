"""The training commands' one flag vocabulary (commands/train_options.py): transformers' names,
the old spellings as hidden aliases for one release, and the shared options reaching TrainOptions."""

from __future__ import annotations

import pytest

from tests.util import assert_user_error, invoke

RUNS = {"cpt": "in2x_cli.train.cpt.run_cpt", "sft": "in2x_cli.train.sft.run_sft", "grpo": "in2x_cli.train.grpo.run_grpo"}


def _train_options(command, flags, monkeypatch, tmp_path):
    """Run the command up to its stage (replaced by a recorder) and return its TrainOptions."""
    seen = []
    monkeypatch.setattr(RUNS[command], lambda cfg: seen.append(cfg) or {"steps": 0, "tokens_seen": 0})
    inputs = {"cpt": ["--data", "d.jsonl", "--max-steps", "3"], "sft": ["d.jsonl"], "grpo": ["p.jsonl", "--reward", "math_exact"]}[command]
    res = invoke([command, *inputs, "--model", "m", "-o", str(tmp_path / "o"), *flags])
    assert res.code == 0, res.stderr
    return seen[0].train


@pytest.mark.parametrize("command", ["cpt", "sft", "grpo"])
def test_one_vocabulary_and_the_old_spellings(command, monkeypatch, tmp_path):
    new = _train_options(command, ["--learning-rate", "0.5", "--lr-scheduler-type", "linear", "--warmup-steps", "0.25"], monkeypatch, tmp_path)
    assert (new.learning_rate, new.lr_scheduler_type, new.warmup_steps) == (0.5, "linear", 0.25)
    old_scheduler = "--lr-scheduler" if command == "grpo" else "--lr-schedule"
    old = _train_options(command, ["--lr", "0.5", old_scheduler, "linear", "--warmup-ratio", "0.25"], monkeypatch, tmp_path)
    assert old == new
    steps = _train_options(command, ["--warmup-steps", "7", "--weight-decay", "0.1", "--save-total-limit", "0", "--report-to", "tensorboard, wandb"], monkeypatch, tmp_path)
    assert (steps.warmup_steps, steps.weight_decay, steps.save_total_limit, steps.report_to) == (7, 0.1, None, ("tensorboard", "wandb"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr-schedule", "linear", "--lr-scheduler-type", "cosine"], "--lr-schedule is the old spelling of --lr-scheduler-type"),
        (["--warmup-ratio", "0.1", "--warmup-steps", "3"], "--warmup-ratio is the old spelling of --warmup-steps"),
        (["--warmup-ratio", "1.5"], "--warmup-ratio must be in [0, 1)"),
        (["--lr-scheduler-type", "step"], "unknown --lr-scheduler-type 'step'"),
        (["--precision", "fp8"], "unknown --precision 'fp8'"),
    ],
)
def test_shared_options_are_checked_before_anything_runs(tmp_path, flags, message):
    res = invoke(["sft", str(tmp_path / "missing.jsonl"), "--model", "m", "-o", str(tmp_path / "o"), *flags])
    assert_user_error(res, message)


def test_old_spellings_are_hidden():
    text = " ".join(invoke(["sft", "--help"]).stdout.split())
    assert "--lr-scheduler-type" in text and "--warmup-steps" in text and "--learning-rate, --lr" in text
    assert "--lr-schedule " not in text and "--warmup-ratio" not in text
