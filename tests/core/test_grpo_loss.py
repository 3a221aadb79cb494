"""Trajectory-Corrected GRPO loss: hand-computed numbers for every branch (see the numbers in comments)."""

from __future__ import annotations

import math

import pytest
import torch

from in2x_cli.core.grpo_loss import (
    LOG_RATIO_CLAMP,
    clip_rewards_high,
    clipped_objective,
    group_advantages,
    length_corrected_advantages,
    log_importance_ratio,
    policy_gradient_reference_loss,
    soft_length_penalty,
    temperature_at,
    tic_grpo_loss,
)


def close(t: torch.Tensor, expected: list[float] | float, tol: float = 1e-4) -> None:
    got = t.detach().flatten().tolist() if isinstance(t, torch.Tensor) else [t]
    exp = expected if isinstance(expected, list) else [expected]
    assert len(got) == len(exp), (got, exp)
    for g, e in zip(got, exp, strict=True):
        if isinstance(e, float) and math.isnan(e):
            assert math.isnan(g), (got, exp)
        else:
            assert g == pytest.approx(e, abs=tol), (got, exp)


# --------------------------------------------------------------------------- advantages


def test_group_advantages_hand_computed() -> None:
    # group [3, 1, 2]: mean 2, sample std sqrt((1+1+0)/2) = 1 -> ±1/(1+1e-4); group [5, 5, 5]: std 0 -> 0
    adv = group_advantages(torch.tensor([3.0, 1.0, 2.0, 5.0, 5.0, 5.0]), 3)
    close(adv, [1 / 1.0001, -1 / 1.0001, 0.0, 0.0, 0.0, 0.0])


def test_length_corrected_prefers_short_correct_answers() -> None:
    # equal rewards, lengths 2 and 4: r/L = [0.5, 0.25], mean 0.375, std sqrt(2*0.125^2) = 0.176777
    adv = length_corrected_advantages(torch.tensor([1.0, 1.0]), torch.tensor([2, 4]), 2)
    close(adv, [0.125 / 0.176877, -0.125 / 0.176877])
    # plain group advantages see no difference between them
    close(group_advantages(torch.tensor([1.0, 1.0]), 2), [0.0, 0.0])


def test_length_corrected_zero_length_and_nan() -> None:
    # length 0 is treated as 1; a NaN reward (no reward function applied) is left out and gets 0
    adv = length_corrected_advantages(torch.tensor([1.0, float("nan"), 0.0]), torch.tensor([0, 3, 5]), 3)
    close(adv, [0.5 / 0.707207, 0.0, -0.5 / 0.707207])


def test_advantages_reject_ragged_groups() -> None:
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(torch.zeros(6), 4)


# --------------------------------------------------------------------------- reward shaping


def test_soft_length_penalty_is_zero_then_linear_then_capped() -> None:
    close(soft_length_penalty(torch.tensor([5, 10, 15, 20, 30]), 10, 20), [0.0, 0.0, -0.5, -1.0, -1.0])
    close(soft_length_penalty(torch.tensor([12]), 10, 20, weight=0.5), [-0.1])
    with pytest.raises(ValueError):
        soft_length_penalty(torch.tensor([1]), 20, 10)


def test_clip_rewards_high() -> None:
    close(clip_rewards_high(torch.tensor([0.5, 2.0, float("nan"), -3.0]), 1.0), [0.5, 1.0, float("nan"), -3.0])
    r = torch.tensor([5.0])
    assert clip_rewards_high(r, None) is r


def test_temperature_decays_linearly_and_holds() -> None:
    assert [temperature_at(k, 5, 1.0, 0.6) for k in range(5)] == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6])
    assert temperature_at(10, 5, 1.0, 0.6) == pytest.approx(0.6)
    assert temperature_at(3, 1, 0.9, 0.5) == 0.9
    with pytest.raises(ValueError):
        temperature_at(0, 5, 0.0, 1.0)


# --------------------------------------------------------------------------- ratios

LOGPS = torch.tensor([[-1.0, -2.0], [-0.5, -0.3]])
OLD = torch.tensor([[-1.1, -2.1], [-1.5, -9.0]])
MASK = torch.tensor([[1, 1], [1, 0]])
# per-token Δ: row 0 [0.1, 0.1]; row 1 [1.0, (masked 8.7)]


