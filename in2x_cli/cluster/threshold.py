"""Pick the Birch threshold from ``in2x cluster --sweep-threshold`` output (a documented rule).

The paper (arXiv 2508.14472) tunes the Birch threshold by tag recapture and cluster smoothness and
ends with ~1.5M clusters for 40M instructions; it does not give the rule or the thresholds it
tried. Ours, applied to one sweep report per threshold:

  1. tag recapture: keep the thresholds whose ``tag_recapture`` is within ``recapture_tolerance``
     (default 0.02) of the best one (skipped when no row had a tag: every ``tag_recapture`` null);
  2. smoothness: of those, keep the ones whose ``smoothness`` (size entropy / ln K, 1 = equal sizes)
     is within ``smoothness_tolerance`` (default 0.05) of the best kept one;
  3. size: of those, take the one whose ``n_clusters`` is nearest the target on a log scale
     (|ln(n / target)|); ties go to the larger threshold (fewer, larger clusters). The target
     defaults to the paper's ratio, rows × 1.5M / 40M.

    python -m in2x_cli.cluster.threshold SWEEP.jsonl --rows N [--target K]   → prints the threshold

The reasoning (every report with its verdict) goes to stderr; stdout is the threshold alone, so a
recipe can write ``T=$(python -m in2x_cli.cluster.threshold ...)``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

PAPER_ROWS = 40_000_000  # the paper's instruction pool
PAPER_CLUSTERS = 1_500_000  # the paper's Birch clusters over it


def paper_target(rows: int) -> int:
    """Clusters at the paper's ratio (1.5M per 40M rows), at least 1."""
    return max(1, round(rows * PAPER_CLUSTERS / PAPER_ROWS))


def choose_threshold(
    reports: Sequence[dict[str, Any]],
    target_clusters: int,
    *,
    recapture_tolerance: float = 0.02,
    smoothness_tolerance: float = 0.05,
) -> tuple[float, list[dict[str, Any]]]:
    """The rule of the module docstring; returns the threshold and each report with a ``verdict``."""
    if not reports:
        raise ValueError("the sweep has no reports")
    if target_clusters < 1:
        raise ValueError("the target cluster count must be >= 1")
    notes = [dict(r, verdict="") for r in reports]
    kept = list(notes)
    recaptures = [r["tag_recapture"] for r in kept if r.get("tag_recapture") is not None]
    if recaptures:
        best = max(recaptures)
        for r in kept:
            if r.get("tag_recapture") is None or r["tag_recapture"] < best - recapture_tolerance:
                r["verdict"] = f"tag recapture below {best:.3f} - {recapture_tolerance}"
        kept = [r for r in kept if not r["verdict"]]
    smooth = max(float(r.get("smoothness") or 0.0) for r in kept)
    for r in kept:
        if float(r.get("smoothness") or 0.0) < smooth - smoothness_tolerance:
            r["verdict"] = f"smoothness below {smooth:.3f} - {smoothness_tolerance}"
    kept = [r for r in kept if not r["verdict"]]
    pick = min(kept, key=lambda r: (abs(math.log(max(int(r["n_clusters"]), 1) / target_clusters)), -float(r["threshold"])))
    for r in kept:
        r["verdict"] = "chosen" if r is pick else f"further from {target_clusters} clusters"
    return float(pick["threshold"]), notes


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m in2x_cli.cluster.threshold", description=__doc__.split("\n")[0])
    ap.add_argument("sweep", help="JSONL written by in2x cluster --sweep-threshold")
    ap.add_argument("--rows", type=int, help="rows in the pool (the target becomes rows x 1.5M / 40M, the paper's ratio)")
    ap.add_argument("--target", type=int, help="target cluster count (overrides --rows)")
    ap.add_argument("--recapture-tolerance", type=float, default=0.02)
    ap.add_argument("--smoothness-tolerance", type=float, default=0.05)
    args = ap.parse_args(argv)
    if args.target is None and args.rows is None:
        print(f"{ap.prog}: give --rows or --target", file=sys.stderr)
        return 2
    target = args.target if args.target is not None else paper_target(args.rows)
    try:
        with open(args.sweep, encoding="utf-8") as fh:
            reports = [json.loads(line) for line in fh if line.strip()]
        threshold, notes = choose_threshold(reports, target, recapture_tolerance=args.recapture_tolerance, smoothness_tolerance=args.smoothness_tolerance)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"{ap.prog}: {args.sweep}: {exc}", file=sys.stderr)
        return 2
    for r in notes:
        print(f"threshold {r['threshold']}: {r['n_clusters']} clusters, tag recapture {r.get('tag_recapture')}, "
              f"smoothness {r.get('smoothness')}: {r['verdict']}", file=sys.stderr)  # fmt: skip
    print(threshold)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
