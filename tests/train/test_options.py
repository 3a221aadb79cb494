"""TrainOptions: the shared training knobs, each choice checked once, and the schedules they name."""

from __future__ import annotations

import math

import pytest

from in2x_cli.errors import UserError
from in2x_cli.train.options import LR_SCHEDULERS, TrainOptions


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # 10 steps, 2 warm-up steps, peak 1.0; lr used at step k (0-based)
        ("constant", [0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
        ("linear", [0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]),
        ("cosine", [0.0, 0.5] + [0.5 * (1 + math.cos(math.pi * (k - 2) / 8)) for k in range(2, 10)]),
    ],
)
def test_lr_schedule_shapes(schedule, expected):
    import torch
    from transformers import get_scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = get_scheduler(LR_SCHEDULERS[schedule], opt, num_warmup_steps=2, num_training_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx(expected, abs=1e-9)


def test_every_scheduler_is_a_transformers_one():
    from transformers import SchedulerType

    assert {SchedulerType(v) for v in LR_SCHEDULERS.values()}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": "fp8"}, "unknown --precision 'fp8'"),
        ({"device": "tpu"}, "unknown --device 'tpu'"),
        ({"lr_scheduler_type": "step"}, "unknown --lr-scheduler-type 'step'"),
        ({"warmup_steps": 2.5}, "--warmup-steps must be a whole number of steps or a fraction"),
    ],
)
def test_train_options_check_their_choices(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        TrainOptions(output_dir=tmp_path, **kwargs)
    assert TrainOptions(output_dir=tmp_path, warmup_steps=5).warmup_steps == 5


@pytest.mark.parametrize("checkpointing", [False, True])
def test_training_arguments_build_on_the_installed_transformers(tmp_path, checkpointing):
    """Every keyword we pass exists in the installed transformers (5.5.1 … 5.24: `make test-lowest`
    runs this against 5.5.1), and checkpointing is set as asked on TRL's configs too (default True)."""
    import warnings

    from transformers import TrainingArguments
    from trl import GRPOConfig, SFTConfig

    from in2x_cli.train.options import common_training_args

    opts = TrainOptions(output_dir=tmp_path, device="cpu", report_to=("none",), gradient_checkpointing=checkpointing, warmup_steps=0.1)
    for cls, extra in ((TrainingArguments, {}), (SFTConfig, {}), (GRPOConfig, {"num_generations": 2, "per_device_train_batch_size": 2})):
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # no deprecated alias on any version
            args = cls(**{**common_training_args(opts), **extra})
        assert args.gradient_checkpointing is checkpointing
        assert args.warmup_steps == 0.1