def test_log_ratio_levels() -> None:
    close(log_importance_ratio(LOGPS, OLD, MASK, "trajectory"), [0.2, 1.0])
    close(log_importance_ratio(LOGPS, OLD, MASK, "sequence-mean"), [0.1, 1.0])
    close(log_importance_ratio(LOGPS, OLD, MASK, "token"), [0.1, 0.1, 1.0, 0.0])
    with pytest.raises(ValueError):
        log_importance_ratio(LOGPS, OLD, MASK, "sentence")


def test_log_ratio_clamped_before_exp_and_padding_inf_is_harmless() -> None:
    # 100 tokens, each 50 nats more likely now: Σ = 5000 -> exp would be inf; clamped to 20
    logps = torch.zeros(1, 101)
    old = torch.full((1, 101), -50.0)
    old[0, -1] = -math.inf  # padding position with an impossible token
    mask = torch.ones(1, 101)
    mask[0, -1] = 0
    log_w = log_importance_ratio(logps, old, mask, "trajectory")
    close(log_w, [LOG_RATIO_CLAMP])
    out = tic_grpo_loss(logps.requires_grad_(), old, torch.tensor([-1.0]), mask, dual_clip=3.0)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert torch.isfinite(logps.grad).all()
    close(out.loss, 3.0)  # dual clip: -max(-e^20, -3)
    assert out.stats["ratio/clamped_fraction"] == 1.0
    # and the other direction: a collapsed ratio stays positive and finite
    close(log_importance_ratio(old[:, :100], logps[:, :100], mask[:, :100], "trajectory"), [-LOG_RATIO_CLAMP])


# --------------------------------------------------------------------------- clipped objective, every branch


@pytest.mark.parametrize(
    ("w", "a", "expected", "grad"),
    [
        (1.1, 1.0, 1.1, 1.0),  # A > 0, inside the clip: w·A, gradient A
        (1.5, 1.0, 1.28, 0.0),  # A > 0, above 1+ε: (1+ε)·A, no gradient
        (0.5, 1.0, 0.5, 1.0),  # A > 0, small w: no lower bound
        (0.5, -1.0, -0.5, -1.0),  # A < 0, w < 1-ε: lower bound removed (PPO would give -0.8)
        (2.0, -1.0, -2.0, -1.0),  # A < 0, 1+ε < w < c: unclipped (PPO would also give -2.0)
        (5.0, -1.0, -3.0, 0.0),  # A < 0, w > c: dual clip c·A, no gradient
    ],
)
def test_clipped_objective_branches(w: float, a: float, expected: float, grad: float) -> None:
    ratio = torch.tensor([[w]], requires_grad=True)
    obj = clipped_objective(ratio, torch.tensor([[a]]), epsilon_high=0.28, dual_clip=3.0)
    close(obj, expected)
    obj.sum().backward()
    close(ratio.grad, grad)


def test_clipped_objective_without_dual_clip_is_unbounded_for_negative_advantages() -> None:
    close(clipped_objective(torch.tensor([[5.0]]), torch.tensor([[-1.0]]), epsilon_high=0.28, dual_clip=None), -5.0)


# --------------------------------------------------------------------------- the full loss, each level


def test_trajectory_loss_hand_computed() -> None:
    # w = [e^0.2, e^1.0] = [1.221403, 2.718282]; A = [1, -1]
    # J = [min(1.221403, 1.28)·1, -min(2.718282, 3)] -> loss = -(1.221403 - 2.718282)/2 = 0.748440
    out = tic_grpo_loss(LOGPS, OLD, torch.tensor([1.0, -1.0]), MASK, ratio_level="trajectory", epsilon_high=0.28, dual_clip=3.0)
    close(out.loss, 0.748440)
    assert out.stats["clip/high_fraction"] == 0.0
    assert out.stats["clip/dual_fraction"] == 0.0
    close(out.stats["ratio/mean"], (1.221403 + 2.718282) / 2)
    # a tighter ε_high clips the first trajectory (1.2214 > 1.1): J0 = 1.1
    out = tic_grpo_loss(LOGPS, OLD, torch.tensor([1.0, -1.0]), MASK, ratio_level="trajectory", epsilon_high=0.1, dual_clip=3.0)
    close(out.loss, -(1.1 - 2.718282) / 2)
    assert out.stats["clip/high_fraction"] == 0.5
    # c = 2 dual-clips the second one: J1 = -2
    out = tic_grpo_loss(LOGPS, OLD, torch.tensor([1.0, -1.0]), MASK, ratio_level="trajectory", epsilon_high=0.28, dual_clip=2.0)
    close(out.loss, -(1.221403 - 2.0) / 2)
    assert out.stats["clip/dual_fraction"] == 0.5


