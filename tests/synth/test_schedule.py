"""Which candidates a synthesize run processes: quota blocks, the quota cut, ids."""

from __future__ import annotations

from in2x_cli.synth.ids import parse_id, row_id, slot_id
from in2x_cli.synth.schedule import QuotaSchedule, blocks_of


def test_blocks_follow_remaining_need_and_stop_at_the_quota():
    sched = QuotaSchedule({"en": 2, "ja": 1}, {"en": 8, "ja": 4}, block_size=3)
    first = sched.next_block()
    assert first == [("en", 0), ("en", 1), ("ja", 0)]  # 3 split 2:1 by what each still needs
    sched.commit(first, {("en", 0): False, ("en", 1): True, ("ja", 0): True})
    assert sched.accepted == {"en": 1, "ja": 1} and sched.active() == ["en"]
    second = sched.next_block()
    assert second == [("en", 2), ("en", 3), ("en", 4)]
    status = {("en", 2): True, ("en", 3): True, ("en", 4): False}
    # en reaches its quota at slot 2: later members of the block do not count (never written)
    assert sched.counted(second, status) == [("en", 2)]
    sched.commit(second, status)
    assert sched.accepted == {"en": 2, "ja": 1} and sched.next_block() == []


def test_an_undecided_member_is_counted():
    sched = QuotaSchedule({"en": 1}, {"en": 4}, block_size=3)
    block = sched.next_block()
    # en 0 undecided (killed before it was written): it counts, so resume recomputes the block
    assert sched.counted(block, {("en", 0): None, ("en", 1): True}) == [("en", 0), ("en", 1)]
    assert sched.counted(block, {("en", 0): True, ("en", 1): None}) == [("en", 0)]


def test_attempt_cap_ends_a_language():
    sched = QuotaSchedule({"zh": 5}, {"zh": 4}, block_size=10)
    block = sched.next_block()
    assert block == [("zh", s) for s in range(4)]
    sched.commit(block, dict.fromkeys(block, False))
    assert sched.next_block() == []


def test_ids_round_trip():
    assert parse_id(slot_id("self-instruct", "0a1b2c3d", "ja", 17)) == (
        "self-instruct",
        "0a1b2c3d",
        ("ja", 17),
    )
    assert parse_id(row_id("answer", "0a1b2c3d", 1234567)) == ("answer", "0a1b2c3d", 1234567)
    assert parse_id("i0001") is None and parse_id(5) is None


def test_blocks_of():
    assert list(blocks_of(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
