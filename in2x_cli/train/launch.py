"""Run a training command under a distributed launcher: ``accelerate launch`` or ``torchrun``.

``in2x sft ... --launcher accelerate --launch-config fsdp2`` re-executes itself as::

    accelerate launch --config_file recipes/accelerate/fsdp2.yaml --num_processes 8 \\
        -m in2x_cli sft ... --launcher none --launch-config fsdp2

Every process then runs the ordinary single-process code path; transformers' Trainer picks the
distributed setup up from the launcher's environment. ``--print-launch`` prints the command
instead of running it. The default, ``--launcher none``, trains in this process (CPU or one GPU).

Launch configs (``--launch-config NAME`` or a path to an accelerate YAML):

- ``single``: one process, no sharding (``recipes/accelerate/single.yaml``).
- ``fsdp2``: PyTorch FSDP2, full sharding of parameters, gradients and optimizer state, transformer
  block auto-wrap, bf16 (``recipes/accelerate/fsdp2.yaml``).
- ``zero3``: DeepSpeed ZeRO-3 (``recipes/accelerate/zero3.yaml``; needs ``pip install deepspeed``,
  part of ``in2x[gpu]``).

With ``torchrun`` there is no YAML to read, so the child receives the same choice as
``TrainingArguments`` (``fsdp``/``fsdp_config`` or ``deepspeed`` = ``recipes/deepspeed/zero3.json``),
see ``distributed_training_args``. A custom YAML therefore needs ``--launcher accelerate``; with
torchrun it is refused (exit 2) instead of silently training without its sharding.

Multi-node (run the same command on every node, changing only ``--machine-rank``)::

    in2x sft --model M --data d.jsonl --output out \\
        --launcher accelerate --launch-config fsdp2 \\
        --num-machines 2 --machine-rank 0 --main-process-ip 10.0.0.1 --main-process-port 29500
    # → accelerate launch --config_file recipes/accelerate/fsdp2.yaml --num_machines 2 \\
    #     --machine_rank 0 --main_process_ip 10.0.0.1 --main_process_port 29500 \\
    #     --num_processes 16 -m in2x_cli sft ...      (num_processes = GPUs per node × nodes)

This module imports nothing heavy at module level (command modules import it).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from in2x_cli.errors import UserError

LAUNCHERS = ("none", "accelerate", "torchrun")
LAUNCH_CONFIGS = ("single", "fsdp2", "zero3")

# Options that belong to the launcher, stripped from the child's command line.
LAUNCH_PARAM_NAMES = (
    "launcher",
    "launch_config",
    "num_processes",
    "num_machines",
    "machine_rank",
    "main_process_ip",
    "main_process_port",
    "print_launch",
)


def recipes_dir() -> Path:
    """The directory holding ``accelerate/*.yaml`` and ``deepspeed/*.json``: shipped inside the package
    (``in2x_cli/data/launch``, package data, so a wheel install finds them; ``recipes/accelerate`` and
    ``recipes/deepspeed`` in a checkout link there). ``IN2X_RECIPES`` overrides."""
    env = os.environ.get("IN2X_RECIPES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "data" / "launch"


def resolve_launch_config(name: str) -> Path:
    """A shipped config name (``single``/``fsdp2``/``zero3``) or a path to an accelerate YAML."""
    if name in LAUNCH_CONFIGS:
        path = recipes_dir() / "accelerate" / f"{name}.yaml"
        if not path.is_file():
            raise UserError(f"launch config {name!r} not found at {path} (a broken install? IN2X_RECIPES overrides the directory)")
        return path
    path = Path(name)
    if not path.is_file():
        raise UserError(f"unknown launch config (expected {', '.join(LAUNCH_CONFIGS)} or a YAML file)", name)
    return path


@dataclass(frozen=True)
class LaunchSpec:
    """How to run: in this process (``none``) or re-executed under a launcher."""

    launcher: str = "none"
    config: str = "single"
    num_processes: int | None = None  # total processes (all nodes); default: visible GPUs × machines
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int = 29500
    print_only: bool = False

    def validate(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise UserError(f"unknown --launcher {self.launcher!r} (expected {', '.join(LAUNCHERS)})")
        if self.num_machines < 1 or not 0 <= self.machine_rank < self.num_machines:
            raise UserError(f"--machine-rank must be in [0, {self.num_machines}) (got {self.machine_rank})")
        if self.num_machines > 1 and not self.main_process_ip:
            raise UserError("--num-machines > 1 needs --main-process-ip (the address of machine rank 0)")
        if self.num_processes is not None and self.num_processes < 1:
            raise UserError("--num-processes must be >= 1")


def visible_gpus() -> int:
    """GPUs this node would use (CUDA_VISIBLE_DEVICES, else torch's count; 0 without CUDA)."""
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        return len([d for d in cvd.split(",") if d.strip() and d.strip() != "-1"])
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:  # pragma: no cover
        return 0


def build_launch_command(spec: LaunchSpec, child_args: list[str], *, python: str | None = None) -> list[str]:
    """The launcher command line that re-runs ``python -m in2x_cli CHILD_ARGS`` on every process.

    ``child_args`` is the command and its options without launcher options; ``--launcher none
    --launch-config <config>`` is appended so that children run in-process and know the config.
    """
    spec.validate()
    if spec.launcher == "none":
        raise UserError("build_launch_command needs --launcher accelerate or torchrun")
    per_node = visible_gpus() or 1
    total = spec.num_processes or per_node * spec.num_machines
    if total % spec.num_machines:
        raise UserError(f"--num-processes {total} is not divisible by --num-machines {spec.num_machines}")
    child = [*child_args, "--launcher", "none", "--launch-config", spec.config]
    if spec.launcher == "accelerate":
        cfg = resolve_launch_config(spec.config)
        cmd = [python or sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(cfg), "--num_processes", str(total)]
        if spec.num_machines > 1:
            cmd += [
                "--num_machines", str(spec.num_machines),
                "--machine_rank", str(spec.machine_rank),
                "--main_process_ip", str(spec.main_process_ip),
                "--main_process_port", str(spec.main_process_port),
            ]  # fmt: skip
        return [*cmd, "-m", "in2x_cli", *child]
    # torchrun: one agent per node; the distributed config travels as TrainingArguments
    resolve_launch_config(spec.config)  # fail early on a bad name
    _check_torchrun_config(spec.config)
    cmd = [python or sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(total // spec.num_machines)]
    if spec.num_machines > 1:
        cmd += [
            "--nnodes", str(spec.num_machines),
            "--node-rank", str(spec.machine_rank),
            "--master-addr", str(spec.main_process_ip),
            "--master-port", str(spec.main_process_port),
        ]  # fmt: skip
    else:
        cmd += ["--standalone"]
    return [*cmd, "-m", "in2x_cli", *child]


def was_given(ctx: Any, name: str) -> bool:
    """Whether the user set parameter ``name`` (on the command line or in the environment)."""
    try:
        from typer._click.core import ParameterSource
    except ImportError:  # pragma: no cover
        from click.core import ParameterSource  # type: ignore[no-redef]

    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def child_args_from_context(ctx: Any, command: str) -> list[str]:
    """Rebuild ``COMMAND OPTIONS...`` from a click/typer context: every parameter the user set
    (defaults are left out), minus the launcher's own options; global ``-q``/``-v`` come first."""
    from in2x_cli import console

    args: list[str] = []
    level = console.verbosity()
    if level == 0:
        args.append("--quiet")
    elif level >= 2:
        args.append("--verbose")
    args.append(command)
    positional: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if name in LAUNCH_PARAM_NAMES or name not in ctx.params:
            continue
        value = ctx.params[name]
        if param.param_type_name == "argument":
            values = value if isinstance(value, (list, tuple)) else [value]
            positional += [str(v) for v in values if v is not None]
            continue
        if not was_given(ctx, name) or value is None:
            continue
        if getattr(param, "is_flag", False) and isinstance(value, bool):
            if value:
                args.append(param.opts[0])
            elif param.secondary_opts:
                args.append(param.secondary_opts[0])
            continue
        values = value if getattr(param, "multiple", False) else [value]
        for v in values:
            args += [param.opts[0], _stringify(v)]
    return [*args, *positional]


def _stringify(value: Any) -> str:
    if hasattr(value, "value") and not isinstance(value, (str, int, float)):
        return str(value.value)  # enums
    return str(value)


def maybe_launch(spec: LaunchSpec, ctx: Any, command: str) -> int | None:
    """Re-execute under the launcher (returns its exit status), print the command
    (``--print-launch``, returns 0), or return None to train in this process."""
    spec.validate()
    if spec.launcher == "none":
        if spec.print_only:
            raise UserError("--print-launch needs --launcher accelerate or torchrun")
        return None
    cmd = build_launch_command(spec, child_args_from_context(ctx, command))
    if spec.print_only:
        sys.stdout.write(shlex.join(cmd) + "\n")
        return 0
    from in2x_cli import console

    console.info("launch: " + shlex.join(cmd))
    try:
        proc = subprocess.run(cmd)
    except FileNotFoundError as exc:
        raise UserError(f"cannot start the launcher: {exc}") from None
    return proc.returncode


def launch_or_train(ctx: Any, command: str, spec: LaunchSpec, output_dir: Path, train: Callable[[], str | None]) -> int | None:
    """The launch block of every training command: re-run under the launcher (its exit status),
    print the launch command (``--print-launch``, 0), or ``train()`` in this process and print the
    summary line it returns on stderr. A run directory this run created and left empty (it failed
    before writing anything, e.g. the model did not load) is removed."""
    rc = maybe_launch(spec, ctx, command)
    if rc is not None:
        return rc
    from in2x_cli import console
    from in2x_cli.train.rundir import removed_if_left_empty

    with removed_if_left_empty(output_dir):
        summary = train()
    if summary:
        console.info(summary)
    return None


def _check_torchrun_config(config: str) -> None:
    """torchrun reads no accelerate YAML: only the shipped names have a TrainingArguments twin."""
    if config not in LAUNCH_CONFIGS:
        raise UserError(
            f"--launcher torchrun cannot apply a custom accelerate YAML ({config}): it would train without its "
            f"sharding settings. Use --launcher accelerate with this file, or one of {', '.join(LAUNCH_CONFIGS)} with torchrun"
        )


def _under_accelerate() -> bool:
    """``accelerate launch`` sets ACCELERATE_MIXED_PRECISION in every process it starts."""
    return "ACCELERATE_MIXED_PRECISION" in os.environ


def distributed_training_args(config: str) -> dict[str, Any]:
    """``TrainingArguments`` for the launch config when the launcher did not already configure it.

    Under ``accelerate launch`` the YAML reaches the Trainer through environment variables
    (``ACCELERATE_USE_FSDP`` / ``ACCELERATE_USE_DEEPSPEED``): nothing to add. Under ``torchrun``
    (or ``--launcher none`` in an already-distributed job) ``fsdp2`` becomes
    ``fsdp="full_shard auto_wrap"`` with ``fsdp_config={"version": 2, ...}`` and ``zero3`` becomes
    ``deepspeed=recipes/deepspeed/zero3.json``. ``single`` adds nothing. A custom YAML path is
    applied by ``accelerate launch`` only: in a distributed job started any other way it is an
    error (exit 2) rather than a silent run without sharding.
    """
    if config == "single" or os.environ.get("WORLD_SIZE", "1") == "1":
        return {}
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" or os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return {}
    if config not in LAUNCH_CONFIGS:
        if _under_accelerate():
            return {}  # accelerate applied the YAML (e.g. plain multi-GPU data parallel)
        _check_torchrun_config(config)
    if config == "fsdp2":
        return {
            "fsdp": "full_shard auto_wrap",
            "fsdp_config": {
                "version": 2,
                "reshard_after_forward": True,
                "state_dict_type": "SHARDED_STATE_DICT",
                "cpu_ram_efficient_loading": True,
                "activation_checkpointing": False,
            },
        }
    if config == "zero3":
        path = recipes_dir() / "deepspeed" / "zero3.json"
        if not path.is_file():
            raise UserError(f"DeepSpeed config not found at {path}")
        return {"deepspeed": str(path)}
    return {}