def test_sequence_mean_loss_hand_computed() -> None:
    # s = [e^0.1, e^1.0] = [1.105171, 2.718282] -> loss = -(1.105171 - 2.718282)/2 = 0.806556
    out = tic_grpo_loss(LOGPS, OLD, torch.tensor([1.0, -1.0]), MASK, ratio_level="sequence-mean")
    close(out.loss, 0.806556)


def test_token_loss_hand_computed() -> None:
    # tokens: row 0 two tokens w = e^0.1, A = 1 -> 1.105171 each; row 1 one token w = e, A = -1 -> -2.718282
    # loss = -(2·1.105171 - 2.718282)/3 = 0.169313
    out = tic_grpo_loss(LOGPS, OLD, torch.tensor([1.0, -1.0]), MASK, ratio_level="token")
    close(out.loss, 0.169313)
    # a caller-provided normaliser (accumulation window of 6 tokens) halves it
    out = tic_grpo_loss(LOGPS, OLD, torch.tensor([1.0, -1.0]), MASK, ratio_level="token", token_normalizer=6.0)
    close(out.loss, 0.169313 / 2)


def test_entropy_bonus_and_kl_terms() -> None:
    entropies = torch.tensor([[1.0, 2.0], [3.0, 100.0]])  # masked 100 ignored: mean 2.0
    ref = LOGPS.clone()
    ref[0, 0] += math.log(2.0)  # q - p = ln 2 -> k3 = 2 - ln 2 - 1 = 0.306853; mean over 3 tokens 0.102284
    out = tic_grpo_loss(
        LOGPS, OLD, torch.tensor([1.0, -1.0]), MASK, entropies=entropies, entropy_coef=0.01, ref_per_token_logps=ref, kl_coef=0.5
    )
    assert out.entropy == pytest.approx(2.0)
    assert out.kl == pytest.approx(0.306853 / 3, abs=1e-5)
    close(out.loss, 0.748440 - 0.01 * 2.0 + 0.5 * 0.306853 / 3)
    # the KL is reported but not added when its coefficient is 0
    out0 = tic_grpo_loss(LOGPS, OLD, torch.tensor([1.0, -1.0]), MASK, ref_per_token_logps=ref)
    close(out0.loss, 0.748440)


def test_sequence_weights_scale_the_objective() -> None:
    out = tic_grpo_loss(LOGPS, OLD, torch.tensor([1.0, -1.0]), MASK, sequence_weights=torch.tensor([[0.5], [1.0]]))
    close(out.loss, -(0.5 * 1.221403 - 2.718282) / 2)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="ratio level"):
        tic_grpo_loss(LOGPS, OLD, torch.ones(2), MASK, ratio_level="sentence")
    with pytest.raises(ValueError, match="> 1"):
        tic_grpo_loss(LOGPS, OLD, torch.ones(2), MASK, dual_clip=0.5)


# --------------------------------------------------------------------------- on-policy gradient = policy gradient


@pytest.mark.parametrize("level", ["trajectory", "sequence-mean", "token"])
def test_on_policy_gradient_equals_plain_policy_gradient(level: str) -> None:
    gen = torch.Generator().manual_seed(0)
    batch, length, vocab, dim = 4, 6, 11, 5
    features = torch.randn(batch, length, dim, generator=gen)
    tokens = torch.randint(0, vocab, (batch, length), generator=gen)
    mask = torch.ones(batch, length)
    mask[1, 4:] = 0
    mask[3, 2:] = 0
    advantages = torch.tensor([1.3, -0.7, 0.2, -2.1])

    def logps_of(weight: torch.Tensor) -> torch.Tensor:
        logits = features @ weight
        return torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)

    w1 = torch.randn(dim, vocab, generator=gen).requires_grad_()
    logps = logps_of(w1)
    out = tic_grpo_loss(logps, logps.detach(), advantages, mask, ratio_level=level, epsilon_high=0.28, dual_clip=3.0)
    (g_ours,) = torch.autograd.grad(out.loss, w1)

    w2 = w1.detach().clone().requires_grad_()
    ref_loss = policy_gradient_reference_loss(logps_of(w2), advantages, mask, level)
    (g_pg,) = torch.autograd.grad(ref_loss, w2)

    assert torch.allclose(g_ours, g_pg, atol=1e-6), (g_ours - g_pg).abs().max()
    assert g_pg.abs().sum() > 0
    assert out.stats["ratio/mean"] == pytest.approx(1.0)
    assert out.stats["clip/any_fraction"] == 0.0


