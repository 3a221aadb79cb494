"""The sample-difficulty report: warnings for short strata, reused rows and ungradable prompts on
stderr, and the JSON report (to a file, or to stderr with -v)."""

from __future__ import annotations

import json
from typing import Any

from in2x_cli import console


def emit_report(rep: dict[str, Any], path: str | None) -> None:
    from in2x_cli.io import write_json

    rounds = rep.get("rounds", 1)
    for s in (s for s in rep.get("strata", []) if s["shortfall"]):
        held = f"only {s['available']} rows" if rounds == 1 else f"only {s['available']} rows for {rounds} rounds ({s['disjoint_per_round']} per round without reuse)"
        console.warn(f"stratum {s['lang']}/{s['difficulty']}: quota {s['quota']}, {held} (shortfall {s['shortfall']}; rule: {rep['shortfall_rule']})")
    if rep.get("reused_draws"):
        where = ", ".join(f"{s['lang']}/{s['difficulty']} {s['reused_across_rounds']}" for s in rep["strata"] if s["reused_across_rounds"])
        console.warn(f"rounds are not disjoint: {rep['reused_draws']} draws repeat a row of another round ({where}); the pool is too small for {rounds} disjoint rounds of {rep['requested_per_round']}")
    invalid = rep.get("grading", {}).get("invalid", 0)
    if invalid:
        console.warn(f"{invalid} prompts could not be graded (invalid judge output after one retry); their rows are left out")
    if path is not None:
        write_json(path, rep)
    if console.verbosity() >= 2 and path is None:  # -v: the whole report (it is also in the output's .meta.json)
        console.stderr_console().print(json.dumps(rep, ensure_ascii=False, indent=2), markup=False, highlight=False, soft_wrap=True)
    else:
        console.info("sample-difficulty: " + summary_line(rep) + (f"; report in {path}" if path else "; the whole report with -v or --report FILE"))


def summary_line(rep: dict[str, Any]) -> str:
    """The report in one line: what was picked against what was asked, and what was graded."""
    parts = []
    if "selected_per_round" in rep:
        parts.append(f"{rep['selected_per_round']} rows per round × {rep.get('rounds', 1)} (requested {rep['requested_per_round']})")
    pool = rep.get("pool") or {}
    if "rows" in pool:
        parts.append(f"pool {pool['rows']} rows")
    short = [s for s in rep.get("strata", []) if s.get("shortfall")]
    if short:
        parts.append(f"{len(short)} short strata")
    grading = rep.get("grading") or {}
    graded = {k: v for k, v in grading.items() if isinstance(v, int) and not isinstance(v, bool) and v}
    if graded:
        parts.append("grading " + ", ".join(f"{k} {v}" for k, v in graded.items()))
    return "; ".join(parts) or "done"
