"""The options every training command shares (``TrainOptions``), checked once here, and the
``TrainingArguments`` keywords they become."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from in2x_cli.errors import UserError
from in2x_cli.train.devices import DEVICES, PRECISIONS, select_device, select_precision
from in2x_cli.train.launch import distributed_training_args

# --lr-scheduler-type → transformers' get_scheduler name; the warm-up is linear in all of them.
# "constant" holds the peak after the warm-up (with no warm-up: transformers' "constant").
LR_SCHEDULERS = {
    "constant": "constant_with_warmup",
    "linear": "linear",
    "cosine": "cosine",
    "cosine_with_restarts": "cosine_with_restarts",
    "polynomial": "polynomial",
    "inverse_sqrt": "inverse_sqrt",
    "constant_with_warmup": "constant_with_warmup",
}


@dataclass(frozen=True)
class TrainOptions:
    """Knobs every training command shares (the command builds it from its CLI options).

    ``precision``: ``auto`` (bf16 on a GPU that supports it, else fp16 on GPU, fp32 on CPU), ``fp32``,
    ``bf16`` or ``fp16`` (mixed precision: master weights stay fp32).
    ``device``: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    ``report_to``: integrations for ``TrainingArguments.report_to`` (``tensorboard``; ``none`` = off).
    ``lr_scheduler_type``: a key of ``LR_SCHEDULERS``, after a linear warm-up of ``warmup_steps``
    (transformers' meaning: steps, or a fraction of the run when below 1).
    ``max_steps``: stop after this many optimizer steps (None: the stage's own length).
    ``launch_config``: the ``--launch-config`` this process runs under (see ``launch.py``).
    """

    output_dir: Path
    seed: int = 0
    resume: bool = False
    overwrite: bool = False
    save_steps: int = 500
    save_total_limit: int | None = 3
    logging_steps: int = 10
    precision: str = "auto"
    device: str = "auto"
    report_to: tuple[str, ...] = ("tensorboard",)
    max_shard_size: str = "5GB"
    gradient_checkpointing: bool = False
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-5
    lr_scheduler_type: str = "constant"
    warmup_steps: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_steps: int | None = None
    launch_config: str = "single"
    trust_remote_code: bool = False
    extra_args: dict[str, Any] = field(default_factory=dict)  # passed through to TrainingArguments

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown --precision {self.precision!r} (expected auto, fp32, bf16 or fp16)")
        if self.device not in DEVICES:
            raise UserError(f"unknown --device {self.device!r} (expected auto, cpu or cuda)")
        if self.lr_scheduler_type not in LR_SCHEDULERS:
            raise UserError(f"unknown --lr-scheduler-type {self.lr_scheduler_type!r} (expected {', '.join(LR_SCHEDULERS)})")
        if not (0 <= self.warmup_steps < 1 or float(self.warmup_steps).is_integer()):
            raise UserError(f"--warmup-steps must be a whole number of steps or a fraction of the run in [0, 1), got {self.warmup_steps}")


def seed_everything(seed: int) -> None:
    """Python, numpy and torch RNGs (all devices). The Trainer re-seeds with the same value."""
    from transformers import set_seed

    set_seed(seed)


def disable_hub_telemetry() -> None:
    """TRL's trainers report each run to huggingface.co from a background thread (huggingface_hub
    ``send_telemetry``) even when every path is local; a training job should not reach the network
    unasked. Off unless ``HF_HUB_DISABLE_TELEMETRY`` is set explicitly (then it is respected)."""
    if "HF_HUB_DISABLE_TELEMETRY" in os.environ:
        return
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"  # launched processes and a later import
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover
        return
    constants.HF_HUB_DISABLE_TELEMETRY = True  # read at import time: already imported here


def checkpointing_args(enabled: bool) -> dict[str, Any]:
    """Activation (gradient) checkpointing, spelled for the installed transformers: the field is
    ``gradient_checkpointing`` across the whole supported range (5.5.1+, what vLLM allows), and
    ``activation_checkpointing`` from 5.23 on, where the old name is a deprecated alias. Set
    explicitly either way: TRL's configs default it to True."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {key: enabled}


def common_training_args(opts: TrainOptions) -> dict[str, Any]:
    """Keyword arguments for ``TrainingArguments`` / ``SFTConfig`` / ``GRPOConfig`` shared by all stages
    (the optimizer and its schedule, batches, checkpoints, logging, precision, the launch config's
    sharding). A stage adds its own (epochs, lengths) and may override ``max_steps``.

    Logging goes to ``metrics.jsonl`` (our callback) and TensorBoard under ``<out>/runs``;
    transformers' own tqdm/print logging is off (stdout is data). Checkpoints every
    ``save_steps`` steps keep optimizer, scheduler and RNG state so ``--resume`` is exact.
    """
    disable_hub_telemetry()
    device = select_device(opts.device)
    precision = select_precision(opts.precision, device)
    report = [r for r in opts.report_to if r and r != "none"]
    args: dict[str, Any] = {
        "output_dir": str(opts.output_dir),
        "seed": opts.seed,
        "data_seed": opts.seed,
        "per_device_train_batch_size": opts.per_device_batch_size,
        "gradient_accumulation_steps": opts.gradient_accumulation_steps,
        "logging_steps": opts.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": opts.save_steps,
        "save_total_limit": opts.save_total_limit,
        "report_to": report or "none",
        "disable_tqdm": True,
        "use_cpu": device == "cpu",
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        **checkpointing_args(opts.gradient_checkpointing),
        "dataloader_num_workers": 0,
        "include_num_input_tokens_seen": "non_padding",
        "remove_unused_columns": False,
        "push_to_hub": False,
        "max_steps": opts.max_steps or -1,
        "learning_rate": opts.learning_rate,
        "lr_scheduler_type": LR_SCHEDULERS[opts.lr_scheduler_type],
        "warmup_steps": opts.warmup_steps,
        "weight_decay": opts.weight_decay,
        "max_grad_norm": opts.max_grad_norm,
        **distributed_training_args(opts.launch_config),
    }
    args.update(opts.extra_args)
    return args
