"""``in2x plot``: PNG pictures of a run directory (training curves, eval and AutoRank results)."""

from __future__ import annotations

from pathlib import Path

import typer


def plot(
    run_dir: Path = typer.Argument(..., help="A run directory (e.g. runs/demo): searched for metrics.jsonl, in2x eval JSON and AutoRank JSON."),
    output_dir: Path = typer.Option(None, "--output-dir", "-o", help="Where to write the PNGs (default: RUN_DIR/plots)."),
    highlight: list[str] = typer.Option([], "--highlight", help="System name(s) to colour differently in AutoRank charts (repeatable)."),
) -> None:
    """Draw training curves (loss, learning rate, grad norm, GRPO reward per function, clip
    fraction, entropy, length, tokens/s) from every metrics.jsonl under RUN_DIR, and the eval /
    AutoRank results per system and domain, as PNG files (headless matplotlib). Prints one JSON
    line per picture on stdout.

    Example: in2x plot runs/demo && ls runs/demo/plots
    """
    from in2x_cli.plot.run import PlotConfig, run_plot

    run_plot(PlotConfig(run_dir=run_dir, output_dir=output_dir, highlight=tuple(highlight)))


def register(app: typer.Typer) -> None:
    app.command("plot")(plot)
