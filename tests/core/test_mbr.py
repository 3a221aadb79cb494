"""MBR selection on hand-computed utilities."""

import math

import pytest

from in2x_cli.core.mbr import MbrGroup, chrf_utility, get_utility, mbr_decode, mbr_select, utility_matrices


def overlap_utility(hyps, refs, srcs, tgt_lang):
    """u(h, r) = number of distinct whitespace tokens h and r share (easy to compute by hand)."""
    return [float(len(set(h.split()) & set(r.split()))) for h, r in zip(hyps, refs, strict=True)]


def test_mbr_select_expected_utility_by_hand():
    # E_0 = (0.9 + 0.2) / 2 = 0.55, E_1 = (0.8 + 0.6) / 2 = 0.70, E_2 = (0.1 + 0.5) / 2 = 0.30
    m = [[123.0, 0.9, 0.2], [0.8, -5.0, 0.6], [0.1, 0.5, 99.0]]  # the diagonal is ignored
    choice = mbr_select(m)
    assert choice.index == 1
    assert choice.expected_utility == pytest.approx([0.55, 0.70, 0.30])


def test_ties_go_to_the_first_candidate_and_single_candidate_wins():
    assert mbr_select([[0, 1.0], [1.0, 0]]).index == 0
    lone = mbr_select([[0.0]])
    assert lone.index == 0 and math.isnan(lone.expected_utility[0])
    with pytest.raises(ValueError):
        mbr_select([])
    with pytest.raises(ValueError):
        mbr_select([[0.0, 1.0]])


def test_mbr_decode_with_overlap_utility_by_hand():
    # G={a,b,c} S1={a,b,d} S2={a,x,y} S3={b,d,e}
    # E_G  = (|G∩S1| + |G∩S2| + |G∩S3|) / 3 = (2 + 1 + 1) / 3 = 4/3
    # E_S1 = (2 + 1 + 2) / 3 = 5/3   ← the consensus translation
    # E_S2 = (1 + 1 + 0) / 3 = 2/3
    # E_S3 = (1 + 2 + 0) / 3 = 1
    cands = [["a b c"], ["a b d"], ["a x y"], ["b d e"]]
    (choice,) = mbr_decode([MbrGroup(cands, ["src"], "en")], overlap_utility)
    assert choice.index == 1
    assert choice.expected_utility == pytest.approx([4 / 3, 5 / 3, 2 / 3, 1.0])


def test_document_utility_is_the_mean_over_aligned_paragraphs():
    # two paragraphs: u = (u_p1 + u_p2) / 2
    cands = [["a b", "c"], ["a", "c d"]]
    (m,) = utility_matrices([MbrGroup(cands, ["s1", "s2"], "en")], overlap_utility)
    assert m[0][1] == pytest.approx((1 + 1) / 2) and m[1][0] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        MbrGroup([["only one paragraph"]], ["s1", "s2"], "en")


def test_pairs_are_batched_and_deduplicated_across_groups():
    calls = []

    def counting(hyps, refs, srcs, tgt_lang):
        calls.append(len(hyps))
        return overlap_utility(hyps, refs, srcs, tgt_lang)

    g = MbrGroup([["x y"], ["x y"], ["x z"]], ["s"], "ja")
    mbr_decode([g, g], counting)
    # one call; distinct (hyp, ref, src) triples: (xy,xy), (xy,xz), (xz,xy) = 3
    assert calls == [3]


def test_chrf_utility_matches_the_definition_on_trivial_cases():
    assert chrf_utility(["abc def"], ["abc def"], ["s"], "en") == [pytest.approx(100.0)]
    assert chrf_utility(["xyz"], ["abc"], ["s"], "en") == [pytest.approx(0.0)]
    # chrF (β = 2) weights recall: a hypothesis that covers more of the reference scores higher
    short, long_ = chrf_utility(["the cat", "the cat sat on"], ["the cat sat on the mat"] * 2, ["s", "s"], "en")
    assert long_ > short > 0


def test_registry_and_dotted_utilities():
    assert get_utility("chrf") is chrf_utility
    assert get_utility("tests.core.test_mbr:overlap_utility") is overlap_utility
    bleu = get_utility("bleu")
    assert bleu(["猫が座った。"], ["猫が座った。"], ["s"], "ja") == [pytest.approx(100.0)]
    for bad in ("nope", "tests.core.test_mbr:missing", "no_such_module:fn"):
        with pytest.raises(KeyError):
            get_utility(bad)
