"""Which candidates a synthesize run processes, in which blocks, and how a resumed run finds
where to continue.

Every candidate has a fixed place: in the generating modes (self-instruct, magpie) the slot
``(lang, k)`` of its language's stream, in the input modes (rewrite, answer) the index of its
input row. Its text depends only on that place, the seed and the settings (per-request seeds are
derived from the place, see base.py), and whether it is kept depends only on it and on earlier
places of the same language (near-duplicate search). So the output is a function of the settings,
not of batching or interruptions:

* generating modes: language L keeps the first ``quota[L]`` accepted candidates of its stream in
  slot order, and gives up after ``cap[L]`` slots (``--max-attempts``); a block takes, for every
  language still short, slots in proportion to what it still needs;
* input modes: every row is decided, in blocks of consecutive rows.

Rows are written in block order, and inside a block in member order, to the output (accepted) or
the rejects file; a kill leaves a prefix of that sequence. ``--resume`` replays the block schedule
against the rows already written: blocks whose every counted member is decided are skipped (their
rows rebuild the near-duplicate pools and the counts); the first block with an undecided member is
recomputed whole (so its batches are the same as in an uninterrupted run) and rows already written
are not written again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from in2x_cli.core.synthesize import allocate

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


@dataclass
class QuotaSchedule:
    """Per-language slot streams for the generating modes (see the module docstring)."""

    quotas: dict[str, int]
    caps: dict[str, int]
    block_size: int
    next_slot: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for lang in self.quotas:
            self.next_slot.setdefault(lang, 0)
            self.accepted.setdefault(lang, 0)

    def active(self) -> list[str]:
        return [
            lang for lang, q in self.quotas.items() if self.accepted[lang] < q and self.next_slot[lang] < self.caps[lang]
        ]

    def next_block(self) -> list[tuple[str, int]]:
        """The next block's members ``(lang, slot)``, language by language; [] when done."""
        active = self.active()
        if not active:
            return []
        need = {lang: self.quotas[lang] - self.accepted[lang] for lang in active}
        share = allocate(self.block_size, need)
        members: list[tuple[str, int]] = []
        for lang in active:
            start = self.next_slot[lang]
            n = min(share[lang], self.caps[lang] - start)
            members.extend((lang, s) for s in range(start, start + n))
        return members

    def counted(self, members: list[tuple[str, int]], accepted: dict[tuple[str, int], bool | None]) -> list[tuple[str, int]]:
        """Members whose decision counts: those up to the one that fills their language's quota.
        ``accepted[m]`` is True/False, or None for an undecided member, treated as not accepted:
        the cut then falls at or after the true one, so an undecided member that matters is
        always in the result (and makes a resumed run recompute the block)."""
        count = dict(self.accepted)
        out = []
        for m in members:
            lang = m[0]
            if count[lang] >= self.quotas[lang]:
                continue
            out.append(m)
            if accepted.get(m):
                count[lang] += 1
        return out

    def commit(self, members: list[tuple[str, int]], accepted: dict[tuple[str, int], bool | None]) -> None:
        for m in self.counted(members, accepted):
            if accepted.get(m):
                self.accepted[m[0]] += 1
        for lang, slot in members:
            self.next_slot[lang] = max(self.next_slot[lang], slot + 1)


def blocks_of(items: Iterator, size: int) -> Iterator[list]:
    block: list = []
    for item in items:
        block.append(item)
        if len(block) >= size:
            yield block
            block = []
    if block:
        yield block
