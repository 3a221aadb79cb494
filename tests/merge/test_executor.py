"""The streaming executor: sharded output round trip, dtype, resize, and checks before reading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from in2x_cli.core import merge as M
from in2x_cli.errors import UserError
from in2x_cli.io.checkpoint import CheckpointReader
from in2x_cli.merge.config import ModelEntry, build_config
from in2x_cli.merge.executor import merge_checkpoints
from tests.merge.helpers import load_all, variant


@pytest.fixture(scope="module")
def zoo(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("zoo")
    return {
        "base": tiny_model,
        "a": variant(tiny_model, root / "a", seed=1),
        "b": variant(tiny_model, root / "b", seed=2),
    }


def _ties_config(zoo: dict[str, Path], **kw: object) -> object:
    return build_config(
        method="ties",
        base_model=str(zoo["base"]),
        models=[ModelEntry(str(zoo["a"]), {"density": 0.4}), ModelEntry(str(zoo["b"]), {"weight": 0.5, "density": 0.6})],
        parameters={"lambda": 0.9},
        **kw,  # type: ignore[arg-type]
    )


def test_sharded_round_trip_equals_the_pure_function(zoo: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    summary = merge_checkpoints(_ties_config(zoo), out, shard_bytes=60_000)  # type: ignore[arg-type]
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) == len(summary.files) > 3
    assert all((out / s).exists() for s in shards)
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= set(summary.copied_files)
    base, a, b = load_all(zoo["base"]), load_all(zoo["a"]), load_all(zoo["b"])
    with CheckpointReader(out) as merged:
        assert merged.names() == list(CheckpointReader(zoo["base"]).names())
        for name in merged.names():
            expected = M.ties(base[name], [a[name], b[name]], [1.0, 0.5], [0.4, 0.6], lambda_=0.9)
            assert torch.equal(merged.get(name), expected), name
            assert merged.dtype(name) == "F32"


def test_out_dtype_is_applied_and_recorded_in_config(zoo: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    cfg = build_config(
        method="linear", base_model=None, models=[ModelEntry(str(zoo["a"])), ModelEntry(str(zoo["b"]))],
        parameters={}, dtype="float32", out_dtype="bfloat16",
    )
    merge_checkpoints(cfg, out)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    a, b = load_all(zoo["a"]), load_all(zoo["b"])
    merged = load_all(out)
    name = "model.layers.0.mlp.up_proj.weight"
    assert merged[name].dtype == torch.bfloat16
    assert torch.equal(merged[name], ((a[name] + b[name]) / 2).to(torch.bfloat16))


def _grow_vocab(rows: int):  # noqa: ANN202
    def edit(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = sd["model.embed_tokens.weight"]
        if rows > 0:
            sd["model.embed_tokens.weight"] = torch.cat([emb, torch.full((rows, emb.shape[1]), 7.0)])
        else:
            sd["model.embed_tokens.weight"] = emb[:rows].contiguous()
        return sd

    return edit


def test_vocab_mismatch_is_refused_or_resized_on_request(zoo: dict[str, Path], tmp_path: Path) -> None:
    big = variant(zoo["base"], tmp_path / "big", seed=3, edit=_grow_vocab(8), config_edit=lambda c: {**c, "vocab_size": c["vocab_size"] + 8})
    small = variant(zoo["base"], tmp_path / "small", seed=4, edit=_grow_vocab(-8), config_edit=lambda c: {**c, "vocab_size": c["vocab_size"] - 8})
    models = [ModelEntry(str(big), {"weight": 1.0}), ModelEntry(str(small), {"weight": 1.0})]
    cfg = build_config(method="task_arithmetic", base_model=str(zoo["base"]), models=models, parameters={})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UserError, match="vocabulary size") as err:
        merge_checkpoints(cfg, out)
    assert "--resize-vocab" in str(err.value)
    cfg = build_config(method="task_arithmetic", base_model=str(zoo["base"]), models=models, parameters={}, resize_vocab=True)
    merge_checkpoints(cfg, out)
    base, b, s = load_all(zoo["base"]), load_all(big), load_all(small)
    emb = load_all(out)["model.embed_tokens.weight"]
    n = base["model.embed_tokens.weight"].shape[0]
    assert emb.shape[0] == n  # the reference's (the base's) vocabulary
    # extra rows of `big` are cut; rows `small` lacks come from the base (zero task vector there)
    expected = base["model.embed_tokens.weight"] + (b["model.embed_tokens.weight"][:n] - base["model.embed_tokens.weight"])
    expected[: n - 8] += s["model.embed_tokens.weight"] - base["model.embed_tokens.weight"][: n - 8]
    torch.testing.assert_close(emb, expected)


def test_tokenizer_source_must_be_an_input(zoo: dict[str, Path], tmp_path: Path) -> None:
    cfg = build_config(
        method="linear", base_model=None, models=[ModelEntry(str(zoo["a"]))], parameters={}, tokenizer_source=str(zoo["base"])
    )
    with pytest.raises(UserError, match="tokenizer_source must be"):
        merge_checkpoints(cfg, tmp_path)
