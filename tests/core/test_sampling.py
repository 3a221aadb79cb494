"""Quota arithmetic, shortfall rules and round-robin draw order, checked by hand."""

from fractions import Fraction

import numpy as np
import pytest

from in2x_cli.core.apportion import largest_remainder
from in2x_cli.core.sampling import (
    LEVELS,
    allocate,
    make_strata,
    normalize_difficulty,
    round_positions,
    round_robin_order,
    select,
)
from in2x_cli.sample.config import parse_ratio

PAPER = parse_ratio("3:3:3:1:0")


def test_difficulty_spellings():
    assert normalize_difficulty("very_hard") == "very_hard"
    assert normalize_difficulty("Very Difficult") == "very_hard"
    assert normalize_difficulty("  moderate ") == "medium"
    assert normalize_difficulty("Simple") == "easy"
    assert normalize_difficulty("very-easy") == "very_easy"
    assert [normalize_difficulty(i) for i in (1, 2, 3, 4, 5)] == ["very_easy", "easy", "medium", "hard", "very_hard"]
    assert normalize_difficulty("5") == "very_hard" and normalize_difficulty(3.0) == "medium"
    for bad in ("extreme", 0, 6, True, None, [1]):
        assert normalize_difficulty(bad) is None


def test_largest_remainder_hand_cases():
    # exact 2.1, 2.1, 2.1, 0.7, 0 -> floors 2,2,2,0,0 (6); the 1 leftover goes to the 0.7
    assert largest_remainder(7, PAPER) == [2, 2, 2, 1, 0]
    assert largest_remainder(10, PAPER) == [3, 3, 3, 1, 0]
    # exact 0.3 each for three equal weights with total 1: tie -> earliest index
    assert largest_remainder(1, [1, 1, 1]) == [1, 0, 0]
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]
    assert largest_remainder(0, [1, 2]) == [0, 0]
    for total in range(0, 50):
        assert sum(largest_remainder(total, PAPER)) == total


def _strata(avail, langs=("zh", "en", "ja")):
    weights = dict.fromkeys(langs, Fraction(1))
    return make_strata(weights, PAPER, avail)


def _by(strata):
    return {(s.lang, s.level): s.allocated for s in strata}


def test_paper_ratio_1000_three_languages():
    # 30 weight units: 100 rows per unit-3 stratum (9 of them), 33.33 per easy stratum; the one
    # leftover row ties across the three easy strata and goes to the first language (zh).
    plenty = {(lang, lv): 1000 for lang in ("zh", "en", "ja") for lv in LEVELS}
    alloc = allocate(1000, _strata(plenty))
    got = _by(alloc.strata)
    for lang in ("zh", "en", "ja"):
        for lv in ("very_hard", "hard", "medium"):
            assert got[(lang, lv)] == 100
        assert got[(lang, "very_easy")] == 0
    assert (got[("zh", "easy")], got[("en", "easy")], got[("ja", "easy")]) == (34, 33, 33)
    assert alloc.allocated == 1000 and not alloc.notes


def test_shortfall_redistributed_within_language():
    # zh, en 1:1, total 20: quotas 3,3,3,3,3,3,1,1,0,0. zh very_hard holds 1 row: 2 missing,
    # re-apportioned over zh hard/medium/easy (weights 3,3,1): exact 6/7, 6/7, 2/7 -> floors 0;
    # the two rows go to the largest remainders hard (tie, earlier) and medium.
    avail = {(lang, lv): 10 for lang in ("zh", "en") for lv in LEVELS}
    avail[("zh", "very_hard")] = 1
    alloc = allocate(20, _strata(avail, ("zh", "en")))
    got = _by(alloc.strata)
    assert [got[("zh", lv)] for lv in LEVELS] == [1, 4, 4, 1, 0]
    assert [got[("en", lv)] for lv in LEVELS] == [3, 3, 3, 1, 0]
    zh_vh = next(s for s in alloc.strata if (s.lang, s.level) == ("zh", "very_hard"))
    assert (zh_vh.quota, zh_vh.shortfall) == (3, 2)
    assert alloc.notes == ["2 rows moved to other levels of zh"]


def test_shortfall_redistributed_across_languages():
    # zh holds only 1 very_hard row: zh's 9 missing rows go to en (weights 3,3,3,1):
    # exact 2.7,2.7,2.7,0.9 -> floors 2,2,2,0; 3 leftovers: easy (0.9), then very_hard, hard.
    avail = {(lang, lv): 10 for lang in ("zh", "en") for lv in LEVELS}
    for lv in LEVELS:
        avail[("zh", lv)] = 0
    avail[("zh", "very_hard")] = 1
    alloc = allocate(20, _strata(avail, ("zh", "en")))
    got = _by(alloc.strata)
    assert [got[("en", lv)] for lv in LEVELS] == [6, 6, 5, 2, 0]
    assert alloc.allocated == 20
    assert alloc.notes == ["9 rows moved across languages"]


