"""Trajectory-Corrected GRPO: advantages, importance ratios, the clipped objective, reward shaping.

Papers:
  - In2x (WMT25), RL stage: arXiv 2508.14472 — trajectory-level ratio, dual clip with the lower bound
    removed, soft length penalty, high-clipped rewards, temperature decay, entropy coefficient 0.01.
  - TIC-GRPO, Pang & Jin: arXiv 2508.02833 — one importance ratio per trajectory and a
    length-corrected group advantage.
  - GSPO, Zheng et al.: arXiv 2507.18071 — the length-normalised (geometric-mean) sequence ratio.
  - GRPO, Shao et al. (DeepSeekMath): arXiv 2402.03300 — group-normalised advantages, token ratios.
  - Dual clip, Ye et al. (2020): arXiv 1912.09729 — bound the objective for A < 0 by c·A (c > 1),
    as verl's ``clip_ratio_c`` (default 3).

Notation for one prompt with G sampled completions y_1..y_G (a *group*), completion i with L_i
tokens y_{i,1..L_i}, reward r_i, current policy π_θ and the policy that sampled the rollouts π_old:

  Δ_{i,t} = log π_θ(y_{i,t} | x, y_{i,<t}) − log π_old(y_{i,t} | x, y_{i,<t})

  ratio level      one weight per          w
  "trajectory"     completion (TIC)         w_i   = exp(Σ_t Δ_{i,t})            = π_θ(y_i)/π_old(y_i)
  "sequence-mean"  completion (GSPO)        s_i   = exp((1/L_i) Σ_t Δ_{i,t})
  "token"          token (GRPO/PPO)         w_i,t = exp(Δ_{i,t})

  objective (maximised) for a weight w and advantage A, ε = ε_high, c = dual-clip constant:
    J(w, A) = min(w·A, min(w, 1+ε)·A)                  (upper-only clip: no 1−ε lower bound)
    J(w, A) = max(J(w, A), c·A)          if A < 0     (dual clip)
  which simplifies to  J = min(w, 1+ε)·A  for A ≥ 0  and  J = min(w, c)·A  for A < 0.
  The gradient is zero exactly where the min/max picks the constant: A > 0 and w > 1+ε
  ("high-clipped"), A < 0 and w > c ("dual-clipped").

  Clip scale (ours; ``clip_log_bounds``): ε and c are per-token numbers, a trajectory weight is a
  product of L_i token ratios. At the trajectory level the bounds are applied in log-space as
  b_i = log(1+ε)·√L_i and d_i = log(c)·√L_i by default ("sqrt-length"; "length" and "none" are the
  alternatives). Optionally ("symmetric") a negative sample is clipped below e^−b_i, mirroring
  the positive bound in log-space. bench/grpo_ablation.py measures the clip fractions.

  Advantages (``advantages_for``): TIC-GRPO divides the reward by the length before normalising.
  With a dense reward (chrF, a judge's fraction) that makes truncation win: in one group a 4-word
  truncation (chrF 0.12) gets A = +1.19 and the perfect translation (chrF 1.0, 30 tokens) A = −0.29.
  The default "auto" uses the length correction only in groups whose rewards are all 0/1.

  loss = −mean(J) − β_H · H̄ + β_KL · KL̄
    sequence levels: mean over completions; token level: mean over completion tokens (DAPO's
    token-sum / token-count aggregation). H̄ is the mean per-token entropy, KL̄ the mean per-token
    k3 estimator of KL(π_θ ‖ π_ref) (Schulman 2020): exp(q − p) − (q − p) − 1 with p = log π_θ,
    q = log π_ref.

Overflow: Σ_t Δ_{i,t} over a long completion can exceed the float range of exp (exp(89) is inf in
float32). Log-ratios are clamped to [−LOG_RATIO_CLAMP, LOG_RATIO_CLAMP] = [−20, 20] *after*
aggregation and before exp. This changes no gradient that matters: a weight above e^20 ≈ 4.9e8 is
far beyond both 1+ε and c, where the objective is already constant, and a weight below
e^−20 ≈ 2e−9 contributes a gradient of at most 2e−9·|A|. Padding positions are excluded with
``torch.where`` (never multiplied by 0), so an inf log-probability in padding cannot produce NaN.

On-policy (π_old = π_θ, every weight 1, never clipped) the gradient of the trajectory loss equals
the plain policy gradient −(1/B) Σ_i A_i Σ_t ∇log π_θ(y_{i,t}); sequence-mean gives the
length-normalised −(1/B) Σ_i (A_i/L_i) Σ_t ∇log π_θ, token level −(1/N) Σ_{i,t} A_i ∇log π_θ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

RatioLevel = Literal["trajectory", "sequence-mean", "token"]
RATIO_LEVELS: tuple[str, ...] = ("trajectory", "sequence-mean", "token")
AdvantageKind = Literal["auto", "group", "length-corrected", "reference-length"]
ADVANTAGE_KINDS: tuple[str, ...] = ("auto", "group", "length-corrected", "reference-length")
ClipScale = Literal["sqrt-length", "length", "none"]
CLIP_SCALES: tuple[str, ...] = ("sqrt-length", "length", "none")

LOG_RATIO_CLAMP = 20.0
ADVANTAGE_DELTA = 1e-4  # δ in the advantage denominators (TRL uses the same 1e-4)


# --------------------------------------------------------------------------- advantages


def _grouped(x: torch.Tensor, group_size: int) -> torch.Tensor:
    if group_size < 1 or x.numel() % group_size:
        raise ValueError(f"{x.numel()} values do not split into groups of {group_size}")
    return x.reshape(-1, group_size)


def _normalise_in_groups(values: torch.Tensor, group_size: int, delta: float) -> torch.Tensor:
    """(v − mean_g v) / (std_g v + δ) per group, ignoring NaN entries; NaN entries get advantage 0.

    std is the Bessel-corrected sample standard deviation (as torch.std and TRL); a group with a
    single valid entry has std 0.
    """
    import torch

    g = _grouped(values if values.is_floating_point() else values.float(), group_size)
    valid = ~torch.isnan(g)
    n = valid.sum(dim=1, keepdim=True)
    filled = torch.where(valid, g, torch.zeros_like(g))
    mean = filled.sum(dim=1, keepdim=True) / n.clamp(min=1)
    sq = torch.where(valid, (g - mean) ** 2, torch.zeros_like(g))
    std = torch.sqrt(sq.sum(dim=1, keepdim=True) / (n - 1).clamp(min=1))
    adv = torch.where(valid, (g - mean) / (std + delta), torch.zeros_like(g))
    return adv.reshape(values.shape)


def group_advantages(rewards: torch.Tensor, group_size: int, *, delta: float = ADVANTAGE_DELTA) -> torch.Tensor:
    """Plain GRPO advantage (arXiv 2402.03300): A_i = (r_i − mean_j r_j) / (std_j r_j + δ).

    ``rewards`` is (B,) with the G completions of each prompt contiguous (B = groups × G). NaN
    rewards (no reward function applied) are left out of the group statistics and get A = 0.
    """
    return _normalise_in_groups(rewards, group_size, delta)


def length_corrected_advantages(
    rewards: torch.Tensor, lengths: torch.Tensor, group_size: int, *, delta: float = ADVANTAGE_DELTA
) -> torch.Tensor:
    """TIC-GRPO's length-corrected advantage (arXiv 2508.02833):

        A_i = (r_i/L_i − mean_j(r_j/L_j)) / (std_j(r_j/L_j) + δ)

    L_i is the completion length in tokens (clamped to ≥ 1). With a trajectory-level ratio the
    gradient of completion i sums L_i token terms; dividing the reward by L_i keeps long
    completions from dominating the update. NaN rewards get A = 0 as in ``group_advantages``.
    """
    r = rewards if rewards.is_floating_point() else rewards.float()
    per_token = r / lengths.to(r.dtype).clamp(min=1.0)
    return _normalise_in_groups(per_token, group_size, delta)


def reference_length_advantages(
    rewards: torch.Tensor,
    lengths: torch.Tensor,
    group_size: int,
    *,
    reference_lengths: torch.Tensor | None = None,
    delta: float = ADVANTAGE_DELTA,
) -> torch.Tensor:
    """Length correction measured against a reference length (ours):

        A_i = (r_i·min(1, L_ref,i/L_i) − mean_j(·)) / (std_j(·) + δ)

    A completion longer than its reference has its reward scaled down by L_ref/L_i; one at or below
    L_ref keeps its reward, so cutting an answer short never raises its advantage (TIC-GRPO's r/L
    does: a 4-word truncation outscores the full translation under chrF). ``reference_lengths``
    (B,) is the reference's token length per completion; where it is unknown (None, NaN, ≤ 0) the
    reward is not rescaled. (A group statistic such as the median length is not used as the
    reference: under a dense reward it drifts shorter round after round.)
    """
    import torch

    r = rewards if rewards.is_floating_point() else rewards.float()
    if reference_lengths is None:
        return _normalise_in_groups(r, group_size, delta)
    lens = lengths.to(r.dtype).clamp(min=1.0)
    given = reference_lengths.to(r.dtype)
    known = ~torch.isnan(given) & (given > 0)
    factor = torch.where(known, torch.clamp(given / lens, max=1.0), torch.ones_like(lens))
    return _normalise_in_groups(r * factor, group_size, delta)


def verifiable_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(groups,) bool: the group's scored rewards take at most two values, 0 and one positive c
    (a pass/fail reward such as math_exact, at any weight); NaN entries (not applicable) are
    ignored. Only then can r/L never rank a failed completion above a passed one: every pass has
    r/L = c/L > 0 = every fail. Two passing levels (math 0.8 + format 0.2) or a length penalty
    make the group dense."""
    import torch

    g = _grouped(rewards, group_size)
    valid = ~torch.isnan(g)
    negative = (valid & (g < 0)).any(dim=1)
    passed = valid & (g > 0)
    high = torch.where(passed, g, torch.full_like(g, float("-inf"))).max(dim=1).values
    low = torch.where(passed, g, torch.full_like(g, float("inf"))).min(dim=1).values
    return ~negative & (~passed.any(dim=1) | (high == low))


