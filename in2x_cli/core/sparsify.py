"""Chunked building blocks for merging one tensor in bounded memory: row chunks, exact top-k
selection without sorting the whole tensor, and the TIES / DARE sparsifiers with rescaling.

Why chunks: a merge method touches K input tensors of the same shape. Done on whole tensors (as
mergekit does) the temporaries of one large tensor — stacked deltas, float32 copies, sign masks,
an argsort's int64 indices — cost about 20× the tensor (a 1 GB embedding would need 20 GB).
Every step except choosing the top-k entries is elementwise, so it runs on row chunks of
``CHUNK_ENTRIES`` entries with bit-identical results; the top-k threshold is found exactly by a
two-pass radix select over the chunks (16-bit histograms of the float32 bit patterns), so no
full-size copy is made. Extra memory: a few chunks, plus one bool mask per model for DARE.

Selecting the top k of n scores: the threshold T (the k-th largest score) gives the kept set
directly — every score > T, and the scores equal to T when all of them fit. Only when entries
tied at T straddle the cut is the choice arbitrary; mergekit makes it with a descending argsort
of the float32 scores, which is repeated here for tensors up to ``ARGSORT_MAX_ENTRIES`` so the
outputs stay identical; larger tensors keep the first tied entries by position. Ties at the cut
need low-precision (bfloat16) deltas in practice.

Chunk producers (``Chunks``) are zero-argument callables yielding the same chunks in the same
order on every call; they recompute cheap elementwise values (δ = θ − θ₀) instead of storing them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

RescaleMode = Literal["l1", "inverse_density", "none"]
Chunks = Callable[[], Iterator["torch.Tensor"]]

CHUNK_ENTRIES = 1 << 20  # entries per chunk of elementwise work (4 MB of float32)
ARGSORT_MAX_ENTRIES = 1 << 22  # up to here, ties at the cut are resolved by argsort as mergekit does
_EPS = 1e-7  # mergekit's: a rescale with a norm below this is skipped


def chunk_slices(shape: tuple[int, ...], chunk_entries: int | None = None) -> list[slice]:
    """Slices of the flattened tensor, each a whole number of rows (of the last dimension) and
    about ``chunk_entries`` long, so per-column factors (input norms) line up in every chunk."""
    n = 1
    for d in shape:
        n *= d
    cols = shape[-1] if len(shape) >= 1 and shape[-1] > 0 else 1
    step = max(1, (chunk_entries or CHUNK_ENTRIES) // cols) * cols
    return [slice(i, min(i + step, n)) for i in range(0, n, step)] or [slice(0, 0)]


def _bits(s: torch.Tensor) -> torch.Tensor:
    """Non-negative float32 scores as int32 bit patterns, which sort like the values."""
    import torch

    return s.float().contiguous().view(torch.int32)


class TopK:
    """Which of n non-negative scores are among the ``max(1, ⌊density·n⌋)`` largest.

    Two passes over ``scores()`` find the threshold; ``mask(i, s)`` then gives the keep mask of
    chunk ``i`` (scores ``s``), in any order, any number of times.
    """

    def __init__(self, scores: Chunks, n: int, density: float) -> None:
        import torch

        self.all = density >= 1
        self.none = density <= 0 or n == 0
        self._explicit: torch.Tensor | None = None
        self._tie_quota: list[int] = []
        if self.all or self.none:
            return
        k = max(1, int(density * n))
        # pass 1: histogram of the high 16 bits; the bucket holding the k-th largest
        hist = torch.zeros(1 << 16, dtype=torch.int64)
        sizes = []
        for s in scores():
            sizes.append(s.numel())
            hist += torch.bincount((_bits(s) >> 16).flatten().cpu(), minlength=1 << 16)
        high, greater = _kth_bucket(hist, k)
        # pass 2: within that bucket, histogram of the low 16 bits
        hist = torch.zeros(1 << 16, dtype=torch.int64)
        for s in scores():
            b = _bits(s).flatten()
            hist += torch.bincount((b[(b >> 16) == high] & 0xFFFF).cpu(), minlength=1 << 16)
        low, greater_low = _kth_bucket(hist, k - greater)
        self.threshold = (high << 16) | low
        room, tied = k - greater - greater_low, int(hist[low])
        self.take_all_tied = room == tied
        if self.take_all_tied:
            return
        if n <= ARGSORT_MAX_ENTRIES:  # mergekit's tie-breaking: the first k of a descending argsort
            full = torch.cat([s.float().flatten() for s in scores()])
            self._explicit = torch.zeros(n, dtype=torch.bool, device=full.device)
            self._explicit[torch.argsort(full, descending=True)[:k]] = True
            self._starts = [sum(sizes[:i]) for i in range(len(sizes))]
            return
        for s in scores():  # pass 3: the first `room` tied entries by position
            here = min(room, int((_bits(s) == self.threshold).sum()))
            self._tie_quota.append(here)
            room -= here

    def mask(self, i: int, s: torch.Tensor) -> torch.Tensor:
        import torch

        if self.all:
            return torch.ones(s.shape, dtype=torch.bool, device=s.device)
        if self.none:
            return torch.zeros(s.shape, dtype=torch.bool, device=s.device)
        if self._explicit is not None:
            return self._explicit[self._starts[i] : self._starts[i] + s.numel()].reshape(s.shape)
        b = _bits(s)
        keep = b > self.threshold
        if self.take_all_tied:
            keep |= b == self.threshold
        elif self._tie_quota[i]:
            flat_keep = keep.flatten()
            flat_keep[torch.nonzero((b == self.threshold).flatten()).flatten()[: self._tie_quota[i]]] = True
            keep = flat_keep.reshape(s.shape)
        return keep


def _kth_bucket(hist: torch.Tensor, k: int) -> tuple[int, int]:
    """The bucket holding the k-th largest entry, and how many entries lie in higher buckets."""
    import torch

    from_top = torch.flip(hist, [0]).cumsum(0)
    j = int(torch.nonzero(from_top >= k)[0])
    bucket = hist.numel() - 1 - j
    return bucket, int(from_top[j]) - int(hist[bucket])


def top_fraction_mask(scores: torch.Tensor, density: float) -> torch.Tensor:
    """Whole-tensor form: boolean mask of the top ``density`` fraction of ``scores``."""
    import torch

    flat = scores.reshape(-1)
    parts = chunk_slices(tuple(scores.shape))
    top = TopK(lambda: (flat[p] for p in parts), flat.numel(), density)
    return torch.cat([top.mask(i, flat[p]) for i, p in enumerate(parts)]).reshape(scores.shape)


class Sparsifier:
    """Keeps part of one model's delta: ``apply(i, delta_chunk)`` for chunk ``i``."""

    def apply(self, i: int, delta: torch.Tensor) -> torch.Tensor:
        return delta


