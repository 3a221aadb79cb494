"""Reliability suites: print how many fuzz cases each command was fed (and write them to
$IN2X_RELIABILITY_REPORT as JSON when set, for bench/reliability.py)."""

from __future__ import annotations

import json
import os


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001, ANN201
    from tests.reliability.helpers import report_cases

    cases = report_cases()
    if not cases:
        return
    terminalreporter.section("in2x fuzz cases per command")
    for cmd, info in cases.items():
        rest = ", ".join(f"{k} {v}" for k, v in info.items() if k != "cases")
        terminalreporter.write_line(f"{cmd:<28} {info['cases']:>5}  ({rest})")
    path = os.environ.get("IN2X_RELIABILITY_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(cases, fh, indent=2)
