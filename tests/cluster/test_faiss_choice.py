"""faiss is an extra (cpu xor gpu): Birch runs without it, k-means says how to get it, and says
when it runs on CPU although the machine has a GPU (issue 15, item 2)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from in2x_cli.core import cluster as core
from in2x_cli.tiny import corpus_dir
from tests.util import invoke

INSTRUCTIONS = corpus_dir() / "instructions.jsonl"


@pytest.fixture
def no_faiss(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now raises ImportError


def test_birch_never_imports_faiss(tmp_path, no_faiss, monkeypatch):
    out = tmp_path / "c.jsonl"
    res = invoke(["cluster", str(INSTRUCTIONS), "--algorithm", "birch", "--k", "6", "--dim", "16", "-o", str(out)])
    assert res.code == 0, res.stderr
    assert len(out.read_text().splitlines()) == 180
    # above the Ward limit the global step is size-weighted k-means: sklearn's, still no faiss
    monkeypatch.setattr(core, "AGGLOMERATIVE_MAX", 3)
    rng = np.random.default_rng(0)
    X = np.concatenate([np.eye(8)[d] + rng.normal(0, 0.02, size=(40, 8)) for d in (0, 3, 6)]).astype(np.float32)
    result = core.cluster(X, core.ClusterConfig(algorithm="birch", k=3, threshold=0.01, reduce_dim=8))
    assert result.info["global_step"] == "size-weighted k-means" and result.n_clusters == 3
    assert sorted(np.bincount(result.labels).tolist()) == [40, 40, 40]


def test_kmeans_without_faiss_says_how_to_install(tmp_path, no_faiss):
    res = invoke(["cluster", str(INSTRUCTIONS), "--algorithm", "kmeans", "--k", "6", "-o", str(tmp_path / "c.jsonl")])
    assert res.code == 2
    assert "pip install 'in2x[cpu]'" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "c.jsonl").exists()


def test_kmeans_on_cpu_with_a_gpu_visible_says_so_once(tmp_path, monkeypatch):
    pytest.importorskip("faiss")
    from in2x_cli import devices

    monkeypatch.setattr(core, "faiss_gpu_count", lambda: 0)  # faiss-cpu
    monkeypatch.setattr(devices, "driver_gpu_count", lambda: 8)
    args = ["cluster", str(INSTRUCTIONS), "--algorithm", "kmeans", "--k", "6", "--dim", "16", "-o", str(tmp_path / "c.jsonl")]
    res = invoke(args)
    assert res.code == 0, res.stderr
    notes = [line for line in res.stderr.splitlines() if "runs on CPU although nvidia-smi lists 8 GPU(s)" in line]
    assert len(notes) == 1 and "pip install faiss-gpu" in notes[0]
    res = invoke([*args, "--device", "cpu"])  # CPU on purpose: no note
    assert res.code == 0 and "runs on CPU although" not in res.stderr
    monkeypatch.setattr(devices, "driver_gpu_count", lambda: 0)  # no GPU: nothing to say
    assert "runs on CPU although" not in invoke(args).stderr


def test_l2_nearest_matches_faiss_flat_l2():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    cents = rng.normal(size=(37, 12)).astype(np.float32)
    x = rng.normal(size=(500, 12)).astype(np.float32)
    index = faiss.IndexFlatL2(12)
    index.add(cents)
    d_ref, i_ref = index.search(x, 1)
    d, i = core.L2Nearest(cents, max_cells=100).search(x, 1)  # several slices
    assert (i == i_ref).all()
    np.testing.assert_allclose(d, d_ref, rtol=1e-4, atol=1e-4)
