"""Reliability benchmark: fuzz cases per command, kill points survived per stage, peak memory at
1x and 10x input. Prints JSON.

- fuzz: the hypothesis suites of tests/reliability (test_fuzz.py, test_judges.py) with
  IN2X_FUZZ_SCALE times their test-suite case counts; reports cases tried per command and how
  many ended in a clean error (exit 2) vs a success (the mutation left the input valid).
- kill_resume: tests/reliability/scenarios.py for every long stage and signal, several seeded
  kill points each (SIGKILL x --kill-seeds, SIGTERM and SIGINT once each); a point "survived"
  when the resumed run equals the uninterrupted one (same JSONL bytes / bit-identical weights).
  Baseline: the uninterrupted run of the same arguments.
- memory: peak heap (RssAnon) and peak RSS of each workload at --sizes rows in fresh
  interpreters; baseline: a script that only reads the same JSONL into a list of dicts (what a
  stage that holds its input would need at least), measured at the same sizes.

Usage: python bench/reliability.py [--fuzz-scale 4] [--kill-seeds 3] [--sizes 2000,20000] [--skip fuzz,kill,memory]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit  # noqa: E402

HOLD_ROWS = """
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
anon = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon:"))
print(json.dumps({"rows": len(rows), "anon_kb": anon}))
"""


def fuzz(scale: float) -> dict:
    report = Path(tempfile.mkdtemp(prefix="in2x-bench-fuzz-")) / "cases.json"
    env = {**os.environ, "IN2X_FUZZ_SCALE": str(scale), "IN2X_RELIABILITY_REPORT": str(report), "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reliability/test_fuzz.py", "tests/reliability/test_judges.py"],
        cwd=str(REPO), env=env, capture_output=True, text=True,
    )
    cases = json.loads(report.read_text()) if report.exists() else {}
    return {
        "scale": scale,
        "passed": proc.returncode == 0,
        "seconds": round(time.perf_counter() - t0, 1),
        "cases_total": sum(c["cases"] for c in cases.values()),
        "cases": cases,
        **({} if proc.returncode == 0 else {"failure": proc.stdout[-3000:]}),
    }


def kill_resume(seeds: int) -> dict:
    from in2x_cli.tiny import TinyConfig, build_tiny_model
    from tests.reliability.scenarios import JSONL_STAGES, TRAIN_STAGES, reference_run, run_jsonl, run_training

    root = Path(tempfile.mkdtemp(prefix="in2x-bench-kill-"))
    model = build_tiny_model(root / "tiny", TinyConfig(seed=0))
    plan = [(signal.SIGKILL, s) for s in range(seeds)] + [(signal.SIGTERM, 100), (signal.SIGINT, 200)]
    points, t0 = [], time.perf_counter()
    for stage in JSONL_STAGES:
        for sig, seed in plan:
            points.append(_attempt(run_jsonl, stage, root / f"{stage}-{seed}-{sig}", seed=seed, sig=sig))
    for stage in TRAIN_STAGES:
        ref = reference_run(stage, model, root / f"{stage}-reference")
        for sig, seed in plan:
            points.append(_attempt(run_training, stage, model, root / f"{stage}-{seed}-{sig}", seed=seed, sig=sig, ref=ref))
    summary: dict[str, dict[str, str]] = {}
    for p in points:
        s = summary.setdefault(p["stage"], {})
        ok, total = (int(x) for x in s.get(p["signal"], "0/0").split("/"))
        s[p["signal"]] = f"{ok + bool(p.get('identical') and p.get('interrupted'))}/{total + 1}"
    interrupted = [p for p in points if p.get("interrupted", True)]
    survived = sum(bool(p.get("identical")) for p in interrupted)
    return {"seconds": round(time.perf_counter() - t0, 1), "kill_points": len(interrupted), "kill_points_survived": survived,
            "finished_before_the_kill": len(points) - len(interrupted), "survived": summary, "points": points}


def _attempt(fn, stage: str, *args, seed: int, sig: int, **kwargs) -> dict:  # noqa: ANN001, ANN002, ANN003
    try:
        return fn(stage, *args, seed=seed, sig=sig, **kwargs).to_dict()
    except AssertionError as exc:  # a failed kill point is a result to report, not a crash
        return {"stage": stage, "signal": signal.Signals(sig).name, "seed": seed, "identical": False, "error": str(exc)[:500]}


def memory(sizes: tuple[int, ...]) -> dict:
    from tests.reliability.scenarios import MEMORY_WORKLOADS, measure_memory

    root = Path(tempfile.mkdtemp(prefix="in2x-bench-mem-"))
    out = {}
    for name in MEMORY_WORKLOADS:
        r = measure_memory(name, root / name.split()[0] / name.replace(" ", "_"), sizes)
        base = [_hold_rows(root / name.split()[0] / name.replace(" ", "_") / f"{run['rows']}") for run in r["runs"]]
        small, large = r["runs"][0], r["runs"][-1]
        added = large["rows"] - small["rows"]
        growth = (large["peak_anon_kb"] - small["peak_anon_kb"]) * 1024
        base_growth = (base[-1] - base[0]) * 1024
        out[name] = {
            "bound": r["bound"],
            "runs": [{**run, "baseline_hold_rows_anon_kb": b} for run, b in zip(r["runs"], base, strict=True)],
            "peak_anon_growth_mb": round(growth / 2**20, 1),
            "growth_per_added_row_bytes": round(growth / added),
            "baseline_growth_per_added_row_bytes": round(base_growth / added),
            "growth_vs_baseline": round(growth / base_growth, 3) if base_growth > 0 else None,
        }
    return out


def _hold_rows(directory: Path) -> int:
    """Peak heap of a process that only loads this workload's input rows into a list."""
    inp = next(p for p in directory.glob("*.jsonl") if p.name.split(".")[0] in ("pool", "docs", "rows"))
    proc = subprocess.run([sys.executable, "-c", HOLD_ROWS, str(inp)], capture_output=True, text=True, check=True)
    return int(json.loads(proc.stdout)["anon_kb"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fuzz-scale", type=float, default=4.0)
    ap.add_argument("--kill-seeds", type=int, default=3)
    ap.add_argument("--sizes", default="2000,20000")
    ap.add_argument("--skip", default="")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.chdir(REPO)
    result: dict = {"benchmark": "reliability"}
    if "fuzz" not in skip:
        result["fuzz"] = fuzz(args.fuzz_scale)
    if "kill" not in skip:
        result["kill_resume"] = kill_resume(args.kill_seeds)
    if "memory" not in skip:
        result["memory"] = memory(tuple(int(x) for x in args.sizes.split(",")))
    # headlines (bench/run_all.py): every interrupted run resumed identically; the worst streaming
    # command's memory growth as a fraction of what holding its input rows costs
    if "kill_resume" in result:
        k = result["kill_resume"]
        result["kill_survival_ratio"] = round(k["kill_points_survived"] / max(1, k["kill_points"]), 3)
    if "memory" in result:
        ratios = [m["growth_vs_baseline"] for m in result["memory"].values() if m["bound"] == "streaming" and m["growth_vs_baseline"] is not None]
        result["worst_streaming_growth_vs_holding_rows"] = max(ratios) if ratios else None
    if "fuzz" in result:
        result["fuzz_cases"] = result["fuzz"]["cases_total"]
    emit(result)


if __name__ == "__main__":
    main()
