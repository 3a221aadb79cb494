"""Where a synthesize candidate sits, and which run made it: the ``id`` of every output row.

``{mode}-{run}-{lang}-{slot:06d}`` in the generating modes (slot ``k`` of language ``lang``'s
stream), ``{mode}-{run}-{index:06d}`` in the input modes (input row ``index``); ``run`` is the
8-hex settings key (``SynthConfig.run_key``), so ``--resume`` can tell rows of another run.
"""

from __future__ import annotations

import re

GENERATING_MODES = ("self-instruct", "magpie")
INPUT_MODES = ("rewrite", "answer")
MODES = GENERATING_MODES + INPUT_MODES


def slot_id(mode: str, run: str, lang: str, slot: int) -> str:
    return f"{mode}-{run}-{lang}-{slot:06d}"


def row_id(mode: str, run: str, index: int) -> str:
    return f"{mode}-{run}-{index:06d}"


_SLOT_ID = re.compile(r"^(?P<mode>[a-z-]+)-(?P<run>[0-9a-f]{8})-(?P<lang>[a-z]{2,3})-(?P<slot>\d{6,})$")
_ROW_ID = re.compile(r"^(?P<mode>[a-z-]+)-(?P<run>[0-9a-f]{8})-(?P<index>\d{6,})$")


def parse_id(value: object) -> tuple[str, str, tuple[str, int] | int] | None:
    """``(mode, run, place)`` of an id written by synthesize, or None."""
    if not isinstance(value, str):
        return None
    m = _SLOT_ID.match(value)
    if m:
        return m["mode"], m["run"], (m["lang"], int(m["slot"]))
    m = _ROW_ID.match(value)
    if m:
        return m["mode"], m["run"], int(m["index"])
    return None
