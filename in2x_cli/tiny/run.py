"""The ``in2x tiny-model`` stage: build the tiny model into a new directory, atomically."""

from __future__ import annotations

from pathlib import Path

from in2x_cli.io.checkpoint import atomic_output_dir
from in2x_cli.tiny.model import TinyConfig, build_tiny_model


def run_tiny_model(out_dir: Path, config: TinyConfig, *, overwrite: bool = False) -> Path:
    """Build the tiny model (``model.build_tiny_model``) into ``out_dir``, which appears only
    complete (``--overwrite`` replaces an existing one); returns it."""
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        build_tiny_model(tmp, config)
    return Path(out_dir)
