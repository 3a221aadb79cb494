"""Checkpoint merge methods: one typed pure function per method, over the tensors of one name.

Every function takes the input tensors of a single parameter (same shape), returns the merged
tensor and never touches files; the streaming executor in ``in2x_cli/merge/`` feeds it one
tensor name at a time. linear, fisher and obim compute in float32 (float64 for float64 inputs);
the task-arithmetic family computes in the inputs' dtype, as mergekit does (``dtype: float32``
gets float32 arithmetic for bfloat16 checkpoints). ``METHODS`` is the registry
(a plain dict): name → ``MergeMethod`` with its paper URL, its parameters and their defaults.

Notation: base θ₀, models θ₁..θ_K (in the order given), task vectors δ_i = θ_i − θ₀, per-model
weights w_i and densities d_i, global λ.

linear            θ = Σ w_i θ_i / Σ w_i                          (normalize, default on)
                  Model soups, Wortsman et al. 2022, https://arxiv.org/abs/2203.05482
task_arithmetic   θ = θ₀ + λ Σ w_i δ_i                            (normalize: ÷ Σ w_i, default off)
                  Ilharco et al. 2023, https://arxiv.org/abs/2212.04089
ties              δ̂_i = w_i · trim(δ_i, d_i)   (keep the d_i fraction of largest |δ_i|)
                  γ = sign(Σ_i δ̂_i) (elect by summed mass; 0 counts as +)
                  m_i = [sign(δ̂_i) = γ]                        (disjoint: agreeing entries only)
                  θ = θ₀ + λ · Σ m_i δ̂_i / Σ m_i w_i            (normalize, default on; 0/0 → 0)
                  Yadav et al. 2023, https://arxiv.org/abs/2306.01708
dare_ties         as ties with trim replaced by DARE's random drop:
dare_linear       δ̃_i = Bernoulli(d_i) ⊙ δ_i, rescaled (see ``dare_drop``), then the ties
                  consensus (dare_ties) or the plain weighted sum (dare_linear);
                  normalize default off. Yu et al. 2024, https://arxiv.org/abs/2311.03099
fisher            θ = Σ w_i F_i θ_i / Σ w_i F_i,  F_i = max(F̂_i, 1e-6)  (diagonal Fisher)
                  Matena & Raffel 2022, https://arxiv.org/abs/2111.09832
obim              s_i = δ_i² · ‖X_j‖² (linear layers with calibration inputs X), δ_i² otherwise
                  M_0 = ∅;  M_i = M_{i−1} ∨ (TopP(s_i, d_i) ∧ ¬M_{i−1})
                  θ = θ₀ + Σ w_i (M_i ∧ ¬M_{i−1}) ⊙ δ_i
                  Wang et al. 2025, https://arxiv.org/abs/2502.12217

The generalized task-arithmetic family (task_arithmetic, ties, dare_*) follows mergekit's
``GeneralizedTaskArithmeticMerge`` exactly, defaults included, so a mergekit YAML gives the same
tensors (checked against mergekit 0.1.5, see tests/merge/test_mergekit_parity.py):
  * weights multiply the (sparsified) deltas *before* the sign election, so a negative weight
    flips a delta's vote;
  * ties' normaliser is the sum of the weights of the models that agree with the elected sign
    at that entry (entries where nobody agrees keep the base value);
  * ``rescale`` (DARE default on) rescales the kept delta so its L1 norm equals the full delta's:
    the deterministic form of the paper's 1/(1−p), which it equals in expectation; pass
    ``rescale: inverse_density`` for the paper's exact factor 1/d;
  * a trim keeps exactly max(1, ⌊d·n⌋) entries (ties at the cut resolved as mergekit's argsort);
    density ≥ 1 keeps everything, ≤ 0 nothing; weights are rounded to the working dtype.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

FISHER_FLOOR = 1e-6
RescaleMode = Literal["l1", "inverse_density", "none"]


# --------------------------------------------------------------------------------------------
# building blocks

# Above this many entries a trim selects by threshold (kthvalue, ~1 float copy of the tensor)
# instead of mergekit's full argsort (~3 copies: float values + int64 indices). The kept set is
# the same except among entries tied at the threshold, which the threshold path breaks by position
# (mergekit: by whatever its argsort returns), which only matters for low-precision dtypes.
ARGSORT_MAX_ENTRIES = 1 << 26


def compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """float64 stays float64; everything else is computed in float32 (linear, fisher, obim)."""
    import torch

    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def top_fraction_mask(scores: torch.Tensor, density: float, *, positive_only: bool = False) -> torch.Tensor:
    """Boolean mask of the ``k = max(1, ⌊density·n⌋)`` largest scores (all for density ≥ 1, none
    for density ≤ 0), selected exactly as mergekit's ``sparsify.magnitude`` does (descending
    argsort of the float32 scores, first k), so equal scores at the cut are resolved the same way.

    ``positive_only`` additionally drops entries whose score is 0, so a zero delta never claims a
    position (OBIM).
    """
    import torch

    n = scores.numel()
    if density >= 1:
        mask = torch.ones_like(scores, dtype=torch.bool)
    elif density <= 0 or n == 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    else:
        k = max(1, int(density * n))
        flat = scores.reshape(-1)
        if flat.device.type == "cpu":
            flat = flat.float()
        mask = torch.zeros(n, dtype=torch.bool, device=scores.device)
        if n <= ARGSORT_MAX_ENTRIES:
            mask[torch.argsort(flat, descending=True)[:k]] = True
        else:
            threshold = torch.kthvalue(flat.float().cpu(), n - k + 1).values.to(flat.device)
            torch.gt(flat, threshold, out=mask)
            room = k - int(mask.sum())
            if room > 0:
                tied = torch.nonzero(flat == threshold).flatten()[:room]
                mask[tied] = True
        mask = mask.reshape(scores.shape)
    if positive_only:
        mask &= scores > 0
    return mask


def magnitude_trim(delta: torch.Tensor, density: float, rescale: RescaleMode = "none") -> torch.Tensor:
    """TIES trim: keep the ``density`` fraction of entries with the largest |δ|, zero the rest."""
    if density >= 1:
        return delta
    mask = top_fraction_mask(delta.abs(), density).to(delta.dtype)
    return _rescale(delta, delta * mask, density, rescale)


def dare_drop(
    delta: torch.Tensor, density: float, generator: torch.Generator | None, rescale: RescaleMode = "l1"
) -> torch.Tensor:
    """DARE: keep each entry independently with probability ``density`` (drop rate p = 1 − d).

    The mask is one ``torch.bernoulli`` draw over a tensor filled with ``density`` (float32 on
    CPU, bfloat16 for bfloat16 deltas and on accelerators the delta's dtype) from ``generator``:
    mergekit's ``sparsify.bernoulli`` exactly, so the same generator state gives the same mask.
    ``rescale``: ``l1`` (default, as mergekit) multiplies the kept delta by ‖δ‖₁ / ‖m⊙δ‖₁, which
    equals the paper's 1/(1−p) in expectation; ``inverse_density`` by 1/d exactly; ``none`` not.
    """
    import torch

    if density >= 1:
        return delta
    work = delta.dtype if delta.device.type != "cpu" or delta.dtype == torch.bfloat16 else torch.float32
    probs = torch.full_like(delta, density, dtype=work)
    mask = torch.bernoulli(probs, generator=generator)
    del probs
    d = delta.to(work)
    return _rescale(d, d * mask, density, rescale).to(delta.dtype)


def _rescale(delta: torch.Tensor, kept: torch.Tensor, density: float, mode: RescaleMode) -> torch.Tensor:
    if mode == "none":
        return kept
    if mode == "inverse_density":
        return kept / density if density > 0 else kept
    before = delta.abs().sum()
    after = kept.abs().sum()
    if before < 1e-7 or after < 1e-7:  # mergekit's eps: nothing to rescale
        return kept
    return kept * (before / after)


def elect_sign_mask(weighted: torch.Tensor) -> torch.Tensor:
    """TIES sign election by summed mass over the stacked weighted deltas ``[K, ...]``:
    m_i = [sign(δ̂_i) = γ] with γ = +1 where Σ_j δ̂_j ≥ 0, else −1 (a zero δ̂_i never agrees)."""
    elected = (weighted.sum(dim=0) >= 0).to(weighted.dtype) * 2 - 1
    return weighted.sign() == elected


# --------------------------------------------------------------------------------------------
# the methods


def linear(tensors: Sequence[torch.Tensor], weights: Sequence[float], *, normalize: bool = True) -> torch.Tensor:
    """Weighted average θ = Σ w_i θ_i / Σ w_i (or the plain weighted sum without ``normalize``),
    computed in float32 (float64 for float64 inputs) as mergekit's linear."""
    import torch

    dtype = compute_dtype(tensors[0])
    w = torch.tensor(list(weights), dtype=dtype)
    out = torch.zeros(tensors[0].shape, dtype=dtype, device=tensors[0].device)
    for t, c in zip(tensors, w.unbind(0), strict=True):
        out.addcmul_(t.to(dtype), c.to(t.device))
    if normalize:
        total = w.sum()
        if total == 0:
            raise ValueError("linear: the weights sum to 0, cannot normalise (set normalize: false)")
        out.div_(total.to(out.device))
    return out


def generalized_task_arithmetic(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    sparsify: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    consensus: bool = False,
    lambda_: float = 1.0,
    normalize: bool = False,
) -> torch.Tensor:
    """θ₀ + λ · combine(w_i · sparsify(δ_i)): the shared core of task_arithmetic / ties / dare.

    ``sparsify(delta, i)`` trims or drops model i's delta; ``consensus`` applies the TIES sign
    election and disjoint mean; ``normalize`` divides by the (agreeing) weights' sum. As in
    mergekit, the arithmetic runs in the inputs' dtype (weights rounded to it): cast the inputs
    to float32 (``dtype: float32``) for float32 arithmetic on bfloat16 checkpoints.
    """
    import torch

    dtype = base.dtype
    deltas = torch.empty((len(tensors), *base.shape), dtype=dtype, device=base.device)
    for i, t in enumerate(tensors):
        delta = t.to(dtype) - base
        if sparsify is not None:
            delta = sparsify(delta, i)
        deltas[i] = delta
        del delta
    w = torch.tensor(list(weights), dtype=dtype, device=base.device)
    w = w.reshape((len(tensors),) + (1,) * base.ndim)
    deltas.mul_(w)
    if consensus:
        mask = elect_sign_mask(deltas)
        deltas.mul_(mask)  # in place: the weighted deltas are not needed afterwards
        mixed = deltas.sum(dim=0)
        divisor = (w * mask).sum(dim=0)
        del mask
        divisor[divisor == 0] = 1
    else:
        mixed = deltas.sum(dim=0)
        divisor = w.sum(dim=0)
        divisor[divisor.abs() < 1e-8] = 1
    del deltas
    if normalize:
        mixed /= divisor
    if lambda_ != 1:
        mixed *= lambda_
    return (base + mixed).to(base.dtype)


def task_arithmetic(
    base: torch.Tensor, tensors: Sequence[torch.Tensor], weights: Sequence[float], *, lambda_: float = 1.0, normalize: bool = False
) -> torch.Tensor:
    """θ = θ₀ + λ Σ w_i (θ_i − θ₀)."""
    return generalized_task_arithmetic(base, tensors, weights, lambda_=lambda_, normalize=normalize)


def ties(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    weights: Sequence[float],
    densities: Sequence[float],
    *,
    lambda_: float = 1.0,
    normalize: bool = True,
    rescale: RescaleMode = "none",
) -> torch.Tensor:
    """TIES: trim each δ_i to density d_i by magnitude, elect signs by summed weighted mass,
    average the agreeing entries (disjoint mean), scale by λ."""
    return generalized_task_arithmetic(
        base,
        tensors,
        weights,
        sparsify=lambda d, i: magnitude_trim(d, densities[i], rescale),
        consensus=True,
        lambda_=lambda_,
        normalize=normalize,
    )


def dare(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    weights: Sequence[float],
    densities: Sequence[float],
    *,
    generator: torch.Generator | None,
    consensus: bool = True,
    lambda_: float = 1.0,
    normalize: bool = False,
    rescale: RescaleMode = "l1",
) -> torch.Tensor:
    """DARE: drop each delta entry with probability 1 − d_i and rescale, then merge with the
    TIES consensus (``consensus=True``, dare_ties) or the plain weighted sum (dare_linear).
    Masks are drawn from ``generator`` in model order."""
    return generalized_task_arithmetic(
        base,
        tensors,
        weights,
        sparsify=lambda d, i: dare_drop(d, densities[i], generator, rescale),
        consensus=consensus,
        lambda_=lambda_,
        normalize=normalize,
    )


def fisher(
    tensors: Sequence[torch.Tensor],
    fishers: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    floor: float = FISHER_FLOOR,
) -> torch.Tensor:
    """Fisher-weighted average θ = Σ w_i F_i θ_i / Σ w_i F_i with F_i floored at ``floor``
    (entries no calibration example touched fall back to the weighted average)."""
    import torch

    dtype = compute_dtype(tensors[0])
    num = torch.zeros(tensors[0].shape, dtype=dtype, device=tensors[0].device)
    den = torch.zeros_like(num)
    for t, f, w in zip(tensors, fishers, weights, strict=True):
        if f.shape != t.shape:
            raise ValueError(f"Fisher statistics have shape {tuple(f.shape)}, the parameter {tuple(t.shape)}")
        fw = f.to(dtype).clamp(min=floor).mul_(w)
        num += fw * t.to(dtype)
        den += fw
    return num / den


def obim_saliency(delta: torch.Tensor, input_sq_norm: torch.Tensor | None) -> torch.Tensor:
    """Optimal-Brain-Damage saliency of each delta entry.

    For a linear layer y = Wx with calibration inputs X (columns = tokens), the loss Hessian
    w.r.t. row i of W is 2XXᵀ, so zeroing δ_ij changes the loss by ≈ ½·δ_ij²·(2XXᵀ)_jj =
    δ_ij²·‖X_j‖². ``input_sq_norm`` is ‖X_j‖² = Σ_tokens x_j² (length ``in_features``); the
    constant factor does not change any ranking. Without it (no calibration data, or a tensor
    that is not a linear layer's weight) the saliency is the magnitude δ².
    """
    sal = delta.square()
    if input_sq_norm is not None:
        if delta.ndim != 2 or input_sq_norm.shape != (delta.shape[1],):
            raise ValueError(
                f"activation statistics of length {tuple(input_sq_norm.shape)} do not match a linear weight of shape {tuple(delta.shape)}"
            )
        sal.mul_(input_sq_norm.to(sal.dtype).unsqueeze(0))
    return sal


def _obim_steps(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    densities: Sequence[float],
    input_sq_norms: Sequence[torch.Tensor | None] | None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (δ_i, m_i) in model order, m_i = TopP(s_i) ∧ ¬M_{i−1} (M = positions claimed so far)."""
    import torch

    dtype = compute_dtype(base)
    base_c = base.to(dtype)
    claimed = torch.zeros(base.shape, dtype=torch.bool, device=base.device)
    for i, t in enumerate(tensors):
        delta = t.to(dtype) - base_c
        sq = input_sq_norms[i] if input_sq_norms is not None else None
        take = top_fraction_mask(obim_saliency(delta, sq), densities[i], positive_only=True)
        take &= ~claimed
        claimed |= take
        yield delta, take


def obim(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    densities: Sequence[float],
    *,
    input_sq_norms: Sequence[torch.Tensor | None] | None = None,
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Optimal Brain Iterative Merging: saliency top-p per model, then mutually exclusive
    iterative merging in the given model order (earlier models win contested positions).

    Choices the OBIM abstract leaves open, made here:
      * TopP is per tensor: the max(1, ⌊p·n⌋) most salient entries of this tensor,
        p = ``densities[i]``; entries with zero saliency (δ = 0, or an input channel that was
        never active) never claim a position, so they cannot block a later model.
      * A model's top-p set is computed over all positions; positions an earlier model claimed
        are then removed (M_i = M_{i−1} ∨ (TopP(s_i) ∧ ¬M_{i−1})), as the issue states it.
        Model order is therefore priority order: list the most important model first.
      * Weights (default 1) scale each model's kept delta; the paper's formula has none.
      * Tensors that are not the weight of a linear layer with calibration inputs (norms,
        biases, embeddings, or any model without calibration data) use the magnitude δ².
    """
    dtype = compute_dtype(base)
    out = base.to(dtype).clone()
    for i, (delta, take) in enumerate(_obim_steps(base, tensors, densities, input_sq_norms)):
        delta.mul_(take)
        if weights is not None and weights[i] != 1:
            delta.mul_(weights[i])
        out += delta
    return out


def obim_masks(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    densities: Sequence[float],
    input_sq_norms: Sequence[torch.Tensor | None] | None = None,
) -> list[torch.Tensor]:
    """The per-model masks m_i = M_i ∧ ¬M_{i−1} that OBIM applies (for inspection and tests)."""
    return [take for _, take in _obim_steps(base, tensors, densities, input_sq_norms)]


# --------------------------------------------------------------------------------------------
# the registry


@dataclass
class TensorJob:
    """Everything a method sees for one tensor name (built by the streaming executor)."""

    name: str
    tensors: list[torch.Tensor]  # one per non-base model, in model order
    base: torch.Tensor | None
    model_params: list[dict[str, Any]]  # resolved per-model parameters (weight, density, ...)
    params: dict[str, Any]  # resolved global parameters (lambda, normalize, ...)
    stats: list[torch.Tensor | None] = field(default_factory=list)  # Fisher / activation stats per model
    generator: torch.Generator | None = None


@dataclass(frozen=True)
class MergeMethod:
    """A registry entry: how to call the function and what it accepts."""

    apply: Callable[[TensorJob], torch.Tensor]
    paper: str
    summary: str
    base: Literal["required", "none"] = "required"
    model_params: Mapping[str, Any] = field(default_factory=dict)  # name → default
    params: Mapping[str, Any] = field(default_factory=dict)  # name → default
    stats: Literal["fisher", "activations"] | None = None
    random: bool = False
    min_models: int = 1


def _weights(job: TensorJob) -> list[float]:
    return [float(p["weight"]) for p in job.model_params]


def _densities(job: TensorJob) -> list[float]:
    return [float(p["density"]) for p in job.model_params]


def rescale_mode(value: Any) -> RescaleMode:
    """YAML ``rescale``: true / l1 → L1 matching (mergekit), inverse_density, false / none."""
    if value is True or value == "l1":
        return "l1"
    if value is False or value in ("none", None):
        return "none"
    if value in ("inverse_density", "paper"):
        return "inverse_density"
    raise ValueError(f"rescale must be true, false, 'l1' or 'inverse_density', got {value!r}")


def _gta_params(normalize: bool, rescale: bool) -> dict[str, Any]:
    # int8_mask only changes the dtype mergekit builds its sign mask in; accepted for YAML
    # compatibility, results are identical.
    return {"lambda": 1.0, "normalize": normalize, "rescale": rescale, "int8_mask": False}


def _apply_ties(job: TensorJob) -> torch.Tensor:
    assert job.base is not None
    return ties(
        job.base, job.tensors, _weights(job), _densities(job),
        lambda_=float(job.params["lambda"]), normalize=bool(job.params["normalize"]), rescale=rescale_mode(job.params["rescale"]),
    )


def _apply_dare(consensus: bool) -> Callable[[TensorJob], torch.Tensor]:
    def apply(job: TensorJob) -> torch.Tensor:
        assert job.base is not None
        return dare(
            job.base, job.tensors, _weights(job), _densities(job), generator=job.generator, consensus=consensus,
            lambda_=float(job.params["lambda"]), normalize=bool(job.params["normalize"]), rescale=rescale_mode(job.params["rescale"]),
        )

    return apply


def _apply_task_arithmetic(job: TensorJob) -> torch.Tensor:
    assert job.base is not None
    # ``rescale`` is accepted (mergekit lists it) but task arithmetic sparsifies nothing.
    return task_arithmetic(job.base, job.tensors, _weights(job), lambda_=float(job.params["lambda"]), normalize=bool(job.params["normalize"]))


def _apply_fisher(job: TensorJob) -> torch.Tensor:
    fishers = []
    for i, f in enumerate(job.stats):
        if f is None:
            raise ValueError(f"no Fisher statistics for model {i + 1}")
        fishers.append(f)
    return fisher(job.tensors, fishers, _weights(job), floor=float(job.params["floor"]))


def _apply_obim(job: TensorJob) -> torch.Tensor:
    assert job.base is not None
    return obim(job.base, job.tensors, _densities(job), input_sq_norms=job.stats or None, weights=_weights(job))


_PAPERS = {
    "linear": "https://arxiv.org/abs/2203.05482",
    "task_arithmetic": "https://arxiv.org/abs/2212.04089",
    "ties": "https://arxiv.org/abs/2306.01708",
    "dare": "https://arxiv.org/abs/2311.03099",
    "fisher": "https://arxiv.org/abs/2111.09832",
    "obim": "https://arxiv.org/abs/2502.12217",
}

# Default OBIM keep fraction: the OBIM abstract gives none; 0.2 is the top-20% TIES recommends.
OBIM_DEFAULT_DENSITY = 0.2

METHODS: dict[str, MergeMethod] = {
    "linear": MergeMethod(
        apply=lambda job: linear(job.tensors, _weights(job), normalize=bool(job.params["normalize"])),
        paper=_PAPERS["linear"],
        summary="weighted average Σ w_i θ_i / Σ w_i; no base model",
        base="none",
        model_params={"weight": 1.0},
        params={"normalize": True},
    ),
    "task_arithmetic": MergeMethod(
        apply=_apply_task_arithmetic,
        paper=_PAPERS["task_arithmetic"],
        summary="θ₀ + λ Σ w_i (θ_i − θ₀)",
        model_params={"weight": 1.0},
        params=_gta_params(normalize=False, rescale=False),
    ),
    "ties": MergeMethod(
        apply=_apply_ties,
        paper=_PAPERS["ties"],
        summary="trim to density by magnitude, elect sign by summed mass, disjoint mean, λ",
        model_params={"weight": 1.0, "density": 1.0},
        params=_gta_params(normalize=True, rescale=False),
    ),
    "dare_ties": MergeMethod(
        apply=_apply_dare(consensus=True),
        paper=_PAPERS["dare"],
        summary="random drop with rescale, then the TIES sign consensus",
        model_params={"weight": 1.0, "density": 1.0},
        params=_gta_params(normalize=False, rescale=True),
        random=True,
    ),
    "dare_linear": MergeMethod(
        apply=_apply_dare(consensus=False),
        paper=_PAPERS["dare"],
        summary="random drop with rescale, then θ₀ + λ Σ w_i δ̃_i",
        model_params={"weight": 1.0, "density": 1.0},
        params=_gta_params(normalize=False, rescale=True),
        random=True,
    ),
    "fisher": MergeMethod(
        apply=_apply_fisher,
        paper=_PAPERS["fisher"],
        summary="Σ w_i F_i θ_i / Σ w_i F_i with diagonal Fisher F_i from calibration data; no base",
        base="none",
        model_params={"weight": 1.0},
        params={"floor": FISHER_FLOOR},
        stats="fisher",
    ),
    "obim": MergeMethod(
        apply=_apply_obim,
        paper=_PAPERS["obim"],
        summary="OBD saliency top-p per model, mutually exclusive iterative merging in model order",
        model_params={"weight": 1.0, "density": OBIM_DEFAULT_DENSITY},
        params={},
        stats="activations",
    ),
}
# The short name: DARE followed by the TIES consensus (mergekit's dare_ties).
METHODS["dare"] = METHODS["dare_ties"]


def tensor_seed(seed: int, name: str) -> int:
    """A per-tensor RNG seed: masks do not depend on the order tensors are processed in."""
    digest = hashlib.sha256(f"{seed}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
