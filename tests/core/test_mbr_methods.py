"""The MBR family (core.mbr_methods) on hand-made candidate sets, numbers checked by hand."""

import math

import pytest

from in2x_cli.core.mbr import MbrGroup
from in2x_cli.core.mbr_methods import (
    PruningConfig,
    bootstrap_survivors,
    decode_family,
    model_based_select,
    pruned_mbr_decode,
    qe_rerank,
    qe_select,
)


def overlap_utility(hyps, refs, srcs, tgt_lang):
    """u(h, r) = number of distinct whitespace tokens h and r share."""
    return [float(len(set(h.split()) & set(r.split()))) for h, r in zip(hyps, refs, strict=True)]


# rows 0..3 share {a, b} pairwise (u = 2); c3 also shares 'r' with c6; c4 shares 'a' with 0..3
POOL = ["a b w", "a b x", "a b y", "a b z r", "a q", "q t", "r t", "t u"]


def test_bootstrap_step_keeps_rows_that_can_win_and_prunes_dominated_ones():
    # no NaN: every resample gives row means 10, 5, 10 → win rates 1, 0, 1 exactly
    best, survivors, wins = bootstrap_survivors([[10, 10, 10, 10], [5, 5, 5, 5], [10, 10, 10, 10]], alpha=0.99, bootstrap=50, seed=3)
    assert best == 0 and survivors == [0, 2] and wins == [1.0, 0.0, 1.0]


def test_pruned_mbr_prunes_after_the_first_references_and_picks_by_hand():
    # step 0 (refs c0..c3, j != h): rows 0..3 score 2,2,2 (mean 2), row 4 scores 1 (mean 1), rows 5, 7 score 0,
    # row 6 scores 1 against c3 only (mean 0.25): all four pruned (they win only when row 0's resample
    # drew its own column four times, p = 1/256). 8·4 − 4 self pairs = 28 evaluations.
    # step 1 (refs c4..c7) for rows 0..3: u(·, c4) = 1 ('a'), u(c3, c6) = 1 ('r'), else 0: 16 evaluations.
    # estimates: rows 0..2 = (2+2+2+1)/7 = 1, row 3 = (2+2+2+1+1)/7 = 8/7 → row 3.
    calls = []

    def counting(h, r, s, lang):
        calls.append(len(h))
        return overlap_utility(h, r, s, lang)

    group = MbrGroup([[c] for c in POOL], ["src"], "en")
    res = pruned_mbr_decode([group], counting, PruningConfig(alpha=0.99, first_refs=4, bootstrap=500, seed=0))
    (choice,) = res.choices
    assert choice.index == 3
    assert choice.expected_utility[:4] == pytest.approx([1.0, 1.0, 1.0, 8 / 7])
    assert choice.expected_utility[4:] == pytest.approx([1.0, 0.0, 0.25, 0.0])  # estimates when pruned
    assert calls == [28, 16] and res.evaluations == 44
    plain = decode_family("mbr", [group], overlap_utility)
    assert plain.choices[0].index == 3 and plain.evaluations == 56  # same choice, 8·7 pairs


def test_pruned_mbr_without_pruning_equals_plain_mbr_and_schedule_doubles():
    assert PruningConfig(first_refs=8).schedule(5) == [5]
    assert PruningConfig(first_refs=2).schedule(9) == [2, 4, 8, 9]
    cands = [["a b c"], ["a b d"], ["a x y"], ["b d e"]]
    group = MbrGroup(cands, ["src"], "en")
    pruned = pruned_mbr_decode([group], overlap_utility, PruningConfig(first_refs=8))
    plain = decode_family("mbr", [group], overlap_utility)
    assert pruned.choices[0].index == plain.choices[0].index == 1
    assert pruned.choices[0].expected_utility == pytest.approx([4 / 3, 5 / 3, 2 / 3, 1.0])
    lone = pruned_mbr_decode([MbrGroup([["x"]], ["s"], "en")], overlap_utility)
    assert lone.choices[0].index == 0 and lone.evaluations == 0


def test_model_based_mbr_weights_by_probability_and_counts_self():
    u = [[1.0, 0.5, 0.2], [0.5, 1.0, 0.4], [0.2, 0.4, 1.0]]
    lp = [math.log(0.5), math.log(0.3), math.log(0.2)]
    # E0 = .5·1 + .3·.5 + .2·.2 = .69; E1 = .5·.5 + .3·1 + .2·.4 = .63; E2 = .5·.2 + .3·.4 + .2·1 = .42
    choice = model_based_select(u, lp)
    assert choice.index == 0 and choice.expected_utility == pytest.approx([0.69, 0.63, 0.42])
    # a repeated text is one pseudo-reference: p̂(A) = .5/.8, p̂(B) = .3/.8
    # E_A = .625·1 + .375·.5 = .8125, E_B = .625·.5 + .375·1 = .6875
    u2 = [[1.0, 0.5, 1.0], [0.5, 1.0, 0.5], [1.0, 0.5, 1.0]]
    choice = model_based_select(u2, [math.log(0.5), math.log(0.3), math.log(0.5)], ["A", "B", "A"])
    assert choice.expected_utility == pytest.approx([0.8125, 0.6875, 0.8125]) and choice.index == 0


def test_model_based_decode_uses_utilities_with_self_pairs():
    # G={a,b} S={a,c}: u(G,G)=2 u(G,S)=1 u(S,S)=2; p = (.25, .75): E_G = .25·2 + .75·1 = 1.25, E_S = .25·1 + .75·2 = 1.75
    group = MbrGroup([["a b"], ["a c"]], ["src"], "en")
    res = decode_family("model", [group], overlap_utility, logprobs=[[math.log(0.25), math.log(0.75)]])
    assert res.choices[0].index == 1 and res.choices[0].expected_utility == pytest.approx([1.25, 1.75])
    with pytest.raises(ValueError, match="log-probability"):
        decode_family("model", [group], overlap_utility, logprobs=[[None, 0.0]])


def test_qe_rerank_by_hand_with_paragraph_means():
    assert qe_select([0.2, 0.7, 0.7]).index == 1
    calls = []

    def qe(srcs, hyps, lang):  # q = number of words of the hypothesis
        calls.append(len(hyps))
        return [float(len(h.split())) for h in hyps]

    # candidate 0: paragraphs of 1 and 4 words → 2.5; candidate 1: 3 and 3 → 3
    g = MbrGroup([["a", "a b c d"], ["a b c", "a b c"]], ["s1", "s2"], "en")
    res = qe_rerank([g], qe)
    assert res.choices[0].index == 1 and res.choices[0].expected_utility == pytest.approx([2.5, 3.0])
    assert calls == [4] and res.evaluations == 4
    with pytest.raises(KeyError):
        decode_family("nope", [g], overlap_utility)