def test_trajectory_and_token_gradients_differ_off_policy() -> None:
    # off policy the three levels weight the same tokens differently: the trajectory correction is real
    logps = LOGPS.clone().requires_grad_()
    grads = {}
    for level in ("trajectory", "sequence-mean", "token"):
        (g,) = torch.autograd.grad(tic_grpo_loss(logps, OLD, torch.tensor([1.0, -1.0]), MASK, ratio_level=level).loss, logps)
        grads[level] = g
    # trajectory, row 0: d/dlogp_t of -(w0·1)/2 = -w0/2 = -1.221403/2 on each unmasked token
    close(grads["trajectory"][0], [-0.610701, -0.610701])
    # sequence-mean, row 0: -(s0/L0)/2 = -1.105171/4
    close(grads["sequence-mean"][0], [-0.276293, -0.276293])
    # token, row 0: -(w_t)/3 = -1.105171/3
    close(grads["token"][0], [-0.368390, -0.368390])


# --------------------------------------------------------------------------- advantage kinds, clip scale (issue 16)


def test_length_corrected_rewards_truncation_with_a_dense_reward_and_auto_does_not() -> None:
    """The issue's case: one group with the perfect translation (chrF 1.0, 21 tokens), a 4-word
    truncation (chrF 0.306, 5 tokens) and two paraphrases. r/L puts the truncation on top."""
    from in2x_cli.core.grpo_loss import advantages_for

    rewards = torch.tensor([1.0, 0.306, 0.7493, 0.6529], dtype=torch.float64)
    lengths = torch.tensor([21.0, 5.0, 18.0, 20.0], dtype=torch.float64)
    tic = advantages_for("length-corrected", rewards, lengths, 4)
    assert int(tic.argmax()) == 1 and tic[1] > tic[0]  # truncation outscores the perfect translation
    for kind in ("auto", "group", "reference-length"):
        adv = advantages_for(kind, rewards, lengths, 4)
        assert int(adv.argmax()) == 0 and adv[1] < 0, kind
    # auto on a dense group is exactly the group advantage
    close(advantages_for("auto", rewards, lengths, 4), group_advantages(rewards, 4).tolist(), tol=1e-12)


def test_auto_uses_length_correction_only_in_verifiable_groups() -> None:
    from in2x_cli.core.grpo_loss import advantages_for, verifiable_groups

    rewards = torch.tensor([1.0, 1.0, 0.0, float("nan"), 0.9, 0.2, 0.5, 0.1])
    lengths = torch.tensor([2.0, 4.0, 3.0, 3.0, 2.0, 4.0, 3.0, 3.0])
    assert verifiable_groups(rewards, 4).tolist() == [True, False]
    # a weighted pass/fail reward (math_exact:0.8) is still pass/fail; two passing levels, a
    # negative total (length penalty) or a dense value are not
    assert verifiable_groups(torch.tensor([0.8, 0.0, 0.8, float("nan"), 0.8, 0.2, 0.0, 1.0, 0.0, -0.5, 1.0, 1.0]), 4).tolist() == [True, False, False]
    adv = advantages_for("auto", rewards, lengths, 4)
    close(adv[:4], length_corrected_advantages(rewards[:4], lengths[:4], 4).tolist())
    close(adv[4:], group_advantages(rewards[4:], 4).tolist())
    # 0/1 groups: every correct answer stays above every wrong one whatever its length
    assert min(adv[0], adv[1]) > adv[2]


def test_reference_length_never_raises_a_short_completion() -> None:
    from in2x_cli.core.grpo_loss import reference_length_advantages

    # reference length 10: r*min(1, 10/L) = [0.5, 0.5, 0.5, 0.5] -> all 0 (the short one is not raised)
    ref = torch.full((4,), 10.0)
    adv = reference_length_advantages(torch.tensor([0.5, 0.5, 1.0, 0.5]), torch.tensor([5.0, 10.0, 20.0, 10.0]), 4, reference_lengths=ref)
    close(adv, [0.0, 0.0, 0.0, 0.0])
    # an unknown reference (NaN) leaves the reward as it is: [1.0, 1.0·4/8] -> mean 0.75, std 0.353553
    adv = reference_length_advantages(torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([4.0, 8.0, 4.0, 8.0]), 2,
                                      reference_lengths=torch.tensor([4.0, 4.0, float("nan"), float("nan")]))  # fmt: skip
    close(adv, [0.25 / (0.3535534 + 1e-4), -0.25 / (0.3535534 + 1e-4), 0.0, 0.0])
    # no reference lengths at all: plain group advantages
    close(reference_length_advantages(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 9.0]), 2), group_advantages(torch.tensor([1.0, 0.0]), 2).tolist())


