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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

RatioLevel = Literal["trajectory", "sequence-mean", "token"]
RATIO_LEVELS: tuple[str, ...] = ("trajectory", "sequence-mean", "token")
AdvantageKind = Literal["length-corrected", "group"]
ADVANTAGE_KINDS: tuple[str, ...] = ("length-corrected", "group")

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

    g = _grouped(values.float(), group_size)
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
    per_token = rewards.float() / lengths.float().clamp(min=1.0)
    return _normalise_in_groups(per_token, group_size, delta)


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


def clipped_objective(ratio: torch.Tensor, advantages: torch.Tensor, *, epsilon_high: float, dual_clip: float | None) -> torch.Tensor:
    """J(w, A) = min(w·A, min(w, 1+ε)·A), then max(J, c·A) where A < 0 (``dual_clip`` = c > 1).

    Shapes broadcast (``advantages`` is (B, 1)). ``dual_clip=None`` disables the dual clip.
    """
    import torch

    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, max=1.0 + epsilon_high) * advantages
    objective = torch.min(unclipped, clipped)
    if dual_clip is not None:
        objective = torch.where(advantages < 0, torch.max(objective, dual_clip * advantages), objective)
    return objective


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
    objective = clipped_objective(ratio, adv, epsilon_high=epsilon_high, dual_clip=dual_clip)
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

    stats = ratio_stats(log_w, adv, mask, ratio_level=ratio_level, epsilon_high=epsilon_high, dual_clip=dual_clip, clamp=log_ratio_clamp)
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
) -> dict[str, float]:
    """Diagnostics over the units the ratio is defined on (completions, or tokens for "token"):
    ratio mean/min/max, the fraction high-clipped (A > 0, w > 1+ε), dual-clipped (A < 0, w > c),
    and the fraction whose log-ratio hit the overflow clamp."""
    import torch

    with torch.no_grad():
        adv = advantages.reshape(-1, 1)
        if ratio_level == "token":
            units = mask.bool()
            adv_b = adv.expand_as(log_w)
        else:
            units = torch.ones_like(log_w, dtype=torch.bool)
            adv_b = adv
        lw = log_w[units].float()
        a = adv_b[units].float()
        if lw.numel() == 0:
            return {}
        w = torch.exp(lw)
        high = (a > 0) & (w > 1.0 + epsilon_high)
        dual = (a < 0) & (w > dual_clip) if dual_clip is not None else torch.zeros_like(high)
        return {
            "ratio/mean": float(w.mean()),
            "ratio/min": float(w.min()),
            "ratio/max": float(w.max()),
            "ratio/log_abs_mean": float(lw.abs().mean()),
            "clip/high_fraction": float(high.float().mean()),
            "clip/dual_fraction": float(dual.float().mean()),
            "clip/any_fraction": float((high | dual).float().mean()),
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