def test_shortfall_none_and_exhausted_pool():
    avail = {(lang, lv): 10 for lang in ("zh", "en") for lv in LEVELS}
    avail[("zh", "very_hard")] = 1
    alloc = allocate(20, _strata(avail, ("zh", "en")), "none")
    assert alloc.allocated == 18 and alloc.notes == ["2 rows missing; not redistributed (shortfall rule 'none')"]
    # the very_easy rows (weight 0) are never used to fill a gap
    small = {(lang, lv): 1 for lang in ("zh", "en") for lv in LEVELS}
    alloc = allocate(20, _strata(small, ("zh", "en")))
    assert alloc.allocated == 8
    assert alloc.notes[-1] == "12 rows missing: the pool has no more rows in any stratum with weight > 0"


def test_shortfall_shrink_keeps_ratio():
    # zh very_hard holds 1 row. T=8: exact 1.2 (x6), 0.4 (x2) -> 1 each for all eight strata:
    # fits. T=9: floors 1 (x6); leftovers to 0.45, 0.45, then zh very_hard (0.35) -> 2: does not.
    avail = {(lang, lv): 10 for lang in ("zh", "en") for lv in LEVELS}
    avail[("zh", "very_hard")] = 1
    alloc = allocate(20, _strata(avail, ("zh", "en")), "shrink")
    assert alloc.allocated == 8
    assert set(_by(alloc.strata).values()) == {0, 1}
    assert "from 20 to 8" in alloc.notes[0]


def test_round_robin_visits_every_cluster_before_repeating():
    clusters = np.array([0, 0, 0, 0, 1, 2, 2])
    tags = np.full(7, -1)
    order = round_robin_order(clusters, tags, seed=3)
    assert sorted(order.tolist()) == list(range(7))
    picked = clusters[order]
    assert sorted(picked[:3].tolist()) == [0, 1, 2]  # pass 1: one per cluster
    assert sorted(picked[3:5].tolist()) == [0, 2]  # pass 2: clusters with rows left
    assert picked[5:].tolist() == [0, 0]
    assert np.array_equal(order, round_robin_order(clusters, tags, seed=3))


def test_round_robin_alternates_tags_inside_a_cluster():
    clusters = np.zeros(5, dtype=int)
    tags = np.array([7, 7, 7, 9, 9])
    picked = tags[round_robin_order(clusters, tags, seed=0)]
    assert sorted(picked[:2].tolist()) == [7, 9] and sorted(picked[2:4].tolist()) == [7, 9] and picked[4] == 7


def test_round_positions_cycle():
    assert [p.tolist() for p in round_positions(5, 2, 3)] == [[0, 1], [2, 3], [4, 0]]
    with pytest.raises(ValueError):
        round_positions(2, 3, 1)


def _pool(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, n), rng.integers(0, 5, n), rng.integers(0, 20, n), rng.integers(0, 6, n)


def test_select_rounds_disjoint_and_deterministic():
    lang, level, clusters, tags = _pool()
    kw = dict(langs=["zh", "en", "ja"], lang_weights=[1, 1, 1], level_weights=PAPER, total=30, rounds=2, seed=5)
    a = select(lang, level, clusters, tags, **kw)
    b = select(lang, level, clusters, tags, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(a.rounds, b.rounds, strict=True))
    assert [len(r) for r in a.rounds] == [30, 30]
    assert not set(a.rounds[0]) & set(a.rounds[1]) and not a.reused
    # each round's strata follow the quotas: 3 per (lang, hard level), 1 per (lang, easy)
    for r in a.rounds:
        for li in range(3):
            got = [int(((lang[r] == li) & (level[r] == vi)).sum()) for vi in range(5)]
            assert got == [3, 3, 3, 1, 0]
    c = select(lang, level, clusters, tags, **{**kw, "seed": 6})
    assert not np.array_equal(a.rounds[0], c.rounds[0])


def test_select_reuses_rows_only_when_the_pool_is_short():
    lang = np.zeros(6, dtype=int)
    level = np.zeros(6, dtype=int)
    sel = select(lang, level, np.arange(6), np.zeros(6, dtype=int), langs=["en"], lang_weights=[1],
                 level_weights=PAPER, total=4, rounds=2, seed=0)
    assert [len(r) for r in sel.rounds] == [4, 4]
    assert len(set(sel.rounds[0]) | set(sel.rounds[1])) == 6  # every row used before any repeats
    assert sel.reused == {("en", "very_hard"): 2}


def _en(counts):
    """One language (en) with ``counts`` rows per level, hardest first."""
    return make_strata({"en": Fraction(1)}, PAPER, {("en", lv): n for lv, n in zip(LEVELS, counts, strict=True)})


def _stat(alloc, name):
    return [getattr(s, name) for s in alloc.strata]


