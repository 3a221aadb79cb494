"""Shared training glue: output directory rules, metrics rows, MFU arithmetic, launch commands."""

from __future__ import annotations

import json
import shlex
from types import SimpleNamespace

import pytest
import yaml

from in2x_cli.errors import UserError
from in2x_cli.train import common
from in2x_cli.train.launch import LaunchSpec, build_launch_command, distributed_training_args, recipes_dir


def _checkpoint(path, step, complete=True):
    d = path / f"checkpoint-{step}"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"x")
    if complete:
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return d


def test_prepare_output_dir_rules(tmp_path):
    out = tmp_path / "run"
    assert common.prepare_output_dir(out, resume=False, overwrite=False) is None and out.is_dir()
    (out / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(UserError, match="--resume .* or --overwrite"):
        common.prepare_output_dir(out, resume=False, overwrite=False)
    _checkpoint(out, 2)
    _checkpoint(out, 10)
    torn = _checkpoint(out, 12, complete=False)  # killed while saving
    assert common.prepare_output_dir(out, resume=True, overwrite=False) == out / "checkpoint-10"
    assert not torn.exists()
    assert common.prepare_output_dir(out, resume=False, overwrite=True) is None and list(out.iterdir()) == []
    with pytest.raises(UserError, match="parent directory"):
        common.prepare_output_dir(tmp_path / "missing" / "run", resume=False, overwrite=False)
    with pytest.raises(UserError, match="mutually exclusive"):
        common.prepare_output_dir(out, resume=True, overwrite=True)


def test_metrics_callback_writes_rows_and_drops_rows_after_resume_point(tmp_path):
    cb = common.make_metrics_callback(tmp_path, flops_per_token_value=1e9, peak=1e12, world_size=1)
    state = SimpleNamespace(is_world_process_zero=True, global_step=0, epoch=0.0)
    cb.on_train_begin(None, state, None)
    for step, tokens in ((1, 100), (2, 300), (3, 500)):
        state.global_step = step
        cb.on_log(None, state, None, logs={"loss": 2.0 / step, "learning_rate": 1e-3, "num_input_tokens_seen": tokens, "flag": True})
    cb.on_train_end(None, state, None)
    rows = common.read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert "tokens_per_second" not in rows[0] and rows[1]["tokens_per_second"] > 0
    assert rows[1]["mfu"] == pytest.approx(rows[1]["tokens_per_second"] * 1e9 / 1e12)
    assert "flag" not in rows[0] and rows[2]["loss"] == pytest.approx(2 / 3)
    # resuming from step 2 drops the row logged after the checkpoint
    state.global_step = 2
    cb2 = common.make_metrics_callback(tmp_path)
    cb2.on_train_begin(None, state, None)
    cb2.on_train_end(None, state, None)
    assert [r["step"] for r in common.read_metrics(tmp_path)] == [1, 2]


def test_flops_per_token_tiny_model_by_hand(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    d, kv, ff, layers, vocab = 64, 32, 128, 2, model.config.vocab_size
    per_layer = (d * d + d) + 2 * (d * kv + kv) + d * d + 3 * d * ff + 2 * d  # q(+b), k,v(+b), o, mlp, 2 norms
    n = layers * per_layer + d + vocab * d  # final norm + tied LM head (the embedding lookup is free)
    assert common.matmul_params(model) == n
    assert common.flops_per_token(model, 128) == 6 * n + 12 * layers * d * 128


def test_peak_flops_and_mfu(monkeypatch):
    monkeypatch.delenv("IN2X_PEAK_TFLOPS", raising=False)
    assert common.peak_flops("NVIDIA H100 80GB HBM3", "bf16") == 989.4e12
    assert common.peak_flops("NVIDIA H100 PCIe", "bf16") == 756e12
    assert common.peak_flops("NVIDIA H200", "fp32") == 67e12
    assert common.peak_flops("Some CPU", "bf16") is None
    monkeypatch.setenv("IN2X_PEAK_TFLOPS", "100")
    assert common.peak_flops("Some CPU", "bf16") == 100e12
    # 10k tokens/s x 3e9 FLOP/token on 2 devices of 100 TFLOP/s = 15 %
    assert common.mfu(10_000, 3e9, 100e12, world_size=2) == pytest.approx(0.15)


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
    assert distributed_training_args("zero3")["deepspeed"].endswith("recipes/deepspeed/zero3.json")
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
