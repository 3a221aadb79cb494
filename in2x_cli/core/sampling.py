"""Difficulty- and language-stratified sampling with round-robin over clusters and tags.

The paper (In2x, arXiv 2508.14472, §SFT data) samples 1.5M instructions from 40M at a
difficulty ratio of 3:3:3:1:0 (Very Difficult : Difficult : Moderate : Simple : Very Simple),
with zh:en:ja = 1:1:1, drawing inside clusters for tag and language diversity, and one fresh
sampling round per training epoch.

Strata are (language, level) pairs with weight ``lang_weight × level_weight``.

Quotas — Hamilton's largest-remainder method over all strata jointly:
  exact_s = total · w_s / Σw; quota_s = ⌊exact_s⌋; the ``total − Σ⌊exact⌋`` leftover rows go one
  each to the strata with the largest fractional parts ``exact_s − ⌊exact_s⌋``; ties go to the
  earlier stratum in the order (level very_hard → very_easy, then languages in the order
  given). Exact rational arithmetic, so equal weights tie exactly. Every quota is its exact
  share rounded down or up, and the quotas sum to ``total``.

Shortfall (a stratum holds fewer rows than its quota). It is always reported; what happens
to the missing rows is the ``shortfall`` rule, never a silent change of the ratio:
  ``redistribute`` (default): the missing rows are re-apportioned, by the same largest-remainder
      rule on the strata's weights, among strata that still have unused rows — first among the
      other levels of the same language (keeping the language balance), then, for what is still
      missing, among all strata; repeated until the total is met or the pool runs out. Strata
      with weight 0 never receive rows.
  ``none``: the missing rows stay missing (output is smaller than ``total``; shares drift
      toward the other strata only by the missing amount).
  ``shrink``: the ratio is kept exactly by lowering the total to the largest ``T ≤ total`` whose
      quotas all fit the pool.

Draw order inside a stratum — round-robin across clusters, and across tags inside a cluster:
clusters are visited in a seeded random order, one row per cluster per pass (exhausted
clusters drop out); the rows of a cluster come out alternating between its tags (tags in a
seeded random order, rows of a tag in a seeded random order). Rows without ``cluster`` form
one group, rows without ``tag`` one tag. So the first ``q`` draws touch ``min(q, #clusters)``
distinct clusters, and large clusters are not favoured.

Rounds: round ``r`` (0-based) of a stratum with allocation ``a`` takes positions
``[r·a, (r+1)·a)`` of its draw order, cyclically, so rounds are disjoint exactly when the
stratum holds at least ``R·a`` rows. Allocation is rounds-aware: a stratum of ``n`` rows offers
``⌊n/R⌋`` rows per round without reuse (its disjoint share), and
  1. when the strata with weight > 0 offer ``Σ⌊n/R⌋ ≥ total`` rows per round, the quotas and the
     shortfall rule above are applied against ``⌊n/R⌋``, so every round is disjoint. A stratum
     is *short* when its quota exceeds ``⌊n/R⌋``; ``shortfall = quota − ⌊n/R⌋`` (``quota − n``
     for one round), handled by the rule (redistributed, left missing, or the total lowered).
  2. otherwise the pool cannot give R disjoint rounds and rows are drawn again in later rounds,
     reported in a note and per stratum (``max(0, R·a − n)`` repeated draws, spread as evenly
     as the cyclic positions allow). ``redistribute`` starts from step 1's allocation and tops
     up: first each short stratum back toward its quota (capped at ``min(quota, n)``, by largest
     remainder on the weights), then by the redistribute rule with all ``n`` rows available;
     ``none`` and ``shrink`` apply their rule against all ``n`` rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from in2x_cli.core.apportion import largest_remainder

if TYPE_CHECKING:
    import numpy as np

LEVELS = ("very_hard", "hard", "medium", "easy", "very_easy")
PAPER_NAMES = ("Very Difficult", "Difficult", "Moderate", "Simple", "Very Simple")
SHORTFALL_RULES = ("redistribute", "none", "shrink")

# accepted spellings → canonical level. Integers 1–5 count up in difficulty: 1 = very_easy.
_DIFFICULTY_ALIASES: dict[str, str] = {}
for _level, _paper in zip(LEVELS, PAPER_NAMES, strict=True):
    for _spelling in (_level, _level.replace("_", " "), _level.replace("_", "-"), _level.replace("_", ""), _paper):
        _DIFFICULTY_ALIASES[_spelling.lower()] = _level
for _n, _level in enumerate(reversed(LEVELS), start=1):
    _DIFFICULTY_ALIASES[str(_n)] = _level
_DIFFICULTY_ALIASES.update({"very difficult": "very_hard", "difficult": "hard", "moderate": "medium", "simple": "easy", "very simple": "very_easy"})


def normalize_difficulty(value: Any) -> str | None:
    """Canonical level for ``value`` (a level name, a paper name, or 1–5 with 5 = very_hard);
    ``None`` when it is not one of those."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return _DIFFICULTY_ALIASES.get(str(value))
    if isinstance(value, str):
        return _DIFFICULTY_ALIASES.get(" ".join(value.strip().lower().split()))
    return None