def test_rounds_short_stratum_redistributed_so_rounds_stay_disjoint():
    # en: 40 very_hard, 200 in every other level; 100 rows x 2 rounds. Quotas 30,30,30,10,0.
    # Without reuse very_hard offers floor(40/2) = 20 per round: shortfall 10, re-apportioned
    # over hard/medium/easy (weights 3,3,1): exact 30/7, 30/7, 10/7 -> floors 4,4,1; the one
    # leftover goes to the largest remainder, easy (3/7 > 2/7). The pool offers 20+100+100+100
    # = 320 >= 100 rows per round, so nothing is reused.
    alloc = allocate(100, _en([40, 200, 200, 200, 200]), rounds=2)
    assert _stat(alloc, "quota") == [30, 30, 30, 10, 0]
    assert _stat(alloc, "allocated") == [20, 34, 34, 12, 0]
    assert _stat(alloc, "shortfall") == [10, 0, 0, 0, 0]
    assert _stat(alloc, "received") == [0, 4, 4, 2, 0]
    assert alloc.reused == 0 and alloc.notes == ["10 rows moved to other levels of en"]
    # one round of the same pool: nothing is short
    one = allocate(100, _en([40, 200, 200, 200, 200]))
    assert _stat(one, "allocated") == [30, 30, 30, 10, 0] and _stat(one, "shortfall") == [0] * 5 and not one.notes


def test_rounds_disjoint_under_none_and_shrink():
    # same pool: 'none' leaves very_hard's 10 missing rows missing; 'shrink' lowers the total to
    # 67 (T=67: exact 20.1 x3, 6.7 -> 20,20,20,6 + the leftover to easy = 7, fits floor(40/2)=20;
    # T=68: exact 20.4 x3, 6.8 -> leftovers to easy (0.8) then very_hard (0.4) = 21 > 20).
    none = allocate(100, _en([40, 200, 200, 200, 200]), "none", rounds=2)
    assert _stat(none, "allocated") == [20, 30, 30, 10, 0] and none.reused == 0
    assert none.notes == ["10 rows missing; not redistributed (shortfall rule 'none')"]
    shrink = allocate(100, _en([40, 200, 200, 200, 200]), "shrink", rounds=2)
    assert _stat(shrink, "allocated") == [20, 20, 20, 7, 0] and shrink.reused == 0
    assert shrink.notes == ["total lowered from 100 to 67 to keep the ratio exactly (shortfall rule 'shrink')"]


def test_rounds_reuse_only_when_the_pool_cannot_fill_disjoint_rounds():
    # en: 40, 30, 30, 10 rows; 2 rounds of 100. Without reuse: 20+15+15+5 = 55 < 100 per round.
    # Step 1 gives 20,15,15,5 (nobody has room); step 2 restores every stratum to its quota
    # (deficits 10+15+15+5 = 45 = the missing rows). Repeated draws 2a - n: 20, 30, 30, 10.
    alloc = allocate(100, _en([40, 30, 30, 10, 0]), rounds=2)
    assert _stat(alloc, "allocated") == [30, 30, 30, 10, 0]
    assert _stat(alloc, "shortfall") == [10, 15, 15, 5, 0]
    assert _stat(alloc, "reused") == [20, 30, 30, 10, 0]
    assert alloc.notes == ["the pool cannot fill 2 disjoint rounds of 100 rows (its strata with weight > 0 give at most 55 rows "
                           "per round without reuse): 90 draws over all rounds repeat a row of another round"]
    # 41, 30, 30, 10 rows, 60 per round: quotas 18,18,18,6; without reuse 20,15,15,5 = 55 < 60.
    # Step 1: very_hard takes 18, then 2 of en's 7 missing rows (its room 20-18). Step 2: the 5
    # still missing go back to hard/medium/easy (weights 3,3,1: exact 15/7,15/7,5/7 -> 2,2,0,
    # leftover to easy) -> 17,17,6. Repeats: 40-41 -> 0, 34-30 = 4, 4, 12-10 = 2.
    alloc = allocate(60, _en([41, 30, 30, 10, 0]), rounds=2)
    assert _stat(alloc, "allocated") == [20, 17, 17, 6, 0] and alloc.allocated == 60
    assert _stat(alloc, "reused") == [0, 4, 4, 2, 0]
    assert alloc.notes[0] == "2 rows moved to other levels of en" and "10 draws over all rounds repeat" in alloc.notes[1]
    # 'none' in the same situation keeps each quota it can, by reuse inside the stratum
    none = allocate(100, _en([40, 30, 30, 10, 0]), "none", rounds=2)
    assert _stat(none, "allocated") == [30, 30, 30, 10, 0] and none.reused == 90


def test_select_rounds_disjoint_for_the_short_stratum_scenario():
    counts = [40, 200, 200, 200, 200]
    level = np.repeat(np.arange(5), counts)
    n = len(level)
    sel = select(np.zeros(n, dtype=int), level, np.arange(n) % 7, np.zeros(n, dtype=int), langs=["en"], lang_weights=[1],
                 level_weights=PAPER, total=100, rounds=2, seed=0)
    assert not sel.reused and not set(sel.rounds[0]) & set(sel.rounds[1])
    for r in sel.rounds:
        assert np.bincount(level[r], minlength=5).tolist() == [20, 34, 34, 12, 0]
