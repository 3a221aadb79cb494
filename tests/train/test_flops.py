"""FLOPs per token and MFU arithmetic, checked by hand."""

from __future__ import annotations

import pytest

from in2x_cli.train.flops import flops_per_token, matmul_params, mfu, peak_flops


def test_flops_per_token_tiny_model_by_hand(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    d, kv, ff, layers, vocab = 64, 32, 128, 2, model.config.vocab_size
    per_layer = (d * d + d) + 2 * (d * kv + kv) + d * d + 3 * d * ff + 2 * d  # q(+b), k,v(+b), o, mlp, 2 norms
    n = layers * per_layer + d + vocab * d  # final norm + tied LM head (the embedding lookup is free)
    assert matmul_params(model) == n
    assert flops_per_token(model, 128) == 6 * n + 12 * layers * d * 128


def test_peak_flops_and_mfu(monkeypatch):
    monkeypatch.delenv("IN2X_PEAK_TFLOPS", raising=False)
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == 989.4e12
    assert peak_flops("NVIDIA H100 PCIe", "bf16") == 756e12
    assert peak_flops("NVIDIA H200", "fp32") == 67e12
    assert peak_flops("Some CPU", "bf16") is None
    monkeypatch.setenv("IN2X_PEAK_TFLOPS", "100")
    assert peak_flops("Some CPU", "bf16") == 100e12
    # 10k tokens/s x 3e9 FLOP/token on 2 devices of 100 TFLOP/s = 15 %
    assert mfu(10_000, 3e9, 100e12, world_size=2) == pytest.approx(0.15)
