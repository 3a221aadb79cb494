import json

import pytest
import torch

from in2x_cli.errors import UserError
from in2x_cli.io.checkpoint import (
    CheckpointReader,
    ShardedWriter,
    StreamingShardWriter,
    atomic_output_dir,
    load_causal_lm,
    load_tokenizer,
    parse_size,
    resolve_model,
)


def test_sharded_round_trip(tmp_path):
    tensors = {f"layer.{i}.weight": torch.full((10, 10), float(i)) for i in range(5)}  # 400 bytes each
    w = ShardedWriter(tmp_path, max_shard_bytes=900)
    for k, v in tensors.items():
        w.add(k, v)
    files = w.close()
    assert files == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == 5 * 400
    r = CheckpointReader(tmp_path)
    assert sorted(r.names()) == sorted(tensors)
    for k, v in tensors.items():
        assert torch.equal(r.get(k), v)
        assert r.shape(k) == (10, 10)


def test_single_shard_is_model_safetensors(tmp_path):
    w = ShardedWriter(tmp_path)
    w.add("a", torch.zeros(3))
    assert w.close() == ["model.safetensors"]


def test_streaming_writer_cuts_and_loads_like_the_in_memory_one(tmp_path):
    from safetensors.torch import load_file

    tensors = {
        "emb": torch.arange(60, dtype=torch.float32).reshape(6, 10),  # 240 bytes
        "norm": torch.linspace(-1, 1, 7, dtype=torch.bfloat16),  # 14 bytes: odd, so the next offset is unaligned
        "ids": torch.tensor([3, -1, 7], dtype=torch.int64),
        "mask": torch.tensor([True, False]),
        "scalar": torch.tensor(2.5, dtype=torch.float16),
        "big": torch.randn(20, 10),  # 800 bytes: a shard of its own
    }
    for limit in (300, 10**9):
        old, new = tmp_path / f"old{limit}", tmp_path / f"new{limit}"
        old.mkdir(), new.mkdir()
        w_old = ShardedWriter(old, max_shard_bytes=limit)
        plan = [(k, str(v.dtype).removeprefix("torch."), tuple(v.shape)) for k, v in tensors.items()]
        w_new = StreamingShardWriter(new, plan, max_shard_bytes=limit)
        for k, v in tensors.items():
            w_old.add(k, v)
            w_new.add(k, v)
        files = w_new.close()
        assert files == w_old.close()
        for f in files:
            a, b = load_file(str(old / f)), load_file(str(new / f))
            assert set(a) == set(b) and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
        if len(files) > 1:
            assert json.loads((new / "model.safetensors.index.json").read_text()) == json.loads((old / "model.safetensors.index.json").read_text())
    assert len(files) == 1


def test_streaming_writer_refuses_what_the_plan_does_not_say(tmp_path):
    w = StreamingShardWriter(tmp_path, [("a", "float32", (2,)), ("b", "float32", (2,))])
    with pytest.raises(RuntimeError, match="plan has 'a'"):
        w.add("b", torch.zeros(2))
    with pytest.raises(RuntimeError, match="plan has 'a' float32"):
        w.add("a", torch.zeros(2, dtype=torch.float16))
    w.add("a", torch.zeros(2))
    with pytest.raises(RuntimeError, match="never written"):
        w.close()


@pytest.mark.parametrize("text, n", [("5GB", 5 * 10**9), ("2GiB", 2 * 2**30), ("500MB", 500 * 10**6), ("1000", 1000), ("1.5kb", 1500)])
def test_parse_size(text, n):
    assert parse_size(text) == n


def test_pickle_only_directory_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(UserError, match="refusing to load pickle weights"):
        resolve_model(str(tmp_path))


def test_missing_local_directory_is_an_error_not_a_hub_lookup(tmp_path):
    with pytest.raises(UserError, match="directory not found"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(UserError, match="not in the Hugging Face cache"):
        resolve_model("someorg/some-model-that-is-not-cached")


def test_atomic_output_dir(tmp_path):
    out = tmp_path / "model"
    with pytest.raises(RuntimeError):
        with atomic_output_dir(out) as d:
            (d / "x").write_text("1")
            raise RuntimeError
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with atomic_output_dir(out) as d:
        (d / "x").write_text("1")
    assert (out / "x").read_text() == "1"
    with pytest.raises(UserError, match="already exists"):
        with atomic_output_dir(out):
            pass


def test_load_causal_lm_and_tokenizer(tiny_model, tmp_path):
    """One load path for every stage: dtype by name ("auto" = float32 off CUDA), eval mode on a
    device, and a broken directory as one UserError naming it."""
    tok = load_tokenizer(tiny_model)
    assert tok("Hello", add_special_tokens=False)["input_ids"]
    model = load_causal_lm(tiny_model, dtype="auto", device="cpu")
    assert next(model.parameters()).dtype == torch.float32 and not model.training
    assert load_causal_lm(tiny_model, dtype="bfloat16").dtype == torch.bfloat16
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(UserError, match="cannot load the calibration model") as err:
        load_causal_lm(broken, what="calibration model")
    assert str(broken) in str(err.value)
