"""``in2x tiny-model``: build the bundled tiny test model (offline, seconds)."""

from __future__ import annotations

from pathlib import Path

import typer

from in2x_cli import console


def tiny_model(
    out_dir: Path = typer.Argument(..., help="Directory to write the HF model to (created)."),
    train_steps: int = typer.Option(0, "--train-steps", help="Warm-up AdamW steps on the bundled corpus (0 = random weights)."),
    seed: int = typer.Option(0, "--seed", help="Seed for weights and warm-up batches."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing directory."),
) -> None:
    """Build a tiny Qwen2-style chat model with a byte-level BPE tokenizer trained on the bundled
    en/ja/zh corpus, for trying pipelines without a GPU or a model hub.

    Example: in2x tiny-model runs/tiny --train-steps 200 && echo '{"src":"Hello.","src_lang":"en","tgt_lang":"ja"}' | in2x translate --model runs/tiny -
    """
    from in2x_cli.tiny.model import TinyConfig
    from in2x_cli.tiny.run import run_tiny_model

    cfg = TinyConfig(seed=seed, train_steps=train_steps)
    run_tiny_model(out_dir, cfg, overwrite=overwrite)
    console.info(f"tiny-model: wrote {out_dir} (Qwen2, hidden {cfg.hidden_size}, {cfg.num_layers} layers, {train_steps} warm-up steps)")


def register(app: typer.Typer) -> None:
    app.command("tiny-model")(tiny_model)
