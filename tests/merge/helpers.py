"""Tiny checkpoints for merge tests: variants of the session's tiny model with perturbed weights."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def load_all(model_dir: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def variant(
    base_dir: Path,
    out_dir: Path,
    *,
    seed: int,
    scale: float = 0.02,
    edit: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    config_edit: Callable[[dict], dict] | None = None,
) -> Path:
    """A copy of ``base_dir`` whose weights are base + scale·N(0, 1) (seeded)."""
    shutil.copytree(base_dir, out_dir)
    sd = load_all(out_dir)
    g = torch.Generator().manual_seed(seed)
    sd = {k: (v + scale * torch.randn(v.shape, generator=g)).contiguous() for k, v in sorted(sd.items())}
    if edit is not None:
        sd = edit(sd)
    for f in out_dir.glob("*.safetensors"):
        f.unlink()
    save_file(sd, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    if config_edit is not None:
        cfg = json.loads((out_dir / "config.json").read_text())
        (out_dir / "config.json").write_text(json.dumps(config_edit(cfg)))
    return out_dir
