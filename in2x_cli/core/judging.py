"""What every LLM judge in in2x shares: showing it untrusted text, and reading its JSON verdict.

Three judges use this: the difficulty grader (``core/difficulty.py``), synthesize's critic and
ReReading (``core/synthesize.py``), and the GRPO generative reward (``rewards/judge.py``).

Showing text (prompt-injection guards). Graded text goes between ``<<<`` … ``>>>`` markers; the
text must not be able to close its block early and pose as prompt text (a forged ``>>>`` or
``<<<END …>>>`` followed by "new instructions" for the judge):
  ``inert_markers`` — ``<<<`` → ``‹‹‹``, ``>>>`` → ``›››`` (difficulty judge, generative reward);
  ``fence``         — the text between ``<<<LABEL>>>`` and ``<<<END LABEL>>>``, with marker
                      look-alikes broken up as ``<< <`` / ``> >>`` (synthesize's prompts).

Reading verdicts. A judge reply is free text; the verdict is a JSON object inside it (prose and
```json fences around it are fine). ``find_json_objects`` finds every top-level object;
``one_verdict`` keeps those carrying a verdict key and fails closed unless there is exactly one
(an echo of the judged text that contains a verdict, next to the judge's own, is ambiguous).
Every parser raises ``VerdictError`` with a message that can be quoted back to the judge in a
retry turn.
"""

from __future__ import annotations

import json
from typing import Any


class VerdictError(ValueError):
    """A judge reply that does not hold a valid verdict (the message says why)."""


def inert_markers(text: str | None) -> str:
    """``<<<`` → ``‹‹‹``, ``>>>`` → ``›››``: text shown to a judge cannot close its block early and
    pose as prompt text (``None`` reads as empty)."""
    return (text or "").replace("<<<", "‹‹‹").replace(">>>", "›››")


def fence(text: str, label: str) -> str:
    """Put candidate text between unambiguous markers for a judge prompt.

    ``<<<LABEL>>>`` … ``<<<END LABEL>>>``; any ``<<<``/``>>>`` inside the text is broken up first
    so the text cannot close its block early and pose as prompt text.
    """
    safe = text.replace("<<<", "<< <").replace(">>>", "> >>")
    return f"<<<{label}>>>\n{safe}\n<<<END {label}>>>"


def find_json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object embedded in ``text`` (prose and ```json fences around it are
    fine), in order. Objects nested inside another are not returned separately."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    i = 0
    while True:
        start = text.find("{", i)
        if start < 0:
            return found
        try:
            obj, end = decoder.raw_decode(text, start)
        except ValueError:
            i = start + 1
            continue
        except RecursionError:  # nested past Python's limit (a degenerate reply): no verdict in there
            return found
        found.append(obj)
        i = end


def one_verdict(text: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The one JSON object in ``text`` that carries any of ``keys``; ``VerdictError`` when there
    is none or more than one."""
    objs = [o for o in find_json_objects(text) if any(k in o for k in keys)]
    if not objs:
        raise VerdictError(f"no JSON object with {', '.join(repr(k) for k in keys)} in the reply")
    if len(objs) > 1:
        # An echo of candidate text that contains a verdict, next to the judge's own: fail closed.
        raise VerdictError(f"{len(objs)} verdict objects in the reply (expected exactly one)")
    return objs[0]


__all__ = ["VerdictError", "fence", "find_json_objects", "inert_markers", "one_verdict"]
