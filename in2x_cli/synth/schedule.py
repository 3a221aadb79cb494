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

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from in2x_cli.core.apportion import apportion
from in2x_cli.errors import UserError
from in2x_cli.synth.ids import GENERATING_MODES, parse_id, row_id, slot_id

if TYPE_CHECKING:
    from in2x_cli.synth.config import Stats
    from in2x_cli.synth.pipeline import Candidate, Synthesizer

# Rejected at these stages = passed the near-duplicate check (its final text is in the pool).
# ReReading runs before the check (pipeline.py), so its rejects never reached the pool.
AFTER_DEDUP = {"answer", "critic"}

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
            lang
            for lang, q in self.quotas.items()
            if self.accepted[lang] < q and self.next_slot[lang] < self.caps[lang]
        ]

    def next_block(self) -> list[tuple[str, int]]:
        """The next block's members ``(lang, slot)``, language by language; [] when done."""
        active = self.active()
        if not active:
            return []
        need = {lang: self.quotas[lang] - self.accepted[lang] for lang in active}
        share = apportion(self.block_size, need)
        members: list[tuple[str, int]] = []
        for lang in active:
            start = self.next_slot[lang]
            n = min(share[lang], self.caps[lang] - start)
            members.extend((lang, s) for s in range(start, start + n))
        return members

    def counted(
        self, members: list[tuple[str, int]], accepted: dict[tuple[str, int], bool | None]
    ) -> list[tuple[str, int]]:
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


class BlockRunner:
    """Runs a ``Synthesizer`` block by block, replaying rows already written on --resume."""

    def __init__(self, synth: Synthesizer) -> None:
        self.synth = synth

    def run_blocks(
        self,
        *,
        lines: Iterable[Any] = (),
        existing: Iterable[tuple[bool, dict[str, Any]]] = (),
        write: Callable[[Candidate], None],
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> Stats:
        """Process every block; ``existing`` are (accepted?, row) already written (--resume).
        ``write`` gets every candidate to write (accepted or rejected) in the documented order."""
        decided = self._index_existing(existing)
        if self.synth.cfg.mode in GENERATING_MODES:
            self._run_generating(decided, write, on_progress)
        else:
            self._run_inputs(lines, decided, write, on_progress)
        return self.synth.stats

    def _index_existing(
        self, existing: Iterable[tuple[bool, dict[str, Any]]]
    ) -> dict[str, tuple[bool, dict[str, Any]]]:
        decided: dict[str, tuple[bool, dict[str, Any]]] = {}
        for accepted, row in existing:
            parsed = parse_id(row.get("id"))
            if parsed is None or parsed[0] != self.synth.cfg.mode:
                raise UserError(
                    f"--resume: the existing output holds a row with id {row.get('id')!r}, not written by 'in2x synthesize {self.synth.cfg.mode}'",
                    self.synth.cfg.output if accepted else self.synth.cfg.rejects,
                )
            if parsed[1] != self.synth.run:
                raise UserError(
                    f"--resume: the existing rows come from a run with other settings (run {parsed[1]}, this run {self.synth.run}: "
                    "seed, model, prompts, rules, langs, --num or generation options differ); write to a new output",
                    self.synth.cfg.output if accepted else self.synth.cfg.rejects,
                )
            decided.setdefault(row["id"], (accepted, row))
        return decided

    def _replay_row(self, lang: str, row: dict[str, Any]) -> None:
        accepted = "reason" not in row
        if accepted or row.get("stage") in AFTER_DEDUP:
            self.synth.remember(lang, row["id"], row.get("instruction") or "")  # the final text, as checked

    def _run_generating(
        self,
        decided: dict[str, tuple[bool, dict[str, Any]]],
        write: Callable[[Candidate], None],
        on_progress: Any,
    ) -> None:
        quotas = apportion(self.synth.cfg.num, self.synth.weights)
        caps = {lang: max(q, math.ceil(q * self.synth.cfg.max_attempts)) for lang, q in quotas.items()}
        sched = QuotaSchedule(quotas, caps, self.synth.cfg.batch_size)
        total = sum(quotas.values())
        # Replay: skip blocks whose counted members are all decided.
        replaying = bool(decided)
        while True:
            members = sched.next_block()
            if not members:
                break
            ids = {m: slot_id(self.synth.cfg.mode, self.synth.run, m[0], m[1]) for m in members}
            if replaying:
                status = {m: (decided[ids[m]][0] if ids[m] in decided else None) for m in members}
                counted = sched.counted(members, status)
                if all(status[m] is not None for m in counted):
                    for m in counted:
                        self._replay_row(m[0], decided[ids[m]][1])
                        if status[m]:
                            self.synth.stats.resumed_accepted += 1
                        else:
                            self.synth.stats.resumed_rejected += 1
                    sched.commit(members, status)
                    if on_progress:
                        on_progress(sum(sched.accepted.values()), total)
                    continue
                replaying = False
            cands = self.synth.candidates_for(members)
            self.synth.process(cands)
            status = {c.place: c.reject is None for c in cands}
            counted = set(sched.counted(members, status))
            for c in cands:
                if c.place in counted:
                    self._emit(c, decided, write)
            sched.commit(members, status)
            if on_progress:
                on_progress(sum(sched.accepted.values()), total)
        for lang, q in quotas.items():
            if sched.accepted[lang] < q:
                self.synth.stats.shortfall[lang] = (
                    f"{sched.accepted[lang]} of {q} after {sched.next_slot[lang]} candidates (--max-attempts {self.synth.cfg.max_attempts:g})"
                )

    def _run_inputs(
        self,
        lines: Iterable[Any],
        decided: dict[str, tuple[bool, dict[str, Any]]],
        write: Callable[[Candidate], None],
        on_progress: Any,
    ) -> None:
        replaying = bool(decided)
        done = 0
        for block in blocks_of(self.synth.input_members(lines), self.synth.cfg.batch_size):
            ids = [row_id(self.synth.cfg.mode, self.synth.run, index) for index, _, _ in block]
            if replaying and all(i in decided for i in ids):
                for (_, _, lang), i in zip(block, ids, strict=True):
                    accepted, row = decided[i]
                    self._replay_row(lang, row)
                    if accepted:
                        self.synth.stats.resumed_accepted += 1
                    else:
                        self.synth.stats.resumed_rejected += 1
                done += len(block)
                if on_progress:
                    on_progress(done, None)
                continue
            replaying = False
            cands = self.synth.candidates_for(block)
            self.synth.process(cands)
            for c in cands:
                self._emit(c, decided, write)
            done += len(block)
            if on_progress:
                on_progress(done, None)

    def _emit(
        self,
        c: Candidate,
        decided: dict[str, tuple[bool, dict[str, Any]]],
        write: Callable[[Candidate], None],
    ) -> None:
        if c.id in decided:
            # Written before the interruption; recomputed only so the block is the same as in an
            # uninterrupted run.
            if decided[c.id][0]:
                self.synth.stats.resumed_accepted += 1
            else:
                self.synth.stats.resumed_rejected += 1
            return
        if c.reject is None:
            self.synth.stats.accepted += 1
        else:
            self.synth.stats.rejected[c.reject.reason] += 1
        write(c)
