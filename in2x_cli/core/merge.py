"""Checkpoint merge methods: one typed pure function per method, over the tensors of one name.

Every function takes the input tensors of a single parameter (same shape), returns the merged
tensor and never touches files; the streaming executor in ``in2x_cli/merge/`` feeds it one
tensor name at a time, and the function itself works through the tensor in row chunks
(``core/sparsify.py``: exact streaming top-k, chunked trim/drop), so its extra memory is a few
chunks rather than many copies of the tensor. linear, fisher and obim compute in float32
(float64 for float64 inputs); the task-arithmetic family computes in the inputs' dtype, as
mergekit does (``dtype: float32`` gets float32 arithmetic for bfloat16 checkpoints). ``METHODS``
is the registry (a plain dict): name → ``MergeMethod`` with its paper URL, its parameters and
their defaults.

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
tensors (mergekit 0.1.5):
  * weights multiply the (sparsified) deltas *before* the sign election, so a negative weight
    flips a delta's vote;
  * ties' normaliser is the sum of the weights of the models that agree with the elected sign
    at that entry (entries where nobody agrees keep the base value);
  * ``rescale`` (DARE default on) rescales the kept delta so its L1 norm equals the full delta's:
    the deterministic form of the paper's 1/(1−p), which it equals in expectation; pass
    ``rescale: inverse_density`` for the paper's exact factor 1/d;
  * a trim keeps exactly max(1, ⌊d·n⌋) entries; density ≥ 1 keeps everything, ≤ 0 nothing;
    weights are rounded to the working dtype;
  * where entries tied in magnitude straddle the cut (bfloat16 deltas), which of them are kept is
    arbitrary; mergekit's choice (its argsort) is reproduced for tensors up to 4M entries, larger
    ones keep the first by position (core/sparsify.py). The L1 rescale of a tensor larger than
    one chunk (1M entries) sums in float64, so it may differ from mergekit's in the last bit.
Tested bit-for-bit against mergekit's outputs in tests/merge/test_mergekit_parity.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from in2x_cli.core.sparsify import Bernoulli, Chunks, Magnitude, RescaleMode, Sparsifier, TopK, chunk_slices

if TYPE_CHECKING:
    import torch

FISHER_FLOOR = 1e-6


# --------------------------------------------------------------------------------------------
# building blocks


def compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """float64 stays float64; everything else is computed in float32 (linear, fisher, obim)."""
    import torch

    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1)


def _delta_chunks(t: torch.Tensor, base: torch.Tensor, dtype: torch.dtype, parts: list[slice]) -> Chunks:
    """δ = θ − θ₀ chunk by chunk in ``dtype`` (recomputed on every pass rather than stored)."""
    ft, fb = _flat(t), _flat(base)
    return lambda: (ft[p].to(dtype) - fb[p].to(dtype) for p in parts)


def magnitude_trim(delta: torch.Tensor, density: float, rescale: RescaleMode = "none") -> torch.Tensor:
    """TIES trim of a whole delta: keep the ``density`` fraction with the largest |δ|."""
    import torch

    parts = chunk_slices(tuple(delta.shape))
    fd = _flat(delta)
    sp = Magnitude(lambda: (fd[p] for p in parts), fd.numel(), density, rescale)
    return torch.cat([sp.apply(i, fd[p]) for i, p in enumerate(parts)]).reshape(delta.shape)


def dare_drop(
    delta: torch.Tensor, density: float, generator: torch.Generator | None, rescale: RescaleMode = "l1"
) -> torch.Tensor:
    """DARE drop of a whole delta: keep each entry with probability ``density`` (drop rate
    p = 1 − d) and rescale (``l1``: ‖δ‖₁/‖m⊙δ‖₁ as mergekit, which is 1/(1−p) in expectation;
    ``inverse_density``: the paper's 1/(1−p) exactly; ``none``)."""
    import torch

    parts = chunk_slices(tuple(delta.shape))
    fd = _flat(delta)
    sp = Bernoulli(lambda: (fd[p] for p in parts), fd.numel(), density, generator, rescale)
    return torch.cat([sp.apply(i, fd[p]) for i, p in enumerate(parts)]).reshape(delta.shape)


def elect_sign_mask(weighted: torch.Tensor) -> torch.Tensor:
    """TIES sign election by summed mass over stacked weighted deltas ``[K, ...]``:
    m_i = [sign(δ̂_i) = γ] with γ = +1 where Σ_j δ̂_j ≥ 0, else −1 (a zero δ̂_i never agrees)."""
    elected = (weighted.sum(dim=0) >= 0).to(weighted.dtype) * 2 - 1
    return weighted.sign() == elected


# --------------------------------------------------------------------------------------------
# the methods (each streams over row chunks of the tensor: see core/sparsify.py)


def linear(
    tensors: Sequence[torch.Tensor], weights: Sequence[float], *, normalize: bool = True, out_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Weighted average θ = Σ w_i θ_i / Σ w_i (or the plain weighted sum without ``normalize``),
    computed in float32 (float64 for float64 inputs) as mergekit's linear."""
    import torch

    dtype = compute_dtype(tensors[0])
    w = torch.tensor(list(weights), dtype=dtype)
    total = w.sum()
    if normalize and total == 0:
        raise ValueError("linear: the weights sum to 0, cannot normalise (set normalize: false)")
    first = tensors[0]
    out = torch.empty(first.shape, dtype=out_dtype or dtype, device=first.device)
    flats, fo = [_flat(t) for t in tensors], _flat(out)
    for p in chunk_slices(tuple(first.shape)):
        acc = torch.zeros(p.stop - p.start, dtype=dtype, device=first.device)
        for ft, c in zip(flats, w.unbind(0), strict=True):
            acc.addcmul_(ft[p].to(dtype), c.to(first.device))
        if normalize:
            acc.div_(total.to(first.device))
        fo[p] = acc
    return out


def generalized_task_arithmetic(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    sparsifiers: Sequence[Callable[[Chunks, int], Sparsifier]] | None = None,
    consensus: bool = False,
    lambda_: float = 1.0,
    normalize: bool = False,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """θ₀ + λ · combine(w_i · sparsify_i(δ_i)): the shared core of task_arithmetic / ties / dare,
    mergekit's ``GeneralizedTaskArithmeticMerge.merge_group`` operation for operation.

    ``sparsifiers[i](delta_chunks, n)`` builds model i's trim/drop; ``consensus`` applies the TIES
    sign election and disjoint mean; ``normalize`` divides by the (agreeing) weights' sum. As in
    mergekit the arithmetic runs in the inputs' dtype (weights rounded to it): cast the inputs to
    float32 (``dtype: float32``) for float32 arithmetic on bfloat16 checkpoints.
    """
    import torch

    dtype = base.dtype
    n = base.numel()
    parts = chunk_slices(tuple(base.shape))
    chunks = [_delta_chunks(t, base, dtype, parts) for t in tensors]
    sps = [make(ch, n) for make, ch in zip(sparsifiers, chunks, strict=True)] if sparsifiers else None
    w = torch.tensor(list(weights), dtype=dtype, device=base.device).reshape(len(tensors), 1)
    out = torch.empty(base.shape, dtype=out_dtype or dtype, device=base.device)
    fb, fo, flats = _flat(base), _flat(out), [_flat(t) for t in tensors]
    for ci, p in enumerate(parts):
        b = fb[p]
        deltas = torch.empty((len(tensors), p.stop - p.start), dtype=dtype, device=base.device)
        for i, ft in enumerate(flats):
            d = ft[p].to(dtype) - b
            deltas[i] = sps[i].apply(ci, d) if sps else d
        deltas.mul_(w)
        if consensus:
            mask = elect_sign_mask(deltas)
            deltas.mul_(mask)  # in place: the weighted deltas are not needed afterwards
            mixed = deltas.sum(dim=0)
            divisor = (w * mask).sum(dim=0)
            divisor[divisor == 0] = 1
        else:
            mixed = deltas.sum(dim=0)
            divisor = w.sum(dim=0)
            divisor[divisor.abs() < 1e-8] = 1
        if normalize:
            mixed /= divisor
        if lambda_ != 1:
            mixed *= lambda_
        fo[p] = (b + mixed).to(dtype)
    return out


def task_arithmetic(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    lambda_: float = 1.0,
    normalize: bool = False,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """θ = θ₀ + λ Σ w_i (θ_i − θ₀)."""
    return generalized_task_arithmetic(base, tensors, weights, lambda_=lambda_, normalize=normalize, out_dtype=out_dtype)


def ties(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    weights: Sequence[float],
    densities: Sequence[float],
    *,
    lambda_: float = 1.0,
    normalize: bool = True,
    rescale: RescaleMode = "none",
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """TIES: trim each δ_i to density d_i by magnitude, elect signs by summed weighted mass,
    average the agreeing entries (disjoint mean), scale by λ."""
    makers = [
        (lambda ch, n, d=d: Magnitude(ch, n, d, rescale)) for d in densities
    ]
    return generalized_task_arithmetic(
        base, tensors, weights, sparsifiers=makers, consensus=True, lambda_=lambda_, normalize=normalize, out_dtype=out_dtype
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
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """DARE: drop each delta entry with probability 1 − d_i and rescale, then merge with the
    TIES consensus (``consensus=True``, dare_ties) or the plain weighted sum (dare_linear).
    Masks are drawn from ``generator`` in model order (one whole-tensor stream per model)."""
    makers = [
        (lambda ch, n, d=d: Bernoulli(ch, n, d, generator, rescale)) for d in densities
    ]
    return generalized_task_arithmetic(
        base, tensors, weights, sparsifiers=makers, consensus=consensus, lambda_=lambda_, normalize=normalize, out_dtype=out_dtype
    )


def fisher(
    tensors: Sequence[torch.Tensor],
    fishers: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    floor: float = FISHER_FLOOR,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Fisher-weighted average θ = Σ w_i F_i θ_i / Σ w_i F_i with F_i floored at ``floor``
    (entries no calibration example touched fall back to the weighted average)."""
    import torch

    first = tensors[0]
    for f in fishers:
        if f.shape != first.shape:
            raise ValueError(f"Fisher statistics have shape {tuple(f.shape)}, the parameter {tuple(first.shape)}")
    dtype = compute_dtype(first)
    out = torch.empty(first.shape, dtype=out_dtype or dtype, device=first.device)
    flats, ffs, fo = [_flat(t) for t in tensors], [_flat(f) for f in fishers], _flat(out)
    for p in chunk_slices(tuple(first.shape)):
        num = torch.zeros(p.stop - p.start, dtype=dtype, device=first.device)
        den = torch.zeros_like(num)
        for ft, ff, w in zip(flats, ffs, weights, strict=True):
            fw = ff[p].to(dtype).clamp(min=floor).mul_(w)
            num.addcmul_(fw, ft[p].to(dtype))
            den += fw
        fo[p] = num / den
    return out


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
        if input_sq_norm.ndim != 1 or delta.shape[-1] != input_sq_norm.shape[0] or sal.numel() % input_sq_norm.shape[0]:
            raise ValueError(
                f"activation statistics of length {tuple(input_sq_norm.shape)} do not match a linear weight of shape {tuple(delta.shape)}"
            )
        sal = sal.reshape(-1, input_sq_norm.shape[0]).mul_(input_sq_norm.to(sal.dtype)).reshape(delta.shape)
    return sal


def _obim_chunks(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    densities: Sequence[float],
    input_sq_norms: Sequence[torch.Tensor | None] | None,
) -> Iterator[tuple[slice, list[torch.Tensor], list[torch.Tensor]]]:
    """Per row chunk: (slice, δ_i chunks, m_i chunks) with m_i = TopP(s_i) ∧ ¬M_{i−1}."""
    import torch

    dtype = compute_dtype(base)
    n = base.numel()
    parts = chunk_slices(tuple(base.shape))
    sqs = list(input_sq_norms) if input_sq_norms is not None else [None] * len(tensors)
    if len(tensors) == 0:
        return
    if any(sq is not None for sq in sqs) and base.ndim != 2:
        raise ValueError(f"activation statistics given for a tensor of shape {tuple(base.shape)}, not a linear weight")

    def saliency_chunks(t: torch.Tensor, sq: torch.Tensor | None) -> Chunks:
        deltas = _delta_chunks(t, base, dtype, parts)
        return lambda: (obim_saliency(d.reshape(-1, base.shape[-1]) if sq is not None else d, sq).reshape(-1) for d in deltas())

    tops = [TopK(saliency_chunks(t, sq), n, d) for t, sq, d in zip(tensors, sqs, densities, strict=True)]
    fb, flats = _flat(base), [_flat(t) for t in tensors]
    for ci, p in enumerate(parts):
        b = fb[p].to(dtype)
        claimed = torch.zeros(p.stop - p.start, dtype=torch.bool, device=base.device)
        deltas, masks = [], []
        for ft, sq, top in zip(flats, sqs, tops, strict=True):
            d = ft[p].to(dtype) - b
            s = obim_saliency(d.reshape(-1, base.shape[-1]) if sq is not None else d, sq).reshape(-1)
            take = top.mask(ci, s) & (s > 0) & ~claimed
            claimed |= take
            deltas.append(d)
            masks.append(take)
        yield p, deltas, masks


def obim(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    densities: Sequence[float],
    *,
    input_sq_norms: Sequence[torch.Tensor | None] | None = None,
    weights: Sequence[float] | None = None,
    out_dtype: torch.dtype | None = None,
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
    import torch

    dtype = compute_dtype(base)
    out = torch.empty(base.shape, dtype=out_dtype or dtype, device=base.device)
    fb, fo = _flat(base), _flat(out)
    for p, deltas, masks in _obim_chunks(base, tensors, densities, input_sq_norms):
        acc = fb[p].to(dtype).clone()
        for i, (d, m) in enumerate(zip(deltas, masks, strict=True)):
            d.mul_(m)
            if weights is not None and weights[i] != 1:
                d.mul_(weights[i])
            acc += d
        fo[p] = acc
    return out


def obim_masks(
    base: torch.Tensor,
    tensors: Sequence[torch.Tensor],
    densities: Sequence[float],
    input_sq_norms: Sequence[torch.Tensor | None] | None = None,
) -> list[torch.Tensor]:
    """The per-model masks m_i = M_i ∧ ¬M_{i−1} that OBIM applies (for inspection and tests)."""
    import torch

    parts: list[list[torch.Tensor]] = [[] for _ in tensors]
    for _, _, masks in _obim_chunks(base, tensors, densities, input_sq_norms):
        for i, m in enumerate(masks):
            parts[i].append(m)
    return [torch.cat(p).reshape(base.shape) for p in parts]


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
    out_dtype: torch.dtype | None = None  # dtype of the returned tensor (default: the method's)


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
        out_dtype=job.out_dtype,
    )


def _apply_dare(consensus: bool) -> Callable[[TensorJob], torch.Tensor]:
    def apply(job: TensorJob) -> torch.Tensor:
        assert job.base is not None
        return dare(
            job.base, job.tensors, _weights(job), _densities(job), generator=job.generator, consensus=consensus,
            lambda_=float(job.params["lambda"]), normalize=bool(job.params["normalize"]), rescale=rescale_mode(job.params["rescale"]),
            out_dtype=job.out_dtype,
        )

    return apply


def _apply_task_arithmetic(job: TensorJob) -> torch.Tensor:
    assert job.base is not None
    # ``rescale`` is accepted (mergekit lists it) but task arithmetic sparsifies nothing.
    return task_arithmetic(
        job.base, job.tensors, _weights(job), lambda_=float(job.params["lambda"]), normalize=bool(job.params["normalize"]),
        out_dtype=job.out_dtype,
    )


def _apply_fisher(job: TensorJob) -> torch.Tensor:
    fishers = []
    for i, f in enumerate(job.stats):
        if f is None:
            raise ValueError(f"no Fisher statistics for model {i + 1}")
        fishers.append(f)
    return fisher(job.tensors, fishers, _weights(job), floor=float(job.params["floor"]), out_dtype=job.out_dtype)


def _apply_obim(job: TensorJob) -> torch.Tensor:
    assert job.base is not None
    return obim(
        job.base, job.tensors, _densities(job), input_sq_norms=job.stats or None, weights=_weights(job), out_dtype=job.out_dtype
    )


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
        apply=lambda job: linear(job.tensors, _weights(job), normalize=bool(job.params["normalize"]), out_dtype=job.out_dtype),
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