DIFFICULTY_HELP = "very_hard, hard, medium, easy, very_easy; or Very Difficult … Very Simple; or 5 (very_hard) … 1 (very_easy)"


# --------------------------------------------------------------------------- quotas


@dataclass
class Stratum:
    lang: str
    level: str
    weight: Fraction
    available: int
    quota: int = 0  # the ratio's share of the requested total
    allocated: int = 0  # rows drawn per round
    rounds: int = 1  # rounds the allocation is for (set by ``allocate``)

    @property
    def disjoint(self) -> int:
        """Rows per round this stratum can give with every round disjoint: ``⌊n/R⌋``."""
        return self.available // self.rounds

    @property
    def shortfall(self) -> int:
        return max(0, self.quota - self.disjoint)

    @property
    def received(self) -> int:
        """Rows per round given to this stratum by redistribution (beyond its quota)."""
        return max(0, self.allocated - self.quota)

    @property
    def reused(self) -> int:
        """Draws over all rounds that repeat a row of another round: ``max(0, R·a − n)``."""
        return max(0, self.rounds * self.allocated - self.available)


@dataclass
class Allocation:
    strata: list[Stratum]
    requested: int
    rule: str
    rounds: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def allocated(self) -> int:
        return sum(s.allocated for s in self.strata)

    @property
    def reused(self) -> int:
        return sum(s.reused for s in self.strata)


def make_strata(lang_weights: Mapping[str, Fraction], level_weights: Sequence[Fraction], available: Mapping[tuple[str, str], int]) -> list[Stratum]:
    """Strata in tie-break order: levels hardest first, then languages in the given order."""
    return [
        Stratum(lang, level, lang_weights[lang] * level_weights[li], int(available.get((lang, level), 0)))
        for li, level in enumerate(LEVELS)
        for lang in lang_weights
    ]


def _disjoint_cap(s: Stratum) -> int:
    return s.disjoint


def _pool_cap(s: Stratum) -> int:
    return s.available


