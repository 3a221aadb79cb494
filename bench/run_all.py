"""Run every stage benchmark, each in its own process, and print one JSON document plus a
markdown table (for the README) of the headline ratios. ``make bench`` runs this.

Each benchmark measures its baseline in the same run, so the ratios are comparable across
machines even though absolute times on a shared machine are noise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from common import machine

BENCH = Path(__file__).resolve().parent

# bench name → (headline key, what the ratio means, goal)
HEADLINES = {
    "backend": ("ratio", "batched length-sorted generation vs one prompt at a time (throughput)", ">= 4"),
    "cluster": ("assign_throughput_ratio", "our k-means assignment vs raw faiss (throughput)", ">= 0.9"),
    "synthesize": ("ratio", "batched synthesis vs one request at a time (requests/s)", "> 1"),
    "train": ("speedup", "packed vs unpacked SFT (tokens/s)", ">= 1.8"),
    "grpo": ("ratio", "in2x TIC-GRPO vs plain TRL GRPOTrainer (steps/s)", ">= 0.95"),
    "merge": ("peak_rss_ratio_naive_over_in2x", "TIES: naive load-everything peak RSS / streaming peak RSS", "> 1"),
    "translate": ("batching_speedup", "batched vs one-by-one translation (segments/s)", ">= 4"),
    "eval": ("ratio", "in2x eval BLEU+chrF++ time / sacrebleu CLI per system", "<= 1.0"),
    "reliability": ("kill_survival_ratio", "kill points resumed to an identical artefact / kill points", "= 1"),
}


def main() -> int:
    only = set(sys.argv[1:])
    results, failures = {}, []
    for name in HEADLINES:
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(BENCH / f"{name}.py")], capture_output=True, text=True)
        if proc.returncode != 0:
            failures.append(name)
            print(f"bench {name} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        start = proc.stdout.find("{")
        results[name] = json.loads(proc.stdout[start:])
        print(f"bench {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    rows = ["| stage | measures | ratio | goal |", "|---|---|---|---|"]
    for name, doc in results.items():
        key, what, goal = HEADLINES[name]
        value = doc.get(key)
        shown = f"{value:.2f}" if isinstance(value, (int, float)) else str(value)
        rows.append(f"| {name} | {what} | {shown} | {goal} |")
    print(json.dumps({"machine": machine(), "results": results}, indent=2, ensure_ascii=False))
    print("\n".join(rows), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
