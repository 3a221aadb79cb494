"""Pictures of a run: training curves from ``metrics.jsonl`` and eval / AutoRank results.

Each renderer draws one PNG per artefact (``artefacts.find_artefacts``; eval and AutoRank: one per
language pair) with matplotlib's headless Agg backend; panels appear only for the series a file
actually has. Each PNG carries its provenance (the file it was drawn from, with its sha256) in a
text chunk, ``PROVENANCE_KEY``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from in2x_cli.io.documents import read_autorank_doc, read_eval_doc, read_train_metrics
from in2x_cli.plot.artefacts import Artefact

# Training panels: title, then the metric keys (regex, full match) that go on it.
TRAIN_PANELS: list[tuple[str, str]] = [
    ("loss", r"loss|policy_loss|train_loss"),
    ("learning rate", r"learning_rate"),
    ("gradient norm", r"grad_norm"),
    ("reward per function", r"rewards?/[^/]+/mean|reward|reward_shaped/mean"),
    ("clip fraction", r"clip/.*fraction|clip_ratio(/.*)?|reward_clip/fraction"),
    ("entropy", r"entropy"),
    ("completion length", r"completions?/mean_length|completion_length"),
    ("tokens / s", r"tokens_per_second"),
]
PROVENANCE_KEY = "in2x-provenance"  # PNG text chunk: JSON from in2x_cli.provenance.collect


def train_series(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """Panel title → {metric key → (steps, values)} for the keys present (finite values only)."""
    keys = sorted({k for r in rows for k in r if k not in ("step", "epoch", "time")})
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    taken: set[str] = set()
    for title, pattern in TRAIN_PANELS:
        rx = re.compile(pattern)
        for key in keys:
            if key in taken or not rx.fullmatch(key):
                continue
            xs, ys = [], []
            for r in rows:
                v = r.get(key)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    xs.append(float(r["step"]))
                    ys.append(float(v))
            if xs:
                panels.setdefault(title, {})[key] = (xs, ys)
                taken.add(key)
    return panels


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, max(1, n))
    return (n + cols - 1) // cols, cols


def _save(fig: Any, path: Path, art: Artefact) -> None:
    """Write the PNG with its provenance inside (a picture copied out of the run still says what
    it was drawn from): ``Image.open(path).text[PROVENANCE_KEY]``; then close the figure."""
    from in2x_cli import provenance

    record = provenance.collect(command="plot", config={"kind": art.kind, "source": str(art.path)}, inputs=[art.path])
    fig.savefig(path, dpi=110, metadata={PROVENANCE_KEY: json.dumps(record, ensure_ascii=True, allow_nan=False)})
    _plt().close(fig)


def render_train(art: Artefact, out: Path) -> Path | None:
    panels = train_series(read_train_metrics(art.path))
    if not panels:
        return None
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    rows, cols = _grid(len(panels))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    for ax, (title, series) in zip(axes.flat, panels.items(), strict=False):
        for key, (xs, ys) in series.items():
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=key)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if len(series) > 1 or title in ("reward per function", "clip fraction"):
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(f"training: {art.name}")
    fig.tight_layout()
    path = out / f"train-{art.name}.png"
    _save(fig, path, art)
    return path


def render_eval(art: Artefact, out: Path) -> list[Path]:
    """One PNG per language pair: system scores per metric, per-domain breakdown, AutoRank."""
    doc = read_eval_doc(art.path)
    plt = _plt()
    paths = []
    for res in doc.get("results", []):
        systems = res.get("systems", [])
        metrics = list(res.get("metrics", {}))
        names = [s["system"] for s in systems]
        domains = sorted({d for s in systems for d in ((s.get("by") or {}).get("domain") or {})})
        has_rank = bool(res.get("autorank"))
        n_panels = len(metrics) + (1 if domains and metrics else 0) + (1 if has_rank else 0)
        if not n_panels or not names:
            continue
        rows, cols = _grid(n_panels)
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
        flat = list(axes.flat)
        i = 0
        for m in metrics:
            ax = flat[i]
            i += 1
            vals = [s["scores"].get(m) for s in systems]
            ax.bar(range(len(names)), [v if v is not None else 0 for v in vals], color="tab:blue")
            for j, s in enumerate(systems):
                sig = (s.get("significance") or {}).get(m)
                if sig and sig.get("low") is not None and sig.get("high") is not None and vals[j] is not None:
                    # a bootstrap interval need not contain the point estimate (few segments): clamp at 0
                    yerr = [[max(0.0, vals[j] - sig["low"])], [max(0.0, sig["high"] - vals[j])]]
                    ax.errorbar(j, vals[j], yerr=yerr, color="black", capsize=3)
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
            ax.set_title(m)
            ax.grid(axis="y", alpha=0.3)
        if domains and metrics:
            m = metrics[0]
            ax = flat[i]
            i += 1
            width = 0.8 / max(1, len(names))
            for j, s in enumerate(systems):
                vals = [(((s.get("by") or {}).get("domain") or {}).get(d) or {}).get("scores", {}).get(m) or 0 for d in domains]
                ax.bar([k + j * width for k in range(len(domains))], vals, width=width, label=s["system"])
            ax.set_xticks([k + 0.4 - width / 2 for k in range(len(domains))], domains, fontsize=8)
            ax.set_title(f"{m} by domain")
            ax.legend(fontsize=7)
            ax.grid(axis="y", alpha=0.3)
        if has_rank:
            _rank_bars(flat[i], res["autorank"], "AutoRank (1 = best)")
            i += 1
        for ax in flat[i:]:
            ax.axis("off")
        fig.suptitle(f"eval {res.get('pair', '')}: {art.name}")
        fig.tight_layout()
        path = out / f"eval-{art.name}-{res.get('pair') or 'pair'}.png"
        _save(fig, path, art)
        paths.append(path)
    return paths


def _rank_bars(ax: Any, ranked: list[dict[str, Any]], title: str, highlight: Sequence[str] = ()) -> None:
    ranked = sorted(ranked, key=lambda r: r["autorank"])
    names = [r["system"] for r in ranked]
    vals = [r["autorank"] for r in ranked]
    colors = ["tab:orange" if n in highlight else "tab:green" for n in names]
    ax.barh(range(len(names)), vals, color=colors)
    for y, v in enumerate(vals):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=6 if len(names) > 20 else 7)
    ax.set_yticks(range(len(names)), names, fontsize=7 if len(names) > 20 else 8)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel("AutoRank (1 = best, lower is better)")
    ax.grid(axis="x", alpha=0.3)


def render_autorank(art: Artefact, out: Path, highlight: Sequence[str] = ()) -> list[Path]:
    doc = read_autorank_doc(art.path)
    plt = _plt()
    paths = []
    for pair in doc.get("pairs", []):
        systems = pair.get("systems", [])
        if not systems:
            continue
        fig, ax = plt.subplots(figsize=(7, max(3.0, 0.22 * len(systems) + 1)))
        metrics = pair.get("metrics", [])
        _rank_bars(ax, systems, f"AutoRank {pair.get('pair', '')} ({len(systems)} systems, {len(metrics)} metrics)", highlight)
        fig.text(0.5, 0.005, "metrics: " + ", ".join(metrics), ha="center", va="bottom", fontsize=6, wrap=True)
        fig.tight_layout(rect=(0, 0.02, 1, 1))
        label = re.sub(r"[^\w.-]+", "_", str(pair.get("pair", "pair")))
        path = out / f"autorank-{art.name}-{label}.png"
        _save(fig, path, art)
        paths.append(path)
    return paths
