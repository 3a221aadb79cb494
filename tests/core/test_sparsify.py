"""Chunked selection and sparsification: same results as whole-tensor computation, any chunking."""

from __future__ import annotations

import pytest
import torch

from in2x_cli.core import merge as M
from in2x_cli.core import sparsify as S


def test_top_fraction_is_the_top_k_for_any_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(37, 29, generator=g)
    k = int(0.37 * scores.numel())
    expected = torch.zeros(scores.numel(), dtype=torch.bool)
    expected[torch.argsort(scores.flatten(), descending=True)[:k]] = True
    for chunk in (S.CHUNK_ENTRIES, 29, 58, 100):
        monkeypatch.setattr(S, "CHUNK_ENTRIES", chunk)
        mask = S.top_fraction_mask(scores, 0.37)
        assert mask.shape == scores.shape and int(mask.sum()) == k
        assert torch.equal(mask.flatten(), expected), chunk


def test_ties_at_the_cut_follow_argsort_or_position(monkeypatch: pytest.MonkeyPatch) -> None:
    scores = torch.tensor([5.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 2.0])
    # k = 4: 5 and 2 are certain, two of the five 1s are chosen
    expected = torch.zeros(8, dtype=torch.bool)
    expected[torch.argsort(scores, descending=True)[:4]] = True
    assert torch.equal(S.top_fraction_mask(scores, 0.5), expected)  # mergekit's choice
    monkeypatch.setattr(S, "ARGSORT_MAX_ENTRIES", 0)
    monkeypatch.setattr(S, "CHUNK_ENTRIES", 3)
    mask = S.top_fraction_mask(scores, 0.5)  # large-tensor path: the first tied by position
    assert mask.tolist() == [True, True, True, False, False, False, False, True]
    # all tied entries fit: no arbitrary choice, same set either way
    assert S.top_fraction_mask(scores, 0.875).tolist() == [True, True, True, True, True, False, True, True]


def test_bfloat16_magnitudes_keep_exactly_k() -> None:
    g = torch.Generator().manual_seed(1)
    delta = (torch.randn(300, 40, generator=g) * 0.01).bfloat16()
    kept = M.magnitude_trim(delta, 0.3)
    assert int((kept != 0).sum()) == int(0.3 * delta.numel())


def _inputs(seed: int, shape: tuple[int, ...] = (50, 24), k: int = 3) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=g)
    return base, [base + 0.1 * torch.randn(shape, generator=g) for _ in range(k)]


@pytest.mark.parametrize("method", ["linear", "task_arithmetic", "ties", "ties_l1", "dare_ties", "dare_linear", "fisher", "obim"])
def test_chunked_equals_whole_tensor(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base, models = _inputs(2)
    fishers = [m.abs() for m in models]
    sq = [torch.rand(24, generator=torch.Generator().manual_seed(9)), None, None]

    def run() -> torch.Tensor:
        gen = torch.Generator().manual_seed(4)
        return {
            "linear": lambda: M.linear(models, [1, 2, 3]),
            "task_arithmetic": lambda: M.task_arithmetic(base, models, [1, 0.5, -0.3], lambda_=0.7),
            "ties": lambda: M.ties(base, models, [1, 0.5, 0.8], [0.3, 0.5, 0.7]),
            "ties_l1": lambda: M.ties(base, models, [1, 0.5, 0.8], [0.3, 0.5, 0.7], rescale="l1"),
            "dare_ties": lambda: M.dare(base, models, [1, 0.5, 0.8], [0.3, 0.5, 0.7], generator=gen),
            "dare_linear": lambda: M.dare(base, models, [1, 0.5, 0.8], [0.3, 0.5, 0.7], generator=gen, consensus=False),
            "fisher": lambda: M.fisher(models, fishers, [1, 2, 3]),
            "obim": lambda: M.obim(base, models, [0.3, 0.3, 0.3], input_sq_norms=sq),
        }[method]()

    whole = run()
    monkeypatch.setattr(S, "CHUNK_ENTRIES", 96)  # 4 rows per chunk, 13 chunks
    monkeypatch.setattr(S, "ARGSORT_MAX_ENTRIES", 0)
    chunked = run()
    if method.endswith("l1") or method.startswith("dare"):
        # the L1 rescale factor sums chunks in float64 instead of one float32 reduction
        torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-7)
    else:
        assert torch.equal(chunked, whole)


def test_chunked_bernoulli_is_the_whole_tensor_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    delta = torch.randn(40, 30, generator=torch.Generator().manual_seed(3))
    expected_mask = torch.bernoulli(torch.full((40, 30), 0.4), generator=torch.Generator().manual_seed(8)).bool()
    monkeypatch.setattr(S, "CHUNK_ENTRIES", 90)
    kept = M.dare_drop(delta, 0.4, torch.Generator().manual_seed(8), rescale="none")
    assert torch.equal(kept, delta * expected_mask)


def test_out_dtype_is_written_directly() -> None:
    base, models = _inputs(5, (8, 4), 2)
    got = M.ties(base.bfloat16(), [m.bfloat16() for m in models], [1, 1], [0.5, 0.5], out_dtype=torch.float16)
    assert got.dtype == torch.float16
    ref = M.ties(base.bfloat16(), [m.bfloat16() for m in models], [1, 1], [0.5, 0.5])
    assert torch.equal(got, ref.to(torch.float16))
