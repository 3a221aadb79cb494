"""Where and in what precision a training run computes. The names are checked once, by
``TrainOptions``; these resolve ``auto`` and check the hardware."""

from __future__ import annotations

from in2x_cli.errors import UserError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def select_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu`` (the kind: the Trainer places each rank
    on ``cuda:<LOCAL_RANK>``). See ``in2x_cli.devices``: a GPU torch cannot use is an error."""
    from in2x_cli.devices import device_kind

    return device_kind(device)


def select_precision(precision: str, device: str) -> str:
    """Resolve ``auto`` to ``bf16`` (GPU with bf16), ``fp16`` (older GPU) or ``fp32`` (CPU)."""
    import torch

    if precision == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision == "fp16" and device == "cpu":
        raise UserError("--precision fp16 needs a GPU (use bf16 or fp32 on CPU)")
    return precision


def packed_attention(requested: str | None, device: str, *, packed: bool) -> str | None:
    """The attention implementation to load a model with for training. An explicit choice wins.
    Packed rows on a GPU with ``flash_attn`` installed get ``flash_attention_2``: ``make_collator``
    then flattens each batch into one varlen row with ``cu_seq_lens`` (documents never attend
    across), which the flash kernel runs without a mask. Otherwise None: transformers' default
    (sdpa), where packed rows use the block-diagonal mask built from position ids."""
    import importlib.util

    if requested:
        return requested
    if packed and device == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return None
