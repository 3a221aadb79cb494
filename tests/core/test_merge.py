"""Merge methods on tensors small enough to check by hand (numbers worked out in the comments)."""

from __future__ import annotations

import pytest
import torch

from in2x_cli.core import merge as M


def t(*rows: object) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# --- linear / task arithmetic ----------------------------------------------------------------


def test_linear_normalised_and_plain_sum() -> None:
    a, b = t(1.0, 2.0), t(3.0, 6.0)
    # (1·1 + 3·3)/4 = 2.5, (1·2 + 3·6)/4 = 5
    assert torch.equal(M.linear([a, b], [1, 3]), t(2.5, 5.0))
    assert torch.equal(M.linear([a, b], [1, 3], normalize=False), t(10.0, 20.0))
    with pytest.raises(ValueError, match="sum to 0"):
        M.linear([a, b], [1, -1])


def test_task_arithmetic_lambda_and_normalize() -> None:
    base, a, b = t(1.0, 1.0), t(2.0, 0.0), t(1.0, 3.0)
    # δa = (1, −1), δb = (0, 2); 0.5·δa + 1·δb = (0.5, 1.5); λ = 2 → (1, 3); + base = (2, 4)
    assert torch.equal(M.task_arithmetic(base, [a, b], [0.5, 1.0], lambda_=2.0), t(2.0, 4.0))
    # normalize: ÷ Σw = 1.5 → (1/3, 1); ×2 → (2/3, 2); + base → (5/3, 3)
    got = M.task_arithmetic(base, [a, b], [0.5, 1.0], lambda_=2.0, normalize=True)
    torch.testing.assert_close(got, t(5 / 3, 3.0))


# --- ties ------------------------------------------------------------------------------------

BASE6 = torch.zeros(6)
A6 = t(3.0, -1.0, 0.5, -4.0, 2.0, 0.1)
B6 = t(-2.0, 2.0, 1.0, 1.0, -3.0, 0.2)
C6 = t(1.0, 1.0, -2.0, -1.0, 1.0, -0.3)


def test_ties_trim_elect_disjoint_mean() -> None:
    # trim to 3 of 6 by |δ|: a → (3, 0, 0, −4, 2, 0); b → (−2, 2, 0, 0, −3, 0); c kept (density 1)
    assert torch.equal(M.magnitude_trim(A6, 0.5), t(3.0, 0.0, 0.0, -4.0, 2.0, 0.0))
    assert torch.equal(M.magnitude_trim(B6, 0.5), t(-2.0, 2.0, 0.0, 0.0, -3.0, 0.0))
    # column sums 2, 3, −2, −5, 0 (→ +), −0.3 elect + + − − + −;
    # agreeing means: (3+1)/2, (2+1)/2, −2/1, (−4−1)/2, (2+1)/2, −0.3/1
    got = M.ties(BASE6, [A6, B6, C6], [1, 1, 1], [0.5, 0.5, 1.0])
    torch.testing.assert_close(got, t(2.0, 1.5, -2.0, -2.5, 1.5, -0.3))
    # λ scales the merged delta
    torch.testing.assert_close(M.ties(BASE6, [A6, B6, C6], [1, 1, 1], [0.5, 0.5, 1.0], lambda_=0.5), got / 2)


def test_ties_normalises_by_the_weights_of_agreeing_models() -> None:
    # weights (2, 1, 1): a' = (6, 0, 0, −8, 4, 0). Entry 0: 6 − 2 + 1 = 5 → +, agreeing a and c:
    # (6 + 1)/(2 + 1) = 7/3. Entry 4: 4 − 3 + 1 = 2 → +: (4 + 1)/(2 + 1) = 5/3. Entry 3: −8 − 1 → −:
    # (−8 − 1)/(2 + 1) = −3. Entry 1: b and c agree: (2 + 1)/(1 + 1) = 1.5.
    got = M.ties(BASE6, [A6, B6, C6], [2, 1, 1], [0.5, 0.5, 1.0])
    torch.testing.assert_close(got, t(7 / 3, 1.5, -2.0, -3.0, 5 / 3, -0.3))
    # without normalize the agreeing weighted deltas are summed: entry 0 = 6 + 1 = 7
    raw = M.ties(BASE6, [A6, B6, C6], [2, 1, 1], [0.5, 0.5, 1.0], normalize=False)
    torch.testing.assert_close(raw, t(7.0, 3.0, -2.0, -9.0, 5.0, -0.3))


