"""The tables ``in2x eval`` and ``in2x eval autorank`` print on stderr (the JSON goes to stdout)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from in2x_cli import console

TABLE_MAX_GROUPS = 30  # breakdowns with more groups (documents) stay in the JSON only


def print_wide_table(table: Any) -> None:
    """Print on stderr at the table's natural width: when stderr is a file or a pipe, rich
    would otherwise squeeze it into 80 columns and cut system and metric names."""
    from rich.console import Console
    from rich.measure import Measurement

    if console.verbosity() < 1:
        return
    con = console.stderr_console()
    needed = Measurement.get(con, con.options.update(width=1000), table).maximum
    if needed <= con.width:
        con.print(table)
    else:
        Console(stderr=True, highlight=False, soft_wrap=True, width=needed, force_terminal=con.is_terminal).print(table)


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _digits(key: str, results: Sequence[dict[str, Any]]) -> int:
    values = [abs(s["scores"][key]) for r in results for s in r["systems"] if s["scores"].get(key) is not None]
    return 4 if values and max(values) <= 1.5 else 2


def _score_columns(systems: Sequence[dict[str, Any]], key: str, digits: int) -> list[tuple[str, list[str]]]:
    """A metric's columns: the score, then (when tested) the ±CI half-width and the p-value, each
    its own right-justified column of fixed decimals, so that decimal points line up."""
    ests = [entry.get("significance", {}).get(key) or {} for entry in systems]
    # † before the number: trained on this metric (evaluate/overfit.py), not held out; numbers stay aligned
    marks = ["† " if key in entry.get("reward_overlap", {}).get("metrics", ()) else "" for entry in systems]
    columns = [("", [m + _fmt(entry["scores"][key], digits) for m, entry in zip(marks, systems, strict=True)])]
    if any(e.get("ci") is not None for e in ests):
        columns.append(("±95%", [_fmt(e["ci"], digits) if e.get("ci") is not None else "" for e in ests]))
    if any(e.get("p_value") is not None for e in ests):
        columns.append(("p", [f"{e['p_value']:.4f}" + ("*" if e["p_value"] < 0.05 else " ") if e.get("p_value") is not None else "" for e in ests]))
    return columns


def render_tables(result: dict[str, Any]) -> None:
    """Scores per system (with CI and p-value when tested), breakdowns and signatures, on stderr."""
    from rich.table import Table

    keys = list(result["metrics"])
    digits = {k: _digits(k, [result]) for k in keys}
    title = f"{result['pair'] or result['source']}: {result['segments']} segments"
    table = Table(title=title, title_justify="left")
    table.add_column("system")
    ranks = {r["system"]: r["autorank"] for r in result.get("autorank") or []}
    systems = list(result["systems"])
    if ranks:  # best first, as AutoRank orders them (the JSON keeps the input order)
        systems.sort(key=lambda e: ranks[e["system"]])
    columns = []
    for k in keys:
        arrow = "↑" if result["metrics"][k]["higher_is_better"] else "↓"
        for header, cells in _score_columns(systems, k, digits[k]):
            table.add_column(header or f"{k} {arrow}", justify="right")
            columns.append(cells)
    if ranks:
        table.add_column("AutoRank", justify="right")
    paired = result["significance"] and result["significance"]["test"] in ("bs", "ar")  # a baseline to compare with
    for i, entry in enumerate(systems):
        cells = [("Baseline: " if entry["system"] == result["baseline"] and paired else "") + entry["system"]]
        cells += [column[i] for column in columns]
        if ranks:
            cells.append(_fmt(ranks[entry["system"]]))
        table.add_row(*cells)
    print_wide_table(table)
    first = result["systems"][0]
    for by, groups in first.get("by", {}).items():
        if len(groups) > TABLE_MAX_GROUPS:
            console.info(f"--by {by}: {len(groups)} groups, in the JSON output only")
            continue
        sub = Table(title=f"by {by}", title_justify="left")
        sub.add_column(by)
        sub.add_column("system")
        for k in keys:
            sub.add_column(k, justify="right")
        for value in groups:
            for entry in result["systems"]:
                g = entry["by"][by][value]
                sub.add_row(f"{value} ({g['segments']})", entry["system"], *(_fmt(g["scores"][k], digits[k]) for k in keys))
        print_wide_table(sub)
    for k, info in result["metrics"].items():
        console.info(f"{k}: {info['signature']}")
    s = result["significance"]
    if s and s["test"] == "bootstrap-ci":
        console.info(f"95% intervals from {s['samples']} bootstrap samples, seed {s['seed']}: score ±half-width")
    elif s:
        extra = f", {s['confidence_samples']} bootstrap samples for the intervals" if s["test"] == "ar" else ""
        console.info(
            f"significance: paired {'bootstrap' if s['test'] == 'bs' else 'approximate randomisation'} vs {result['baseline']!r}, "
            f"{s['samples']} {'samples' if s['test'] == 'bs' else 'trials'}{extra}, seed {s['seed']}; "
            "score ±half-width of the 95% interval, * = p < 0.05"
        )


def render_autorank(doc: dict[str, Any], top: int | None = None) -> None:
    from rich.table import Table

    for entry in doc["pairs"]:
        n = len(entry["systems"])
        table = Table(title=f"AutoRank {entry['pair']}: {n} systems" + (f", domain {entry['domain']}" if entry["domain"] else ""), title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("system")
        table.add_column("AutoRank ↓", justify="right")
        for m in entry["metrics"]:
            table.add_column(f"{m} {'↓' if m in entry['lower_is_better'] else '↑'}", justify="right")
        digits = {m: 4 if max((abs(r["scores"][m]) for r in entry["systems"]), default=0) <= 1.5 else 2 for m in entry["metrics"]}
        for i, r in enumerate(entry["systems"][: top or n], start=1):
            table.add_row(str(i), r["system"], f"{r['autorank']:.2f}", *(_fmt(r["scores"][m], digits[m]) for m in entry["metrics"]))
        print_wide_table(table)