def advantages_for(
    kind: str,
    rewards: torch.Tensor,
    lengths: torch.Tensor,
    group_size: int,
    *,
    reference_lengths: torch.Tensor | None = None,
    delta: float = ADVANTAGE_DELTA,
) -> torch.Tensor:
    """Dispatch on the advantage kind (``ADVANTAGE_KINDS``):

    - ``group``: GRPO's (r − mean)/(std + δ).
    - ``length-corrected``: TIC-GRPO's (r/L − mean)/(std + δ). Sound for 0/1 rewards only: with a
      dense reward (chrF, a judge's fraction of principles) dividing by L makes short, truncated
      completions win (bench/grpo_ablation.py).
    - ``auto`` (the default, ours): length-corrected in groups whose rewards are pass/fail, 0 or
      one positive value (``verifiable_groups``: among correct answers the shorter wins, a wrong
      answer never beats a right one), plain group advantages in every other group.
    - ``reference-length``: ``reference_length_advantages``.
    """
    import torch

    if kind == "group":
        return group_advantages(rewards, group_size, delta=delta)
    if kind == "length-corrected":
        return length_corrected_advantages(rewards, lengths, group_size, delta=delta)
    if kind == "reference-length":
        return reference_length_advantages(rewards, lengths, group_size, reference_lengths=reference_lengths, delta=delta)
    if kind == "auto":
        corrected = length_corrected_advantages(rewards, lengths, group_size, delta=delta)
        plain = group_advantages(rewards, group_size, delta=delta)
        use = verifiable_groups(rewards, group_size).repeat_interleave(group_size).reshape(plain.shape)
        return torch.where(use, corrected, plain)
    raise ValueError(f"unknown advantage kind {kind!r} (expected one of {', '.join(ADVANTAGE_KINDS)})")


