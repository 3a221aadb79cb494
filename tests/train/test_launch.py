"""Launch commands (accelerate / torchrun), the shipped launch configs and their TrainingArguments."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from in2x_cli.errors import UserError
from in2x_cli.train.launch import LaunchSpec, build_launch_command, distributed_training_args, recipes_dir


def test_launch_commands_and_shipped_configs(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    cmd = build_launch_command(
        LaunchSpec(launcher="accelerate", config="fsdp2", num_machines=2, machine_rank=1, main_process_ip="10.0.0.1"),
        ["sft", "d.jsonl", "--model", "m"],
        python="python",
    )
    assert shlex.join(cmd) == (
        f"python -m accelerate.commands.launch --config_file {recipes_dir()}/accelerate/fsdp2.yaml --num_processes 8 "
        "--num_machines 2 --machine_rank 1 --main_process_ip 10.0.0.1 --main_process_port 29500 "
        "-m in2x_cli sft d.jsonl --model m --launcher none --launch-config fsdp2"
    )
    cmd = build_launch_command(LaunchSpec(launcher="torchrun", config="zero3"), ["cpt"], python="python")
    assert cmd == ["python", "-m", "torch.distributed.run", "--nproc-per-node", "4", "--standalone", "-m", "in2x_cli", "cpt", "--launcher", "none", "--launch-config", "zero3"]
    with pytest.raises(UserError, match="main-process-ip"):
        build_launch_command(LaunchSpec(launcher="accelerate", num_machines=2), ["sft"])
    with pytest.raises(UserError, match="unknown launch config"):
        build_launch_command(LaunchSpec(launcher="accelerate", config="fsdp9"), ["sft"])

    fsdp = yaml.safe_load((recipes_dir() / "accelerate" / "fsdp2.yaml").read_text())
    assert fsdp["distributed_type"] == "FSDP" and fsdp["fsdp_config"]["fsdp_version"] == 2
    zero3 = yaml.safe_load((recipes_dir() / "accelerate" / "zero3.yaml").read_text())
    assert zero3["distributed_type"] == "DEEPSPEED" and zero3["deepspeed_config"]["zero_stage"] == 3
    assert yaml.safe_load((recipes_dir() / "accelerate" / "single.yaml").read_text())["num_processes"] == 1
    ds = json.loads((recipes_dir() / "deepspeed" / "zero3.json").read_text())
    assert ds["zero_optimization"]["stage"] == 3

    # torchrun children get the config as TrainingArguments; accelerate children from its env
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert distributed_training_args("fsdp2")["fsdp_config"]["version"] == 2
    assert distributed_training_args("zero3")["deepspeed"].endswith("launch/deepspeed/zero3.json")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert distributed_training_args("fsdp2") == {}
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed_training_args("zero3") == {}


def test_torchrun_refuses_a_custom_launch_yaml(monkeypatch, tmp_path):
    """A custom accelerate YAML has no TrainingArguments twin: torchrun would train without its
    sharding, so the launcher and a torchrun child refuse it (exit 2); accelerate takes it."""
    custom = tmp_path / "my_fsdp.yaml"
    custom.write_text("distributed_type: FSDP\nnum_processes: 2\n")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    with pytest.raises(UserError, match="--launcher torchrun cannot apply a custom accelerate YAML") as err:
        build_launch_command(LaunchSpec(launcher="torchrun", config=str(custom)), ["sft"], python="python")
    assert str(custom) in str(err.value) and "--launcher accelerate" in str(err.value)
    cmd = build_launch_command(LaunchSpec(launcher="accelerate", config=str(custom)), ["sft"], python="python")
    assert cmd[cmd.index("--config_file") + 1] == str(custom)

    monkeypatch.setenv("WORLD_SIZE", "2")  # a child of a torchrun started by hand
    with pytest.raises(UserError, match="custom accelerate YAML"):
        distributed_training_args(str(custom))
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # a child of accelerate launch: it applied the YAML
    assert distributed_training_args(str(custom)) == {}
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION")
    assert distributed_training_args(str(custom)) == {}  # one process: nothing to shard


def test_sft_torchrun_with_custom_yaml_exits_2(tiny_model, tmp_path):
    from tests.util import assert_user_error, invoke, write_jsonl

    data = write_jsonl(tmp_path / "c.jsonl", [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}])
    custom = tmp_path / "mine.yaml"
    custom.write_text("distributed_type: FSDP\n")
    res = invoke(["sft", str(data), "--model", str(tiny_model), "-o", str(tmp_path / "o"), "--launcher", "torchrun", "--launch-config", str(custom), "--print-launch"])
    assert_user_error(res, "custom accelerate YAML", str(custom))
    assert res.stdout == ""


def test_launch_configs_ship_inside_the_package(tmp_path):
    """A wheel install has no recipes/ next to the package: the configs are package data."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import tomllib

    import in2x_cli

    pkg = Path(in2x_cli.__file__).parent
    globs = tomllib.loads((pkg.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["in2x_cli"]
    shipped = {str(p.relative_to(pkg)) for g in globs for p in pkg.glob(g) if p.is_file()}
    for name in ("accelerate/single.yaml", "accelerate/fsdp2.yaml", "accelerate/zero3.yaml", "deepspeed/zero3.json"):
        assert f"data/launch/{name}" in shipped
    # the package alone, away from the checkout
    shutil.copytree(pkg, tmp_path / "site" / "in2x_cli", ignore=shutil.ignore_patterns("__pycache__"))
    code = "from in2x_cli.train.launch import resolve_launch_config, distributed_training_args as d; import os; " \
           "os.environ['WORLD_SIZE'] = '2'; print(resolve_launch_config('fsdp2')); print(d('zero3')['deepspeed'])"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path, check=True).stdout.split()
    assert out[0].startswith(str(tmp_path / "site")) and Path(out[0]).is_file() and Path(out[1]).is_file()
