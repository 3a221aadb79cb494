"""Models load after the distributed state exists (so FSDP's cpu-RAM-efficient loading and ZeRO-3's
partitioned init can act), and grpo exports in the base model's dtype (issue 15, item 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from in2x_cli.tiny import load_corpus
from tests.util import invoke, write_jsonl

TRAIN = ["--batch-size", "2", "--max-steps", "1", "--report-to", "none", "--save-steps", "100", "--seed", "0"]


def _sft(model: Path, tmp: Path) -> list[str]:
    rows = [{"messages": [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["response"]}]} for r in load_corpus("instructions")[:4]]
    return ["sft", str(write_jsonl(tmp / "chat.jsonl", rows)), "--model", str(model), "--max-length", "64", *TRAIN]


def _cpt(model: Path, tmp: Path) -> list[str]:
    rows = [{"text": r["text"]} for r in load_corpus("pretrain")[:8]]
    return ["cpt", "--data", str(write_jsonl(tmp / "text.jsonl", rows)), "--model", str(model), "--seq-len", "32", *TRAIN]


def _grpo(model: Path, tmp: Path) -> list[str]:
    rows = [{"instruction": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(2)]
    return ["grpo", str(write_jsonl(tmp / "p.jsonl", rows)), "--model", str(model), "--reward", "math_exact",
            "-G", "2", "--rollout-batch", "2", "--minibatch", "2", "--max-completion-tokens", "4", *TRAIN]  # fmt: skip


@pytest.mark.parametrize("command", [_sft, _cpt, _grpo], ids=["sft", "cpt", "grpo"])
def test_the_model_loads_under_the_distributed_state(tiny_model, tmp_path, monkeypatch, command):
    from accelerate.state import AcceleratorState, PartialState

    from in2x_cli.io import checkpoint

    AcceleratorState._reset_state(reset_partial_state=True)  # as in a fresh process
    seen: list[bool] = []
    real = checkpoint.load_causal_lm

    def load(*args, **kwargs):
        seen.append(bool(PartialState._shared_state))
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "load_causal_lm", load)
    res = invoke([*command(tiny_model, tmp_path), "-o", str(tmp_path / "out")])
    assert res.code == 0, res.stderr
    assert seen == [True]


def test_grpo_exports_in_the_base_models_dtype(tiny_model, tmp_path):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    bf16 = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.bfloat16).save_pretrained(str(bf16))
    for f in tiny_model.iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens")):
            (bf16 / f.name).write_bytes(f.read_bytes())
    res = invoke([*_grpo(bf16, tmp_path), "-o", str(tmp_path / "out")])
    assert res.code == 0, res.stderr
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
