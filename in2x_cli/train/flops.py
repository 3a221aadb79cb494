"""Model FLOPs utilisation (MFU): FLOPs per token of a model and the peak FLOP/s of known GPUs."""

from __future__ import annotations

import os
from typing import Any

from in2x_cli.errors import UserError

# Dense (no sparsity) peak tensor throughput in FLOP/s by precision. Sources: NVIDIA data sheets
# (H100 SXM5: 989.4 TFLOPS bf16/fp16, 67 fp32; H100 PCIe: 756 / 51; H200 as H100 SXM; A100: 312 / 19.5;
# L40S: 362 / 91.6; L4: 121 / 30.3; A10/A10G: 125 / 31.2; RTX 4090: 165.2 (fp32 accumulate) / 82.6;
# B200: 2250 / 80). ``IN2X_PEAK_TFLOPS`` overrides the table.
PEAK_FLOPS: list[tuple[str, dict[str, float]]] = [
    ("H100 PCIe", {"bf16": 756e12, "fp16": 756e12, "fp32": 51e12}),
    ("H100", {"bf16": 989.4e12, "fp16": 989.4e12, "fp32": 67e12}),
    ("H200", {"bf16": 989.4e12, "fp16": 989.4e12, "fp32": 67e12}),
    ("GH200", {"bf16": 989.4e12, "fp16": 989.4e12, "fp32": 67e12}),
    ("B200", {"bf16": 2250e12, "fp16": 2250e12, "fp32": 80e12}),
    ("A100", {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12}),
    ("L40S", {"bf16": 362e12, "fp16": 362e12, "fp32": 91.6e12}),
    ("L4", {"bf16": 121e12, "fp16": 121e12, "fp32": 30.3e12}),
    ("A10", {"bf16": 125e12, "fp16": 125e12, "fp32": 31.2e12}),
    ("RTX 4090", {"bf16": 165.2e12, "fp16": 165.2e12, "fp32": 82.6e12}),
]


def peak_flops(device_name: str, precision: str) -> float | None:
    """Peak FLOP/s of one device for a precision, or None when the device is unknown (no MFU then)."""
    env = os.environ.get("IN2X_PEAK_TFLOPS")
    if env:
        try:
            return float(env) * 1e12
        except ValueError:
            raise UserError(f"IN2X_PEAK_TFLOPS must be a number, got {env!r}") from None
    name = device_name.upper()
    for key, table in PEAK_FLOPS:
        if key.upper() in name:
            return table.get(precision, table["fp32"])
    return None


def matmul_params(model: Any) -> int:
    """Parameters that take part in matrix multiplies: all parameters minus the input embedding
    table (a lookup), plus the LM head when it is tied to that table (it is still a d×V matmul)."""
    total = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings()
    emb_n = emb.weight.numel() if emb is not None else 0
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = head is not None and emb is not None and head.weight.data_ptr() == emb.weight.data_ptr()
    return total - emb_n + (emb_n if tied else 0)


def flops_per_token(model: Any, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward) in the PaLM convention (Chowdhery et al. 2022,
    appendix B; nanoGPT's ``estimate_mfu``)::

        F = 6·N + 12·L·d·T

    N = ``matmul_params(model)``, L = layers, d = hidden size (= heads × head dim), T = the sequence
    length attended over. 6N counts the parameter matmuls (2 forward + 4 backward); 12·L·d·T the
    attention score and value products. With document-masked packing the true attention cost is
    lower (Σ lenᵢ² instead of T²), so this slightly overstates MFU for short documents, as the
    convention does everywhere; gradient checkpointing's recomputation is not counted (MFU, not HFU).
    """
    cfg = getattr(model, "config", None)
    cfg = cfg.get_text_config() if cfg is not None and hasattr(cfg, "get_text_config") else cfg
    layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
    hidden = int(getattr(cfg, "hidden_size", 0) or 0)
    heads = int(getattr(cfg, "num_attention_heads", 0) or 0)
    head_dim = int(getattr(cfg, "head_dim", 0) or 0) or (hidden // heads if heads else 0)
    attn_width = heads * head_dim if heads and head_dim else hidden
    return 6.0 * matmul_params(model) + 12.0 * layers * attn_width * seq_len


def mfu(tokens_per_second: float, flops_per_token_value: float, peak: float, world_size: int = 1) -> float:
    """Model FLOPs utilisation: ``tokens/s · F / (peak FLOP/s · devices)`` (tokens/s over all devices)."""
    return tokens_per_second * flops_per_token_value / (peak * max(1, world_size))


def detect_peak_flops(precision: str) -> tuple[str, float] | None:
    """(device name, peak FLOP/s) of the current CUDA device, or None on CPU / unknown GPUs."""
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(torch.cuda.current_device())
    peak = peak_flops(name, precision)
    return (name, peak) if peak else None