def allocate(total: int, strata: list[Stratum], rule: str = "redistribute", rounds: int = 1) -> Allocation:
    """Quotas, then the shortfall rule, rounds-aware (see the module docstring). Mutates and
    returns strata."""
    if rule not in SHORTFALL_RULES:
        raise ValueError(f"unknown shortfall rule {rule!r}")
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    alloc = Allocation(strata, total, rule, rounds)
    for s, q in zip(strata, largest_remainder(total, [s.weight for s in strata]), strict=True):
        s.quota = q
        s.rounds = rounds
    disjoint_total = sum(s.disjoint for s in strata if s.weight > 0)
    if rounds == 1 or disjoint_total >= total:
        alloc.notes = _apply_rule(strata, total, rule, _disjoint_cap)  # step 1: rounds stay disjoint
        return alloc
    # step 2: the pool cannot give R disjoint rounds of ``total``: reuse, and say so
    if rule == "redistribute":
        alloc.notes = [n for n in _apply_rule(strata, total, rule, _disjoint_cap) if "rows missing" not in n]
        alloc.notes += _top_up(strata, total)
        missing = total - alloc.allocated
    else:
        alloc.notes = _apply_rule(strata, total, rule, _pool_cap)
        missing = 0
    if alloc.reused:
        alloc.notes.append(
            f"the pool cannot fill {rounds} disjoint rounds of {total} rows (its strata with weight > 0 give at most {disjoint_total} rows per round without reuse): "
            f"{alloc.reused} draws over all rounds repeat a row of another round"
        )
    if missing:
        alloc.notes.append(f"{missing} rows missing: the pool has no more rows in any stratum with weight > 0")
    return alloc


def _apply_rule(strata: list[Stratum], total: int, rule: str, cap: Callable[[Stratum], int]) -> list[str]:
    """Allocations by ``rule`` from the quotas, each stratum giving at most ``cap(s)`` rows per
    round; returns the notes that say what happened to missing rows."""
    notes: list[str] = []
    for s in strata:
        s.allocated = min(s.quota, cap(s))
    missing = total - sum(s.allocated for s in strata)
    if missing <= 0:
        return notes
    if rule == "none":
        notes.append(f"{missing} rows missing; not redistributed (shortfall rule 'none')")
    elif rule == "redistribute":
        notes += _redistribute(strata, total, cap)
        missing = total - sum(s.allocated for s in strata)
        if missing:
            notes.append(f"{missing} rows missing: the pool has no more rows in any stratum with weight > 0")
    else:  # shrink
        shrunk = _largest_feasible_total(total, strata, cap)
        for s, q in zip(strata, largest_remainder(shrunk, [s.weight for s in strata]), strict=True):
            s.allocated = q
        notes.append(f"total lowered from {total} to {shrunk} to keep the ratio exactly (shortfall rule 'shrink')")
    return notes


def _redistribute(strata: list[Stratum], total: int, cap: Callable[[Stratum], int]) -> list[str]:
    """Missing rows to the other levels of the same language, then across languages."""
    notes = []
    for lang in dict.fromkeys(s.lang for s in strata):
        group = [s for s in strata if s.lang == lang]
        lang_missing = sum(s.quota for s in group) - sum(s.allocated for s in group)
        placed = _fill(group, lang_missing, cap)
        if placed:
            notes.append(f"{placed} rows moved to other levels of {lang}")
    placed = _fill(strata, total - sum(s.allocated for s in strata), cap)
    if placed:
        notes.append(f"{placed} rows moved across languages")
    return notes


def _top_up(strata: list[Stratum], total: int) -> list[str]:
    """Reuse step of ``redistribute``: short strata back toward their quotas first (keeps the
    ratio), then the redistribute rule, with every stratum's rows available in every round."""
    def restore_cap(s: Stratum) -> int:
        return min(s.quota, s.available)

    _fill(strata, total - sum(s.allocated for s in strata), restore_cap)
    return [f"with reuse: {note}" for note in _redistribute(strata, total, _pool_cap)]


def _fill(group: list[Stratum], missing: int, cap: Callable[[Stratum], int] = _pool_cap) -> int:
    """Give ``missing`` rows to strata of ``group`` with room below ``cap``, by largest
    remainder on their weights, capped by that room; repeat while rows and room remain."""
    placed = 0
    while missing > 0:
        room = [s for s in group if s.weight > 0 and cap(s) > s.allocated]
        if not room:
            break
        shares = largest_remainder(missing, [s.weight for s in room])
        moved = 0
        for s, share in zip(room, shares, strict=True):
            take = min(share, cap(s) - s.allocated)
            s.allocated += take
            moved += take
        missing -= moved
        placed += moved
        if moved == 0:  # pragma: no cover - every share is capped at zero only if room is empty
            break
    return placed