def test_ties_nobody_agrees_keeps_base_and_negative_weight_flips_vote() -> None:
    base = t(10.0)
    # a single model with weight −1: its weighted delta −2 elects −, agrees, divisor −1 → +2
    torch.testing.assert_close(M.ties(base, [t(12.0)], [-1], [1.0]), t(12.0))
    # a zero delta never agrees; the divisor 0 is replaced by 1; base stays
    torch.testing.assert_close(M.ties(base, [t(10.0)], [1], [1.0]), t(10.0))


def test_trim_edge_densities_and_minimum_one() -> None:
    assert torch.equal(M.magnitude_trim(A6, 1.0), A6)
    assert torch.equal(M.magnitude_trim(A6, 0.0), torch.zeros(6))
    # ⌊0.1·6⌋ = 0 → at least one entry (the largest, −4) is kept, as mergekit
    assert torch.equal(M.magnitude_trim(A6, 0.1), t(0.0, 0.0, 0.0, -4.0, 0.0, 0.0))


# --- dare ------------------------------------------------------------------------------------


def test_dare_density_one_is_task_arithmetic_and_ties() -> None:
    g = torch.Generator().manual_seed(0)
    got = M.dare(BASE6, [A6, B6], [1, 0.5], [1.0, 1.0], generator=g, consensus=False)
    torch.testing.assert_close(got, M.task_arithmetic(BASE6, [A6, B6], [1, 0.5]))
    got = M.dare(BASE6, [A6, B6], [1, 0.5], [1.0, 1.0], generator=g, consensus=True, normalize=True)
    torch.testing.assert_close(got, M.ties(BASE6, [A6, B6], [1, 0.5], [1.0, 1.0]))


def test_dare_drop_rescale_modes_and_seeding() -> None:
    delta = torch.ones(200, 50)
    kept = M.dare_drop(delta, 0.3, torch.Generator().manual_seed(1), rescale="inverse_density")
    nonzero = kept[kept != 0]
    torch.testing.assert_close(nonzero, torch.full_like(nonzero, 1 / 0.3))  # the paper's 1/(1 − p)
    assert 0.27 < nonzero.numel() / delta.numel() < 0.33  # ≈ density kept
    l1 = M.dare_drop(delta, 0.3, torch.Generator().manual_seed(1), rescale="l1")
    torch.testing.assert_close(l1.abs().sum(), delta.abs().sum())  # mergekit: L1 norm preserved
    assert torch.equal(l1 != 0, kept != 0)  # same seed, same mask
    none = M.dare_drop(delta, 0.3, torch.Generator().manual_seed(1), rescale="none")
    assert set(none.unique().tolist()) == {0.0, 1.0}
    other = M.dare_drop(delta, 0.3, torch.Generator().manual_seed(2), rescale="none")
    assert not torch.equal(other, none)


def test_tensor_seed_depends_on_seed_and_name_only() -> None:
    assert M.tensor_seed(0, "a.weight") == M.tensor_seed(0, "a.weight")
    assert M.tensor_seed(0, "a.weight") != M.tensor_seed(1, "a.weight")
    assert M.tensor_seed(0, "a.weight") != M.tensor_seed(0, "b.weight")


# --- fisher ----------------------------------------------------------------------------------


