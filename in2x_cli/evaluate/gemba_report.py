"""How many segments an LLM judge (gemba-esa) could score, per system: the ``judged`` entry of
the eval document and one stderr line per system with unscored segments. An unreadable judge
reply is never turned into a score: the system score is the mean over the scored segments, and
this says over how many."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from in2x_cli import console


def judge_counts(results: Sequence[Any]) -> dict[str, Any]:
    """``{"scored", "invalid", "retried", "errors": {reason: count}}`` for one system's results."""
    errors: dict[str, int] = {}
    for r in results:
        if r.score is None and r.error:
            reason = r.error.split(":", 1)[0] + ": " + _reason(r.error)
            errors[reason] = errors.get(reason, 0) + 1
    return {
        "scored": sum(r.score is not None for r in results),
        "invalid": sum(r.score is None for r in results),
        "retried": sum(r.attempts["spans"] + r.attempts["score"] > (2 if r.spans is not None else 1) for r in results),
        "errors": errors,
    }


def _reason(error: str) -> str:
    """The kind of failure without the quoted reply text (so counts group)."""
    detail = error.split(":", 1)[1].strip() if ":" in error else error
    return detail.split(":", 1)[0].split("'", 1)[0].strip()


def report_judgements(result: dict[str, Any]) -> None:
    """One stderr line per (system, judge metric): scored/total, retried, and why others failed."""
    for entry in result["systems"]:
        for key, counts in entry.get("judged", {}).items():
            total = counts["scored"] + counts["invalid"]
            line = f"{key}: {entry['system']}: {counts['scored']}/{total} segments scored"
            if counts["retried"]:
                line += f", {counts['retried']} after a retry"
            if counts["invalid"]:
                reasons = "; ".join(f"{n}× {why}" for why, n in counts["errors"].items())
                console.warn(f"{line}; {counts['invalid']} without a valid judge reply get no score ({reasons})")
            else:
                console.info(line)