# --------------------------------------------------------------------------- reward shaping


def soft_length_penalty(lengths: torch.Tensor, target: int, cap: int, *, weight: float = 1.0) -> torch.Tensor:
    """Soft overlong penalty (the shape of DAPO's, arXiv 2503.14476):

        p(L) = 0                                 L ≤ target
        p(L) = −weight · (L − target)/(cap − target)   target < L < cap
        p(L) = −weight                           L ≥ cap

    Added to the reward before advantages are computed.
    """
    import torch

    if not 0 <= target < cap:
        raise ValueError(f"length penalty needs 0 <= target < cap, got target={target} cap={cap}")
    frac = ((lengths.float() - target) / float(cap - target)).clamp(min=0.0, max=1.0)
    return -weight * frac + torch.zeros_like(frac)  # a fresh tensor, -0.0 becomes 0.0


def clip_rewards_high(rewards: torch.Tensor, high: float | None) -> torch.Tensor:
    """High-clip of rewards: r ← min(r, high) (NaN stays NaN). ``None`` leaves rewards unchanged."""
    if high is None:
        return rewards
    import torch

    return torch.where(torch.isnan(rewards), rewards, rewards.clamp(max=high))


def temperature_at(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear sampling-temperature decay: τ(k) = start + (end − start) · min(k / (K − 1), 1).

    ``step`` k counts generation rounds from 0; K is the number of rounds in the run (τ(0) = start,
    τ(K−1) = end). The In2x paper decays the temperature across RL steps but gives no schedule;
    linear is the simplest that hits both ends.
    """
    if start <= 0 or end <= 0:
        raise ValueError("temperatures must be > 0")
    if total_steps <= 1:
        return float(start)
    frac = min(max(step, 0) / (total_steps - 1), 1.0)
    return float(start + (end - start) * frac)


# --------------------------------------------------------------------------- ratios and objective


def log_importance_ratio(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor,
    mask: torch.Tensor,
    level: str,
    *,
    clamp: float = LOG_RATIO_CLAMP,
) -> torch.Tensor:
    """log w for ``level`` (see the module docstring): (B, 1) for the sequence levels, (B, T) for
    "token". Masked positions contribute nothing (selected out with ``torch.where``); the result is
    clamped to [−clamp, clamp] before anyone exponentiates it."""
    import torch

    m = mask.bool()
    delta = torch.where(m, per_token_logps - old_per_token_logps, torch.zeros_like(per_token_logps))
    if level == "token":
        log_w = delta
    elif level == "trajectory":
        log_w = delta.sum(dim=-1, keepdim=True)
    elif level == "sequence-mean":
        log_w = delta.sum(dim=-1, keepdim=True) / m.sum(dim=-1, keepdim=True).clamp(min=1)
    else:
        raise ValueError(f"unknown ratio level {level!r} (expected one of {', '.join(RATIO_LEVELS)})")
    return log_w.clamp(min=-clamp, max=clamp)


def clipped_objective(
    ratio: torch.Tensor,
    advantages: torch.Tensor,
    *,
    epsilon_high: float | None = None,
    dual_clip: float | None = None,
    log_high: torch.Tensor | float | None = None,
    log_dual: torch.Tensor | float | None = None,
    symmetric: bool = False,
) -> torch.Tensor:
    """J(w, A) = min(w·A, min(w, e^b)·A), then max(J, e^d·A) where A < 0 (the dual clip).

    The bounds are given in log-space: ``log_high`` = b (default log(1+ε_high)) and ``log_dual`` =
    d (default log c; None = no dual clip); each may be a (B, 1) tensor (per-completion bounds,
    ``clip_log_bounds``). ``symmetric=True`` adds the lower clip mirrored in log-space,
    J = min(w·A, clip(w, e^−b, e^b)·A): a negative sample stops giving gradient once its weight
    has fallen below e^−b, as a positive one does above e^b. Shapes broadcast.
    """
    import torch

    if log_high is None:
        if epsilon_high is None:
            raise ValueError("clipped_objective needs epsilon_high or log_high")
        log_high = math.log1p(epsilon_high)
    if log_dual is None and dual_clip is not None:
        log_dual = math.log(dual_clip)
    high = torch.exp(torch.as_tensor(log_high, dtype=ratio.dtype, device=ratio.device))
    low = torch.exp(-torch.as_tensor(log_high, dtype=ratio.dtype, device=ratio.device)) if symmetric else None
    unclipped = ratio * advantages
    bounded = torch.minimum(ratio, high)
    if low is not None:
        bounded = torch.maximum(bounded, low)
    objective = torch.min(unclipped, bounded * advantages)
    if log_dual is not None:
        c = torch.exp(torch.as_tensor(log_dual, dtype=ratio.dtype, device=ratio.device))
        objective = torch.where(advantages < 0, torch.max(objective, c * advantages), objective)
    return objective


def clip_log_bounds(
    mask: torch.Tensor,
    ratio_level: str,
    *,
    epsilon_high: float,
    dual_clip: float | None,
    clip_scale: str = "none",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-completion log-space clip bounds (b_i, d_i), each (B, 1).

    ε and c are per-token quantities (PPO/DAPO clip one token's ratio at 1+ε). A trajectory ratio
    is a product of L_i token ratios, so its log is a sum of L_i token log-ratios; the rule (ours):

      b_i = log(1+ε) · s(L_i),   d_i = log(c) · s(L_i)
      s(L) = √L   "sqrt-length" (default for the trajectory level): independent token log-ratios
                  of spread σ sum to spread σ√L, so a trajectory is clipped about as often as one
                  of its tokens would be;
      s(L) = L    "length": the trajectory is clipped when its geometric-mean token ratio (GSPO's
                  sequence-mean ratio) leaves the token bound;
      s(L) = 1    "none": 1+ε and c applied to the product itself (clips almost every long
                  off-policy trajectory: what the first version did).

    Sequence-mean and token ratios are already on the per-token scale: s = 1 for them.
    """
    import torch

    if clip_scale not in CLIP_SCALES:
        raise ValueError(f"unknown clip scale {clip_scale!r} (expected one of {', '.join(CLIP_SCALES)})")
    lengths = mask.to(torch.float64).sum(dim=-1, keepdim=True).clamp(min=1.0)
    if ratio_level != "trajectory" or clip_scale == "none":
        scale = torch.ones_like(lengths)
    elif clip_scale == "sqrt-length":
        scale = lengths.sqrt()
    else:
        scale = lengths
    log_high = (math.log1p(epsilon_high) * scale).to(mask.device)
    log_dual = (math.log(dual_clip) * scale).to(mask.device) if dual_clip is not None else None
    return log_high, log_dual


@dataclass
class GRPOLossOutput:
    """The scalar to backpropagate and detached diagnostics (floats) for logging."""

    loss: torch.Tensor
    policy_loss: float
    entropy: float
    kl: float
    stats: dict[str, float] = field(default_factory=dict)


def tic_grpo_loss(
    per_token_logps: torch.Tensor,
    old_per_token_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    ratio_level: str = "trajectory",
    epsilon_high: float = 0.28,
    dual_clip: float | None = 3.0,
    entropies: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    ref_per_token_logps: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    sequence_weights: torch.Tensor | None = None,
    sequence_normalizer: float | None = None,
    token_normalizer: float | None = None,
    log_ratio_clamp: float = LOG_RATIO_CLAMP,
    clip_scale: str = "none",
    symmetric_clip: bool = False,
) -> GRPOLossOutput:
    """The full Trajectory-Corrected GRPO loss for one micro-batch (formulas: module docstring).

    Args:
      per_token_logps: (B, T) log π_θ of the completion tokens (requires grad).
      old_per_token_logps: (B, T) log π_old (detached).
      advantages: (B,) or (B, 1).
      mask: (B, T) 1 for completion tokens that count, 0 for padding / tool output.
      sequence_weights: optional (B, 1) or (B, T) detached multiplier on the objective (TRL's vLLM
        sampler-mismatch importance weights).
      sequence_normalizer / token_normalizer: the number of completions / tokens the loss is averaged
        over (defaults: this micro-batch's B / token count). The trainer passes the totals of the whole
        gradient-accumulation window so micro-batches sum to one mean.
      clip_scale / symmetric_clip: how ε and c are put on the scale of the ratio
        (``clip_log_bounds``) and whether negatives are clipped below e^−b (``clipped_objective``).

    Entropy and KL terms are token means over this micro-batch; scale by the accumulation steps outside.
    """
    import torch

    if ratio_level not in RATIO_LEVELS:
        raise ValueError(f"unknown ratio level {ratio_level!r} (expected one of {', '.join(RATIO_LEVELS)})")
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual clip constant must be > 1, got {dual_clip}")
    m = mask.to(per_token_logps.dtype)
    adv = advantages.reshape(-1, 1).to(per_token_logps.dtype)
    n_tokens = m.sum().clamp(min=1.0)
    n_seqs = adv.shape[0]

    log_w = log_importance_ratio(per_token_logps, old_per_token_logps, mask, ratio_level, clamp=log_ratio_clamp)
    ratio = torch.exp(log_w)
    log_high, log_dual = clip_log_bounds(mask, ratio_level, epsilon_high=epsilon_high, dual_clip=dual_clip, clip_scale=clip_scale)
    log_high, log_dual = log_high.to(ratio.dtype), log_dual.to(ratio.dtype) if log_dual is not None else None
    objective = clipped_objective(ratio, adv, log_high=log_high, log_dual=log_dual, symmetric=symmetric_clip)
    if sequence_weights is not None:
        objective = objective * sequence_weights.detach()

    if ratio_level == "token":
        objective_sum = torch.where(mask.bool(), objective, torch.zeros_like(objective)).sum()
        normalizer = token_normalizer if token_normalizer is not None else n_tokens
    else:
        objective_sum = objective.sum()
        normalizer = sequence_normalizer if sequence_normalizer is not None else float(n_seqs)
    policy_loss = -objective_sum / normalizer
    loss = policy_loss

    mean_entropy = torch.zeros((), dtype=per_token_logps.dtype, device=per_token_logps.device)
    if entropies is not None:
        mean_entropy = (entropies * m).sum() / n_tokens
        if entropy_coef:
            loss = loss - entropy_coef * mean_entropy

    mean_kl = torch.zeros((), dtype=per_token_logps.dtype, device=per_token_logps.device)
    if ref_per_token_logps is not None:
        diff = torch.where(mask.bool(), ref_per_token_logps - per_token_logps, torch.zeros_like(per_token_logps))
        per_token_kl = torch.exp(diff) - diff - 1.0
        mean_kl = (per_token_kl * m).sum() / n_tokens
        if kl_coef:
            loss = loss + kl_coef * mean_kl

    stats = ratio_stats(
        log_w, adv, mask, ratio_level=ratio_level, epsilon_high=epsilon_high, dual_clip=dual_clip, clamp=log_ratio_clamp,
        log_high=log_high, log_dual=log_dual, symmetric=symmetric_clip,
    )  # fmt: skip
    return GRPOLossOutput(
        loss=loss,
        policy_loss=float(policy_loss.detach()),
        entropy=float(mean_entropy.detach()),
        kl=float(mean_kl.detach()),
        stats=stats,
    )


def ratio_stats(
    log_w: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    ratio_level: str,
    epsilon_high: float,
    dual_clip: float | None,
    clamp: float = LOG_RATIO_CLAMP,
    log_high: torch.Tensor | None = None,
    log_dual: torch.Tensor | None = None,
    symmetric: bool = False,
) -> dict[str, float]:
    """Diagnostics over the units the ratio is defined on (completions, or tokens for "token"):
    ratio mean/min/max, the fraction high-clipped (A > 0, log w > b), dual-clipped (A < 0,
    log w > d), low-clipped (symmetric only: A < 0, log w < −b), and the fraction whose log-ratio
    hit the overflow clamp. b and d default to log(1+ε) and log c."""
    import torch

    with torch.no_grad():
        adv = advantages.reshape(-1, 1)
        b = torch.full_like(adv, math.log1p(epsilon_high), dtype=torch.float32) if log_high is None else log_high.float().reshape(-1, 1)
        d = None if dual_clip is None else (torch.full_like(b, math.log(dual_clip)) if log_dual is None else log_dual.float().reshape(-1, 1))
        if ratio_level == "token":
            units = mask.bool()
            adv_b = adv.expand_as(log_w)
            b, d = b.expand_as(log_w), d.expand_as(log_w) if d is not None else None
        else:
            units = torch.ones_like(log_w, dtype=torch.bool)
            adv_b = adv
        lw = log_w[units].float()
        a = adv_b[units].float()
        if lw.numel() == 0:
            return {}
        bb = b[units]
        w = torch.exp(lw)
        high = (a > 0) & (lw > bb)
        dual = (a < 0) & (lw > d[units]) if d is not None else torch.zeros_like(high)
        low = (a < 0) & (lw < -bb) if symmetric else torch.zeros_like(high)
        return {
            "ratio/mean": float(w.mean()),
            "ratio/min": float(w.min()),
            "ratio/max": float(w.max()),
            "ratio/log_abs_mean": float(lw.abs().mean()),
            "clip/high_fraction": float(high.float().mean()),
            "clip/dual_fraction": float(dual.float().mean()),
            "clip/low_fraction": float(low.float().mean()),
            "clip/any_fraction": float((high | dual | low).float().mean()),
            "ratio/clamped_fraction": float((lw.abs() >= clamp).float().mean()),
        }


def policy_gradient_reference_loss(per_token_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, ratio_level: str) -> torch.Tensor:
    """The plain (on-policy, unclipped) policy-gradient surrogate whose gradient the clipped loss
    must reproduce when π_old = π_θ (see the module docstring). Used by tests and as documentation."""
    import torch

    m = mask.to(per_token_logps.dtype)
    adv = advantages.reshape(-1, 1).to(per_token_logps.dtype)
    logps = torch.where(mask.bool(), per_token_logps, torch.zeros_like(per_token_logps))
    if ratio_level == "trajectory":
        return -(adv * logps.sum(-1, keepdim=True)).sum() / adv.shape[0]
    if ratio_level == "sequence-mean":
        lengths = m.sum(-1, keepdim=True).clamp(min=1)
        return -(adv * logps.sum(-1, keepdim=True) / lengths).sum() / adv.shape[0]
    if ratio_level == "token":
        return -(adv * logps).sum() / m.sum().clamp(min=1)
    raise ValueError(f"unknown ratio level {ratio_level!r}")