def test_fisher_weighting_and_floor() -> None:
    a, b = torch.ones(4), torch.full((4,), 3.0)
    fa = t(1.0, 3.0, 0.0, 0.0)
    fb = t(1.0, 1.0, 0.0, 1e-3)
    got = M.fisher([a, b], [fa, fb], [1, 1])
    # (1·1 + 1·3)/2 = 2; (3·1 + 1·3)/4 = 1.5; both floored to 1e-6 → plain mean 2;
    # (1e-6·1 + 1e-3·3)/(1e-6 + 1e-3) = 3.001e-3/1.001e-3
    torch.testing.assert_close(got, t(2.0, 1.5, 2.0, 3.001e-3 / 1.001e-3))
    # weights λ_i multiply the Fisher: entry 0 with (1, 3): (1·1 + 3·3)/(1 + 3) = 2.5
    torch.testing.assert_close(M.fisher([a, b], [fa, fb], [1, 3])[0], torch.tensor(2.5))
    with pytest.raises(ValueError, match="shape"):
        M.fisher([a, b], [fa, torch.ones(3)], [1, 1])


# --- obim ------------------------------------------------------------------------------------

BASE23 = torch.zeros(2, 3)
D1 = t([1.0, 2.0, 0.5], [3.0, 0.1, 1.5])
D2 = t([-1.0, 0.9, 0.8], [0.7, 0.6, -2.0])
SQ1 = t(4.0, 0.25, 2.0)  # ‖X_j‖² of model 1's layer inputs


def test_obim_saliency_uses_input_norms() -> None:
    # δ² · ‖X_j‖²: [[1·4, 4·0.25, 0.25·2], [9·4, 0.01·0.25, 2.25·2]]
    torch.testing.assert_close(M.obim_saliency(D1, SQ1), t([4.0, 1.0, 0.5], [36.0, 0.0025, 4.5]))
    torch.testing.assert_close(M.obim_saliency(D1, None), D1.square())
    with pytest.raises(ValueError, match="linear weight"):
        M.obim_saliency(D1, torch.ones(2))


def test_obim_masks_are_mutually_exclusive_and_order_is_priority() -> None:
    # model 1 top-3 by δ²‖X‖²: (1,0)=36, (1,2)=4.5, (0,0)=4 — magnitude alone would pick (0,1).
    # model 2 top-3 by δ²: (1,2)=4, (0,0)=1, (0,1)=0.81; (1,2) and (0,0) are taken → only (0,1).
    m1, m2 = M.obim_masks(BASE23, [D1, D2], [0.5, 0.5], [SQ1, None])
    assert m1.tolist() == [[True, False, False], [True, False, True]]
    assert m2.tolist() == [[False, True, False], [False, False, False]]
    assert not (m1 & m2).any()
    got = M.obim(BASE23, [D1, D2], [0.5, 0.5], input_sq_norms=[SQ1, None])
    torch.testing.assert_close(got, t([1.0, 0.9, 0.0], [3.0, 0.0, 1.5]))
    # reversed order: model 2 claims (1,2), (0,0), (0,1) first; model 1 keeps only (1,0)
    got = M.obim(BASE23, [D2, D1], [0.5, 0.5], input_sq_norms=[None, SQ1])
    torch.testing.assert_close(got, t([-1.0, 0.9, 0.0], [3.0, 0.0, -2.0]))


def test_obim_zero_saliency_never_claims_and_weights_scale() -> None:
    only_one = t([0.0, 0.0, 5.0], [0.0, 0.0, 0.0])
    # density 1: model 1 may claim everything but only its non-zero entry is claimed
    got = M.obim(BASE23, [only_one, D1], [1.0, 1.0])
    torch.testing.assert_close(got, t([1.0, 2.0, 5.0], [3.0, 0.1, 1.5]))
    got = M.obim(BASE23, [only_one], [1.0], weights=[0.5])
    torch.testing.assert_close(got, t([0.0, 0.0, 2.5], [0.0, 0.0, 0.0]))


def test_registry_lists_every_method_with_its_paper() -> None:
    assert {"linear", "task_arithmetic", "ties", "dare_ties", "dare_linear", "dare", "fisher", "obim"} <= set(M.METHODS)
    for name, spec in M.METHODS.items():
        assert spec.paper.startswith("https://arxiv.org/abs/"), name
    assert M.METHODS["ties"].params["normalize"] is True
    assert M.METHODS["task_arithmetic"].params["normalize"] is False
    assert M.METHODS["dare_ties"].params["rescale"] is True
