"""The ``in2x plot`` stage: find the artefacts of a run directory, draw each as PNG files, print
one JSON line per picture on stdout. A failed run leaves no half-filled picture directory."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from in2x_cli import console
from in2x_cli.errors import UserError
from in2x_cli.plot.artefacts import find_artefacts
from in2x_cli.plot.render import render_autorank, render_eval, render_train


@dataclass(frozen=True)
class PlotConfig:
    """Resolved options of ``in2x plot``."""

    run_dir: Path
    output_dir: Path | None = None  # default: RUN_DIR/plots
    highlight: tuple[str, ...] = ()  # systems coloured differently in AutoRank charts


def run_plot(cfg: PlotConfig) -> None:
    run_dir = cfg.run_dir
    if not run_dir.is_dir():
        raise UserError("run directory not found", str(run_dir))
    out = cfg.output_dir or run_dir / "plots"
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
                paths = render_autorank(art, out, cfg.highlight)
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
