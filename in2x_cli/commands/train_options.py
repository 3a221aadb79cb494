"""The options the training commands (cpt, sft, grpo) share, declared once.

``@training_command(TrainDefaults(...))`` adds them to a command's parameters (``--output`` next to
``--model``, the rest after the command's own) and hands the command two frozen values built from
them instead: ``train`` (``train.options.TrainOptions``, which
checks every choice) and ``launch`` (``train.launch.LaunchSpec``)::

    @training_command(TrainDefaults(batch_size=4, learning_rate=2e-5, ...))
    def sft(ctx: typer.Context, data: ..., *, train: TrainOptions, launch: LaunchSpec) -> int | None:
        cfg = SftConfig(..., train=train)
        return launch_or_train(ctx, "sft", launch, train.output_dir, lambda: summary(run_sft(cfg)))

One flag vocabulary, transformers' ``TrainingArguments`` names where the commands used to differ:
``--learning-rate`` (short ``--lr``), ``--lr-scheduler-type``, ``--warmup-steps`` (steps, or a
fraction of the run below 1). The old spellings ``--lr-schedule`` (cpt, sft), ``--lr-scheduler``
(grpo) and ``--warmup-ratio`` (sft, grpo) are hidden aliases, kept for one release.

Not a subcommand (``cli.COMMAND_MODULES`` does not list it). Light imports only.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from in2x_cli.commands.common import seed_option, trust_remote_code_option
from in2x_cli.errors import UserError
from in2x_cli.train.launch import LAUNCH_PARAM_NAMES, LaunchSpec, was_given
from in2x_cli.train.options import LR_SCHEDULERS, TrainOptions

ALIASES = {"lr_schedule": "lr_scheduler_type", "lr_scheduler": "lr_scheduler_type", "warmup_ratio": "warmup_steps"}


@dataclass(frozen=True)
class TrainDefaults:
    """A command's defaults for the shared options, and what the paper says about them (help text)."""

    batch_size: int
    learning_rate: float
    learning_rate_note: str
    lr_scheduler_type: str
    lr_scheduler_note: str
    warmup_steps: float
    warmup_note: str
    max_steps_note: str
    grad_accum: bool = True  # grpo derives the accumulation from --minibatch
    save_steps: int = 500
    logging_steps: int = 10


