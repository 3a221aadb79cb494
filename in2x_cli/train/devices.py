"""Where and in what precision a training run computes (names checked by ``TrainOptions``)."""

from __future__ import annotations

from in2x_cli.errors import UserError


def select_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"unknown --device {device!r} (expected auto, cpu or cuda)")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda, but no CUDA device is visible")
    return device


def select_precision(precision: str, device: str) -> str:
    """Resolve ``auto`` to ``bf16`` (GPU with bf16), ``fp16`` (older GPU) or ``fp32`` (CPU)."""
    import torch

    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise UserError(f"unknown --precision {precision!r} (expected auto, fp32, bf16 or fp16)")
    if precision == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision == "fp16" and device == "cpu":
        raise UserError("--precision fp16 needs a GPU (use bf16 or fp32 on CPU)")
    return precision