def _largest_feasible_total(total: int, strata: list[Stratum], cap: Callable[[Stratum], int] = _pool_cap) -> int:
    """Largest ``T <= total`` whose largest-remainder quotas all fit ``cap`` (checked downwards
    from the proportional bound: Hamilton quotas are not monotone in T, so each T is checked)."""
    weights = [s.weight for s in strata]
    wsum = sum(weights)
    bound = min((Fraction(cap(s) + 1) * wsum / s.weight for s in strata if s.weight > 0), default=Fraction(0))
    t = min(total, int(bound))
    while t > 0:
        if all(q <= cap(s) for q, s in zip(largest_remainder(t, weights), strata, strict=True)):
            return t
        t -= 1
    return 0


# --------------------------------------------------------------------------- draw order


def stratum_seed(seed: int, *parts: str) -> int:
    """A seed for one stratum that does not depend on which other strata exist."""
    h = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(h[:8], "little")


def _rank_within(groups: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Rank of each element inside its group, by ascending ``keys``."""
    import numpy as np

    order = np.lexsort((keys, groups))
    g = groups[order]
    start = np.searchsorted(g, g, side="left")
    rank = np.empty(len(groups), dtype=np.int64)
    rank[order] = np.arange(len(groups)) - start
    return rank


def round_robin_order(clusters: np.ndarray, tags: np.ndarray, seed: int) -> np.ndarray:
    """Positions ``0..n-1`` in draw order (see the module docstring). ``clusters`` and ``tags``
    are int arrays (any value, e.g. -1, is just another group)."""
    import numpy as np

    n = len(clusters)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    clusters = np.asarray(clusters, dtype=np.int64)
    tags = np.asarray(tags, dtype=np.int64)
    row_key = rng.permutation(n)
    uc, cinv = np.unique(clusters, return_inverse=True)
    cluster_rank = rng.permutation(len(uc))[cinv]
    pair = cinv * (int(tags.max()) - int(tags.min()) + 1) + (tags - tags.min())
    up, pinv = np.unique(pair, return_inverse=True)
    tag_rank = rng.permutation(len(up))[pinv]
    rank_in_tag = _rank_within(pinv, row_key)
    # inside a cluster: pass over its tags (rank_in_tag), tags in random order within a pass
    rank_in_cluster = _rank_within(cinv, rank_in_tag * len(up) + tag_rank)
    return np.lexsort((cluster_rank, rank_in_cluster))


def round_positions(n: int, per_round: int, rounds: int) -> list[np.ndarray]:
    """Draw-order positions of each round: ``[r·a, (r+1)·a)`` modulo ``n`` (see module doc)."""
    import numpy as np

    if per_round > n:
        raise ValueError("a round cannot take more rows than the stratum holds")
    return [np.arange(r * per_round, (r + 1) * per_round) % max(n, 1) for r in range(rounds)]


# --------------------------------------------------------------------------- the whole selection


@dataclass
class Selection:
    allocation: Allocation
    rounds: list[np.ndarray]  # per round: selected row indices, ascending
    reused: dict[tuple[str, str], int]  # stratum -> draws beyond its rows (rows shared by rounds)


def select(
    lang_idx: np.ndarray,
    level_idx: np.ndarray,
    clusters: np.ndarray,
    tags: np.ndarray,
    *,
    langs: Sequence[str],
    lang_weights: Sequence[Fraction],
    level_weights: Sequence[Fraction],
    total: int,
    rounds: int = 1,
    rule: str = "redistribute",
    seed: int = 0,
) -> Selection:
    """Pick rows for ``rounds`` rounds of ``total`` (see the module docstring).

    ``lang_idx[i]`` indexes ``langs`` (< 0: not sampled), ``level_idx[i]`` indexes ``LEVELS``
    (< 0: not sampled), ``clusters``/``tags`` are ints (any value groups rows).
    """
    import numpy as np

    lang_idx = np.asarray(lang_idx)
    level_idx = np.asarray(level_idx)
    usable = (lang_idx >= 0) & (level_idx >= 0)
    key = np.where(usable, lang_idx.astype(np.int64) * len(LEVELS) + level_idx, -1)
    counts = np.bincount(key[usable], minlength=len(langs) * len(LEVELS))
    available = {(lang, level): int(counts[li * len(LEVELS) + vi]) for li, lang in enumerate(langs) for vi, level in enumerate(LEVELS)}
    strata = make_strata(dict(zip(langs, lang_weights, strict=True)), level_weights, available)
    allocation = allocate(total, strata, rule, rounds)
    picked: list[list[np.ndarray]] = [[] for _ in range(rounds)]
    reused: dict[tuple[str, str], int] = {}
    for s in strata:
        if s.allocated == 0:
            continue
        rows = np.flatnonzero(key == langs.index(s.lang) * len(LEVELS) + LEVELS.index(s.level))
        order = rows[round_robin_order(clusters[rows], tags[rows], stratum_seed(seed, s.lang, s.level))]
        for r, pos in enumerate(round_positions(len(order), s.allocated, rounds)):
            picked[r].append(order[pos])
        if s.reused:  # len(order) == s.available
            reused[(s.lang, s.level)] = s.reused
    per_round = [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in picked]
    return Selection(allocation, per_round, reused)


def selection_report(selection: Selection, *, rounds: int) -> dict[str, Any]:
    """The JSON report: per-stratum quota, pool, shortfall, redistribution; achieved shares."""
    alloc = selection.allocation
    strata = []
    for s in alloc.strata:
        strata.append({
            "lang": s.lang, "difficulty": s.level, "weight": _num(s.weight), "quota": s.quota, "available": s.available,
            "disjoint_per_round": s.disjoint, "shortfall": s.shortfall, "received": s.received, "selected_per_round": s.allocated,
            "reused_across_rounds": selection.reused.get((s.lang, s.level), 0),
        })
    per_round = alloc.allocated
    by_level = {lv: sum(s.allocated for s in alloc.strata if s.level == lv) for lv in LEVELS}
    by_lang = {lang: sum(s.allocated for s in alloc.strata if s.lang == lang) for lang in dict.fromkeys(s.lang for s in alloc.strata)}
    return {
        "requested_per_round": alloc.requested,
        "selected_per_round": per_round,
        "rounds": rounds,
        "rounds_disjoint": not selection.reused,
        "reused_draws": sum(selection.reused.values()),
        "rounding": "largest remainder (Hamilton) over (language, level) strata; ties to the harder level, then the earlier language",
        "shortfall_rule": alloc.rule,
        "shortfall_rule_text": SHORTFALL_TEXT[alloc.rule] + ("; " + ROUNDS_TEXT if rounds > 1 else ""),
        "notes": list(alloc.notes),
        "achieved_level_shares": {k: round(v / per_round, 6) if per_round else 0.0 for k, v in by_level.items()},
        "achieved_lang_shares": {k: round(v / per_round, 6) if per_round else 0.0 for k, v in by_lang.items()},
        "strata": strata,
    }


SHORTFALL_TEXT = {
    "redistribute": "missing rows of a short stratum go, by largest remainder on the ratio weights, to the other levels of the same language that still have rows, then to any stratum with rows left; weight-0 strata get none",
    "none": "missing rows of a short stratum are not replaced; the output is smaller than requested",
    "shrink": "the total is lowered to the largest one whose quotas all fit the pool, keeping the ratio exactly",
}
ROUNDS_TEXT = (
    "with R rounds a stratum of n rows offers floor(n/R) rows per round (disjoint_per_round) and, when those add up to the total, "
    "the rule is applied against them so rounds are disjoint; only when they do not are rows drawn again in later rounds "
    "(redistribute: short strata back toward their quotas first, then the rule), reported in the notes and per stratum"
)


def _num(f: Fraction) -> float | int:
    return int(f) if f.denominator == 1 else float(f)