def shared_parameters(d: TrainDefaults) -> list[inspect.Parameter]:
    """The shared options as keyword parameters of a typer command, in --help order."""
    opt = typer.Option
    others = ", ".join(k for k in LR_SCHEDULERS if k not in ("constant", "linear", "cosine"))
    spec: list[tuple[str, Any, Any]] = [
        ("output_dir", Path, opt(..., "--output", "-o", help="Run directory: checkpoints (checkpoint-N/), metrics.jsonl, TensorBoard runs/ and, at the end, the final HF model.")),
        ("learning_rate", float, opt(d.learning_rate, "--learning-rate", "--lr", help=f"Peak learning rate ({d.learning_rate_note}).")),
        ("lr_scheduler_type", str, opt(d.lr_scheduler_type, "--lr-scheduler-type", help=f"LR schedule after the linear warm-up: constant, linear or cosine; also {others} ({d.lr_scheduler_note}).")),
        ("warmup_steps", float, opt(d.warmup_steps, "--warmup-steps", min=0.0, help=f"Linear warm-up: optimizer steps, or a fraction of all steps when below 1 ({d.warmup_note}).")),
        ("weight_decay", float, opt(0.0, "--weight-decay", help="AdamW weight decay (paper silent).")),
        ("max_steps", int | None, opt(None, "--max-steps", min=1, help=f"Stop after N optimizer steps; the LR schedule spans N ({d.max_steps_note}).")),
        ("per_device_batch_size", int, opt(d.batch_size, "--batch-size", min=1, help="Sequences (or packed rows) per device per micro-step.")),
        *([("gradient_accumulation_steps", int, opt(1, "--grad-accum", min=1, help="Gradient accumulation steps per optimizer step."))] if d.grad_accum else []),
        ("seed", int, seed_option()),
        ("save_steps", int, opt(d.save_steps, "--save-steps", min=1, help="Save a resumable checkpoint every N optimizer steps (and at the end).")),
        ("save_total_limit", int, opt(3, "--save-total-limit", min=0, help="Keep at most this many checkpoints (0 = keep all).")),
        ("logging_steps", int, opt(d.logging_steps, "--logging-steps", min=1, help="Write metrics.jsonl / TensorBoard every N steps.")),
        ("resume", bool, opt(False, "--resume", help="Continue from the newest complete checkpoint-N in --output (bit-identical to an uninterrupted run on CPU).")),
        ("overwrite", bool, opt(False, "--overwrite", help="Delete an existing --output directory and start over.")),
        ("precision", str, opt("auto", "--precision", help="auto (bf16 on a bf16 GPU, fp16 on older GPUs, fp32 on CPU), fp32, bf16, fp16. Mixed precision: master weights stay fp32.")),
        ("device", str, opt("auto", "--device", help="auto (CUDA when visible), cpu or cuda.")),
        ("report_to", str, opt("tensorboard", "--report-to", help="Comma-separated Trainer integrations (tensorboard, wandb, ...) or none. metrics.jsonl is always written.")),
        ("gradient_checkpointing", bool, opt(False, "--gradient-checkpointing", help="Recompute activations in the backward pass (less memory, ~30% slower).")),
        ("max_shard_size", str, opt("5GB", "--max-shard-size", help="Largest safetensors shard of the final model (e.g. 5GB, 500MB).")),
        ("trust_remote_code", bool, trust_remote_code_option()),
        ("launcher", str, opt("none", "--launcher", help="none (train in this process: CPU or one GPU), accelerate or torchrun (re-run this command on every GPU).")),
        ("launch_config", str, opt("single", "--launch-config", help="single, fsdp2 (FSDP2 full sharding), zero3 (DeepSpeed ZeRO-3), or a path to an accelerate YAML (shipped under recipes/accelerate/; a custom YAML needs --launcher accelerate).")),
        ("num_processes", int | None, opt(None, "--num-processes", help="Total processes over all machines (default: visible GPUs x --num-machines).")),
        ("num_machines", int, opt(1, "--num-machines", min=1, help="Machines (nodes) in a multi-node run; run the same command on each.")),
        ("machine_rank", int, opt(0, "--machine-rank", min=0, help="This machine's rank in a multi-node run (0 = the main machine).")),
        ("main_process_ip", str | None, opt(None, "--main-process-ip", help="Address of machine rank 0 (multi-node).")),
        ("main_process_port", int, opt(29500, "--main-process-port", help="Rendezvous port on machine rank 0 (multi-node).")),
        ("print_launch", bool, opt(False, "--print-launch", help="Print the launcher command line on stdout and exit without training.")),
        ("lr_schedule", str | None, opt(None, "--lr-schedule", hidden=True)),
        ("lr_scheduler", str | None, opt(None, "--lr-scheduler", hidden=True)),
        ("warmup_ratio", float | None, opt(None, "--warmup-ratio", hidden=True)),
    ]  # fmt: skip
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=tp) for name, tp, default in spec]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve_aliases(ctx: Any, values: dict[str, Any]) -> None:
    """Move the old spellings' values onto the new options (in place); giving both is an error."""
    aliased: set[str] = set()
    for old, new in ALIASES.items():
        value = values.pop(old, None)
        if value is None:
            continue
        if was_given(ctx, new) or new in aliased:
            raise UserError(f"{_flag(old)} is the old spelling of {_flag(new)}: give one of them")
        if old == "warmup_ratio" and not 0 <= value < 1:
            raise UserError(f"--warmup-ratio must be in [0, 1), got {value}")
        values[new] = value
        aliased.add(new)


def build(ctx: Any, values: dict[str, Any]) -> tuple[TrainOptions, LaunchSpec]:
    """``TrainOptions`` and ``LaunchSpec`` from the shared options' values (named as their fields)."""
    resolve_aliases(ctx, values)
    launch = {k: values.pop(k) for k in LAUNCH_PARAM_NAMES if k != "launch_config"}
    spec = LaunchSpec(config=values["launch_config"], print_only=launch.pop("print_launch"), **launch)
    values["report_to"] = tuple(r.strip() for r in values["report_to"].split(","))
    values["save_total_limit"] = values["save_total_limit"] or None  # 0 = keep all
    return TrainOptions(**values), spec


def training_command(defaults: TrainDefaults) -> Callable[[Callable[..., int | None]], Callable[..., int | None]]:
    """Give a command the shared options: typer sees the command's own parameters, ``--output``
    right after ``--model`` (input and output side by side), then the rest of
    ``shared_parameters(defaults)``; the command receives ``train=`` and ``launch=`` built from them."""

    def decorate(fn: Callable[..., int | None]) -> Callable[..., int | None]:
        own = inspect.signature(fn)
        params = [p for p in own.parameters.values() if p.name not in ("train", "launch")]
        shared = shared_parameters(defaults)
        names = {p.name for p in shared}

        @functools.wraps(fn)
        def command(ctx: typer.Context, **kwargs: Any) -> int | None:
            train, launch = build(ctx, {n: kwargs.pop(n) for n in names})
            return fn(ctx, **kwargs, train=train, launch=launch)

        output = next(p for p in shared if p.name == "output_dir").replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
        at = [p.name for p in params].index("model") + 1
        everything = [*params[:at], output, *params[at:], *(p for p in shared if p.name != "output_dir")]
        command.__signature__ = own.replace(parameters=everything)  # type: ignore[attr-defined]
        command.__annotations__ = {**{p.name: p.annotation for p in everything}, "return": own.return_annotation}
        return command

    return decorate