class Magnitude(Sparsifier):
    """TIES trim (mergekit ``sparsify.magnitude``): keep the entries with the largest |δ|,
    optionally rescaled (``rescale``: see ``rescale_factor``)."""

    def __init__(self, deltas: Chunks, n: int, density: float, rescale: RescaleMode = "none") -> None:
        self.noop = density >= 1
        if self.noop:
            return
        self.top = TopK(lambda: (d.abs() for d in deltas()), n, density)
        self.factor = None
        self.factor = rescale_factor(deltas, lambda: (self.apply(i, d) for i, d in enumerate(deltas())), rescale, density)

    def apply(self, i: int, delta: torch.Tensor) -> torch.Tensor:
        if self.noop:
            return delta
        kept = delta * self.top.mask(i, delta.abs()).to(delta.dtype)
        return kept if self.factor is None else kept * self.factor


class Bernoulli(Sparsifier):
    """DARE drop (mergekit ``sparsify.bernoulli``): keep each entry with probability ``density``.

    Masks come from ``torch.bernoulli`` over ``density``-filled tensors in the working dtype
    (float32 on CPU unless bfloat16) drawn from ``generator`` chunk by chunk; on CPU that is the
    same random stream as one whole-tensor draw, so a generator in mergekit's state gives
    mergekit's mask. One bool per entry is kept until the tensor is done.
    """

    def __init__(
        self, deltas: Chunks, n: int, density: float, generator: torch.Generator | None, rescale: RescaleMode = "l1"
    ) -> None:
        import torch

        self.noop = density >= 1
        if self.noop:
            return
        self.masks = [
            torch.bernoulli(torch.full(d.shape, density, dtype=work_dtype(d), device=d.device), generator=generator).bool()
            for d in deltas()
        ]
        self.factor = None
        work = lambda: (d.to(work_dtype(d)) for d in deltas())  # noqa: E731
        self.factor = rescale_factor(work, lambda: (self._kept(i, d) for i, d in enumerate(work())), rescale, density)

    def _kept(self, i: int, w: torch.Tensor) -> torch.Tensor:
        kept = w * self.masks[i].to(w.dtype)
        return kept if self.factor is None else kept * self.factor

    def apply(self, i: int, delta: torch.Tensor) -> torch.Tensor:
        if self.noop:
            return delta
        return self._kept(i, delta.to(work_dtype(delta))).to(delta.dtype)


def work_dtype(d: torch.Tensor) -> torch.dtype:
    """mergekit's bernoulli works in float32 on CPU (no half-precision kernel) except bfloat16."""
    import torch

    return d.dtype if d.device.type != "cpu" or d.dtype == torch.bfloat16 else torch.float32


def rescale_factor(full: Chunks, kept: Chunks, mode: RescaleMode, density: float) -> torch.Tensor | float | None:
    """Factor for the kept delta: ‖δ‖₁ / ‖m⊙δ‖₁ (``l1``, mergekit's ``rescale``; None when
    either norm is below 1e-7), 1/d (``inverse_density``, the DARE paper's 1/(1−p)), or None.
    The L1 norms are ``x.abs().sum()`` in the working dtype, exactly as mergekit computes them,
    for a single-chunk tensor; larger tensors sum chunks in float64 and round once."""
    if mode == "none":
        return None
    if mode == "inverse_density":
        return 1.0 / density if density > 0 else None
    before, after = (_l1_norm(chunks()) for chunks in (full, kept))
    if before < _EPS or after < _EPS:
        return None
    return before / after


def _l1_norm(chunks: Iterator[torch.Tensor]) -> torch.Tensor:
    """‖x‖₁ over the chunks in one pass: ``x.abs().sum()`` for a single chunk, else a float64
    sum rounded once to the chunks' dtype."""
    import torch

    first = next(chunks)
    second = next(chunks, None)
    if second is None:
        return first.abs().sum()
    total = torch.zeros((), dtype=torch.float64)
    for c in itertools.chain((first, second), chunks):
        total += c.abs().sum(dtype=torch.float64).cpu()
    return total.to(dtype=first.dtype, device=first.device)
