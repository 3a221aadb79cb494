"""Run every stage benchmark, each in its own process, and print one JSON document (stdout) plus
the markdown table of the README (stderr): in2x's figure and the named baseline's, measured in
the same run, and their ratio. ``make bench`` runs this (full sizes; ``make bench BENCH_ARGS=--quick``
or ``python bench/run_all.py --quick [name ...]`` for the small sizes of each benchmark).

Each benchmark measures its baseline in the same run, so the ratios are comparable across
machines even though absolute times on a shared machine are noise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import machine

BENCH = Path(__file__).resolve().parent

# bench → rows of (what, in2x value key, baseline value key, ratio key, unit, goal); keys are
# dotted paths into the benchmark's JSON (None: not given). Benchmarks in QUICK take --quick.
TABLE: dict[str, list[tuple[str, str | None, str | None, str, str, str]]] = {
    "merge": [
        ("TIES of 3 fp32 Llama-shaped checkpoints vs mergekit 0.1.5, same YAML: wall (median of 3, warm)", "in2x_seconds", "mergekit_seconds", "wall_ratio", "s", "<= 0.3"),
        ("… peak RSS (tensors compared: comparison.tensors_equal)", "in2x_peak_rss_mb", "mergekit_peak_rss_mb", "peak_rss_ratio", "MB", "<= 0.3"),
    ],
    "eval": [
        ("BLEU + chrF++ of the WMT24 en-ja systems vs ONE sacrebleu process (identical scores)", "sacrebleu.in2x_eval_seconds", "sacrebleu.sacrebleu_one_process_seconds", "sacrebleu.ratio", "s", "<= 1.1"),
        ("… vs sacrebleu once per system", "sacrebleu.in2x_eval_seconds", "sacrebleu.sacrebleu_cli_per_system_seconds", "sacrebleu.ratio_vs_per_system", "s", "<= 1.0"),
    ],
    "cluster": [
        ("cluster end to end, default embedder + Birch (no baseline: sklearn Birch alone is slower)", "runs.birch.seconds", None, "runs.birch.within_5_min", "s", "<= 300 s at 1M rows"),
        ("cluster end to end, embedder + k-means vs a sklearn + faiss script (wall)", "runs.kmeans.seconds", "runs.baseline.seconds", "kmeans_wall_ratio_in2x_over_baseline", "s", "<= 300 s at 1M rows"),
        ("… memory (PSS of the process tree, sampled)", "runs.kmeans.peak_pss_mb_process_tree_sampled", "runs.baseline.peak_pss_mb_process_tree_sampled", "kmeans_rss_ratio_in2x_over_baseline", "MB", "bounded"),
    ],
    "cluster_assign": [("k-means assignment of 200k synthetic 384-d rows, chunked memmap vs raw faiss on the in-RAM array (throughput)", "assign_ours_seconds", "assign_raw_faiss_seconds", "assign_throughput_ratio", "s", ">= 0.9")],
    "grpo": [("`in2x grpo` vs a TRL GRPOTrainer script, same config (steps/s, through the CLI)", "steps_per_second.in2x", "steps_per_second.trl", "ratio", "steps/s", ">= 0.95")],
    "train": [("`in2x sft` packed vs a TRL SFTTrainer script unpacked (real tokens/s, through the CLI)", "in2x_packed.tokens_per_second", "trl_unpacked.tokens_per_second", "speedup_vs_trl", "tok/s", ">= 1.8")],
    "backend": [("batched length-sorted generation vs one prompt at a time (throughput)", None, None, "ratio", "", ">= 4")],
    "synthesize": [("batched synthesis vs one request at a time (requests/s)", None, None, "ratio", "", "> 1")],
    "translate": [("batched vs one-by-one translation (segments/s)", None, None, "batching_speedup", "", ">= 4")],
    "reliability": [("kill points resumed to an identical artefact / kill points", None, None, "kill_survival_ratio", "", "= 1")],
}
QUICK = {"merge", "eval", "cluster", "grpo", "train"}


def lookup(doc: dict[str, Any], path: str | None) -> Any:
    if path is None:
        return None
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def shown(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
        return f"{text} {unit}".strip()
    return str(value)


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = ["| stage | measures | in2x | baseline | ratio | goal |", "|---|---|---|---|---|---|"]
    for name, doc in results.items():
        for what, ours, theirs, ratio, unit, goal in TABLE[name]:
            rows.append(f"| {name} | {what} | {shown(lookup(doc, ours), unit)} | {shown(lookup(doc, theirs), unit)} | {shown(lookup(doc, ratio))} | {goal} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(TABLE)})")
    ap.add_argument("--quick", action="store_true", help="small sizes (--quick) for the benchmarks that have them")
    args = ap.parse_args()
    results, failures = {}, []
    for name in TABLE:
        if args.names and name not in args.names:
            continue
        t0 = time.perf_counter()
        cmd = [sys.executable, str(BENCH / f"{name}.py")] + (["--quick"] if args.quick and name in QUICK else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            failures.append(name)
            print(f"bench {name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(proc.stdout[proc.stdout.find("{"):])
        results[name]["bench_wall_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"bench {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(json.dumps({"machine": machine(), "quick": args.quick, "results": results}, indent=2, ensure_ascii=False))
    print(table(results), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