@pytest.mark.parametrize("kind", ["auto", "group", "length-corrected", "reference-length"])
def test_advantages_keep_the_input_dtype(kind: str) -> None:
    from in2x_cli.core.grpo_loss import advantages_for

    r = torch.tensor([0.1, 0.7, 1.0, 0.0], dtype=torch.float64)
    out = advantages_for(kind, r, torch.tensor([3, 5, 7, 2]), 4)
    assert out.dtype == torch.float64
    assert advantages_for(kind, r.float(), torch.tensor([3, 5, 7, 2]), 4).dtype == torch.float32
    # float64 precision survives: a spread of 1e-9 is still resolved (float32 would round it away)
    tiny = torch.tensor([1.0, 1.0 + 1e-9], dtype=torch.float64)
    assert group_advantages(tiny, 2, delta=0.0)[1] == pytest.approx(0.7071067811865476)


def test_clip_bounds_scale_with_the_trajectory_length() -> None:
    from in2x_cli.core.grpo_loss import clip_log_bounds

    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0, 0, 0], [1] * 9])
    b = math.log(1.28)
    for scale, factors in (("sqrt-length", [2.0, 3.0]), ("length", [4.0, 9.0]), ("none", [1.0, 1.0])):
        high, dual = clip_log_bounds(mask, "trajectory", epsilon_high=0.28, dual_clip=3.0, clip_scale=scale)
        close(high, [b * f for f in factors], tol=1e-9)
        close(dual, [math.log(3.0) * f for f in factors], tol=1e-9)
    # per-token-scale ratios are never rescaled
    for level in ("sequence-mean", "token"):
        high, _ = clip_log_bounds(mask, level, epsilon_high=0.28, dual_clip=3.0, clip_scale="sqrt-length")
        close(high, [b, b], tol=1e-9)


def test_symmetric_clip_stops_positive_and_negative_samples_at_mirrored_log_ratios() -> None:
    """Trajectory level, 4 tokens each, sqrt-length scale: b = 2·log(1.28) = 0.4937. A positive
    sample with log w = +0.55 and a negative one with log w = −0.55 both give no gradient; at ±0.45
    both do. Without --symmetric-clip the negative sample at −0.55 keeps its gradient."""
    b = 2 * math.log(1.28)
    mask = torch.ones(4, 4)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    log_w_total = torch.tensor([0.55, -0.55, 0.45, -0.45])
    old = torch.zeros(4, 4)

    def grads(symmetric: bool) -> list[float]:
        logps = (log_w_total / 4).unsqueeze(1).repeat(1, 4).clone().requires_grad_(True)
        out = tic_grpo_loss(logps, old, adv, mask, ratio_level="trajectory", epsilon_high=0.28, dual_clip=3.0, clip_scale="sqrt-length", symmetric_clip=symmetric)
        out.loss.backward()
        return logps.grad.abs().sum(dim=1).tolist()

    g = grads(True)
    assert g[0] == 0.0 and g[1] == 0.0 and g[2] > 0 and g[3] > 0
    assert 0.55 > b > 0.45
    g = grads(False)
    assert g[0] == 0.0 and g[1] > 0  # upper-only clip: the negative sample is not clipped below
    # the stats see the same clipping
    logps = (log_w_total / 4).unsqueeze(1).repeat(1, 4)
    stats = tic_grpo_loss(logps, old, adv, mask, clip_scale="sqrt-length", symmetric_clip=True).stats
    assert stats["clip/high_fraction"] == 0.25 and stats["clip/low_fraction"] == 0.25


def test_unscaled_trajectory_clip_matches_the_old_objective() -> None:
    """clip_scale none reproduces the original bounds exactly (1+ε and c on the product)."""
    ratio = torch.tensor([[0.5], [1.2], [1.5], [2.0], [4.0]])
    adv = torch.tensor([[1.0], [1.0], [1.0], [-1.0], [-1.0]])
    got = clipped_objective(ratio, adv, epsilon_high=0.28, dual_clip=3.0)
    close(got, [0.5, 1.2, 1.28, -2.0, -3.0])
