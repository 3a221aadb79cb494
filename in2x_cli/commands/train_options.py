"""Typer options shared by the training commands (cpt, sft, grpo), spelled the same everywhere.

Not a subcommand (``cli.COMMAND_MODULES`` does not list it). Use as parameter defaults::

    def sft(ctx: typer.Context, ..., output: Path = opts.output_option(),
            resume: bool = opts.resume_option(), launcher: str = opts.launcher_option(), ...):
        spec = opts.launch_spec(launcher, launch_config, ...)
        rc = maybe_launch(spec, ctx, "sft")        # from in2x_cli.train.launch
        if rc is not None: return rc

Light imports only (typer, pathlib).
"""

from __future__ import annotations

from pathlib import Path

import typer

from in2x_cli.train.launch import LaunchSpec


def output_option() -> Path:
    return typer.Option(
        ..., "--output", "-o",
        help="Run directory: checkpoints (checkpoint-N/), metrics.jsonl, TensorBoard runs/ and, at the end, the final HF model.",
    )  # fmt: skip


def resume_option() -> bool:
    return typer.Option(False, "--resume", help="Continue from the newest complete checkpoint-N in --output (bit-identical to an uninterrupted run on CPU).")


def overwrite_option() -> bool:
    return typer.Option(False, "--overwrite", help="Delete an existing --output directory and start over.")


def save_steps_option(default: int = 500) -> int:
    return typer.Option(default, "--save-steps", min=1, help="Save a resumable checkpoint every N optimizer steps (and at the end).")


def save_total_limit_option(default: int = 3) -> int:
    return typer.Option(default, "--save-total-limit", min=0, help="Keep at most this many checkpoints (0 = keep all).")


def logging_steps_option(default: int = 10) -> int:
    return typer.Option(default, "--logging-steps", min=1, help="Write metrics.jsonl / TensorBoard every N steps.")


def precision_option() -> str:
    return typer.Option(
        "auto", "--precision",
        help="auto (bf16 on a bf16 GPU, fp16 on older GPUs, fp32 on CPU), fp32, bf16, fp16. Mixed precision: master weights stay fp32.",
    )  # fmt: skip


def device_option() -> str:
    return typer.Option("auto", "--device", help="auto (CUDA when visible), cpu or cuda.")


def report_to_option() -> str:
    return typer.Option("tensorboard", "--report-to", help="Comma-separated Trainer integrations (tensorboard, wandb, ...) or none. metrics.jsonl is always written.")


def batch_size_option(default: int) -> int:
    return typer.Option(default, "--batch-size", min=1, help="Sequences (or packed rows) per device per micro-step.")


def grad_accum_option(default: int = 1) -> int:
    return typer.Option(default, "--grad-accum", min=1, help="Gradient accumulation steps per optimizer step.")


def max_shard_size_option() -> str:
    return typer.Option("5GB", "--max-shard-size", help="Largest safetensors shard of the final model (e.g. 5GB, 500MB).")


def gradient_checkpointing_option() -> bool:
    return typer.Option(False, "--gradient-checkpointing", help="Recompute activations in the backward pass (less memory, ~30% slower).")


def launcher_option() -> str:
    return typer.Option(
        "none", "--launcher",
        help="none (train in this process: CPU or one GPU), accelerate or torchrun (re-run this command on every GPU).",
    )  # fmt: skip


def launch_config_option() -> str:
    return typer.Option(
        "single", "--launch-config",
        help="single, fsdp2 (FSDP2 full sharding), zero3 (DeepSpeed ZeRO-3), or a path to an accelerate YAML (shipped under recipes/accelerate/; a custom YAML needs --launcher accelerate).",
    )  # fmt: skip


def num_processes_option() -> int | None:
    return typer.Option(None, "--num-processes", help="Total processes over all machines (default: visible GPUs x --num-machines).")


def num_machines_option() -> int:
    return typer.Option(1, "--num-machines", min=1, help="Machines (nodes) in a multi-node run; run the same command on each.")


def machine_rank_option() -> int:
    return typer.Option(0, "--machine-rank", min=0, help="This machine's rank in a multi-node run (0 = the main machine).")


def main_process_ip_option() -> str | None:
    return typer.Option(None, "--main-process-ip", help="Address of machine rank 0 (multi-node).")


def main_process_port_option() -> int:
    return typer.Option(29500, "--main-process-port", help="Rendezvous port on machine rank 0 (multi-node).")


def print_launch_option() -> bool:
    return typer.Option(False, "--print-launch", help="Print the launcher command line on stdout and exit without training.")


def launch_spec(
    launcher: str,
    launch_config: str,
    num_processes: int | None,
    num_machines: int,
    machine_rank: int,
    main_process_ip: str | None,
    main_process_port: int,
    print_launch: bool,
) -> LaunchSpec:
    return LaunchSpec(
        launcher=launcher,
        config=launch_config,
        num_processes=num_processes,
        num_machines=num_machines,
        machine_rank=machine_rank,
        main_process_ip=main_process_ip,
        main_process_port=main_process_port,
        print_only=print_launch,
    )
