"""One device picker for every stage: this rank's GPU, and a loud error when the driver lists GPUs
torch cannot use (items 3 and 7 of issue 15)."""

from __future__ import annotations

import pytest

from in2x_cli import devices
from in2x_cli.errors import UserError


@pytest.fixture
def gpus(monkeypatch):
    """Pretend torch sees ``n`` CUDA devices (and nvidia-smi lists ``driver`` GPUs)."""
    import torch

    def set_(n: int, driver: int | None = None) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(devices, "driver_gpu_count", lambda: n if driver is None else driver)

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return set_


def test_every_picker_lands_on_the_local_rank_gpu(gpus, monkeypatch):
    from in2x_cli.backends.hf import pick_device
    from in2x_cli.merge.stats import _device
    from in2x_cli.train.devices import select_device

    gpus(8)
    monkeypatch.setenv("LOCAL_RANK", "5")
    assert pick_device("auto") == "cuda:5" and pick_device("cuda") == "cuda:5"
    assert _device("auto") == "cuda:5"
    assert pick_device("cuda:2") == "cuda:2"  # an explicit index is kept
    assert select_device("auto") == "cuda"  # the Trainer places the rank itself
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert pick_device("auto") == "cuda:0"


def test_one_visible_gpu_per_rank_is_cuda_0(gpus, monkeypatch):
    gpus(1)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert devices.pick_device("auto") == "cuda:0"
    gpus(2)
    with pytest.raises(UserError, match="LOCAL_RANK=3"):
        devices.pick_device("auto")


def test_cpu_when_no_gpu(gpus):
    gpus(0)
    assert devices.pick_device("auto") == "cpu"
    assert devices.pick_device("cpu") == "cpu"
    with pytest.raises(UserError, match="no CUDA device"):
        devices.pick_device("cuda")


def test_driver_sees_gpus_torch_does_not_is_an_error(gpus, monkeypatch):
    from in2x_cli.backends.hf import pick_device
    from in2x_cli.train.devices import select_device

    gpus(0, driver=8)
    for pick in (pick_device, select_device, devices.pick_device):
        with pytest.raises(UserError, match=r"nvidia-smi lists 8 GPU\(s\) but torch"):
            pick("auto")
    assert devices.pick_device("cpu") == "cpu"  # asked for CPU on purpose
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # GPUs hidden on purpose
    assert devices.pick_device("auto") == "cpu"


def test_driver_gpu_count_parses_nvidia_smi(monkeypatch, tmp_path):
    exe = tmp_path / "nvidia-smi"
    exe.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-1)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-2)'\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    devices.driver_gpu_count.cache_clear()
    try:
        assert devices.driver_gpu_count() == 2
    finally:
        devices.driver_gpu_count.cache_clear()


def test_child_worker_gets_the_rank_gpu(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert devices.visible_devices_for_child() == {}
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert devices.visible_devices_for_child() == {"CUDA_VISIBLE_DEVICES": "2"}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert devices.visible_devices_for_child() == {"CUDA_VISIBLE_DEVICES": "6"}


def test_comet_worker_is_started_on_the_rank_gpu(monkeypatch, tmp_path):
    """The COMET client narrows the worker's CUDA_VISIBLE_DEVICES to this rank's GPU."""
    import subprocess

    from in2x_cli import comet

    seen = {}

    class _Proc:
        def __init__(self, args, **kw):
            seen["env"] = kw["env"]
            raise OSError("stop here")

    monkeypatch.setattr(subprocess, "Popen", _Proc)
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    with pytest.raises(OSError):
        comet.CometClient(str(tmp_path), gpus=1, python="/bin/true")
    assert seen["env"]["CUDA_VISIBLE_DEVICES"] == "3"


def test_packed_rows_on_gpu_with_flash_attn_use_the_varlen_kernel(monkeypatch):
    import importlib.util
    import types

    from in2x_cli.train.data import make_collator
    from in2x_cli.train.devices import packed_attention

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "flash_attn" else real(name, *a))
    assert packed_attention(None, "cuda", packed=True) == "flash_attention_2"
    assert packed_attention("sdpa", "cuda", packed=True) == "sdpa"  # asked for
    assert packed_attention(None, "cuda", packed=False) is None
    assert packed_attention(None, "cpu", packed=True) is None
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flash_attn" else real(name, *a))
    assert packed_attention(None, "cuda", packed=True) is None  # sdpa, block-diagonal mask from positions
    # and with flash-attention the collator flattens the batch: one row, positions restart per document
    model = types.SimpleNamespace(config=types.SimpleNamespace(_attn_implementation="flash_attention_2"))
    batch = make_collator(model, 0, packed=True)([
        {"input_ids": [1, 2, 3, 4, 5], "labels": [1, 2, 3, 4, 5], "seq_lengths": [2, 3]},
        {"input_ids": [6, 7, 8], "labels": [6, 7, 8], "seq_lengths": [3]},
    ])
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5, 6, 7, 8]] and "attention_mask" not in batch
    assert batch["position_ids"].tolist() == [[0, 1, 0, 1, 2, 0, 1, 2]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 2, 5, 8]
    assert batch["labels"].tolist() == [[-100, 2, -100, 4, 5, -100, 7, 8]]
