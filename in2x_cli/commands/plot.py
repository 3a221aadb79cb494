"""``in2x plot``: PNG pictures of a run directory (training curves, eval and AutoRank results)."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from in2x_cli import console
from in2x_cli.errors import UserError


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
    import json

    from in2x_cli.plot.render import find_artefacts, render_autorank, render_eval, render_train

    if not run_dir.is_dir():
        raise UserError("run directory not found", str(run_dir))
    out = output_dir or run_dir / "plots"
    if not out.parent.is_dir():
        raise UserError(f"parent directory {out.parent} does not exist", str(out))
    artefacts = find_artefacts(run_dir)
    if not artefacts:
        raise UserError("nothing to plot: no metrics.jsonl, in2x eval JSON or AutoRank JSON found", str(run_dir))
    created = not out.exists()
    out.mkdir(exist_ok=True)
    written = 0
    try:
        for art in artefacts:
            if art.kind == "train":
                paths = [p for p in [render_train(art, out)] if p is not None]
            elif art.kind == "eval":
                paths = render_eval(art, out)
            else:
                paths = render_autorank(art, out, highlight)
            for p in paths:
                written += 1
                print(json.dumps({"kind": art.kind, "source": str(art.path), "png": str(p)}, ensure_ascii=False))
                console.info(f"plot: {art.kind} {art.path} -> {p}")
        if not written:
            raise UserError("found result files, but none had anything to draw", str(run_dir))
    except BaseException:
        if created:  # a failed run leaves no half-filled picture directory behind
            shutil.rmtree(out, ignore_errors=True)
        raise


def register(app: typer.Typer) -> None:
    app.command("plot")(plot)
