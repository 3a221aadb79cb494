"""Streaming clustering of L2-normalised embeddings: Birch, spherical k-means, two-level.

The paper (In2x, arXiv 2508.14472, §SFT data) clusters 40M instructions with Birch, choosing the
threshold by tag recapture rate and cluster smoothness, then samples inside clusters for
diversity. Every algorithm here reads the embeddings ``X`` (``n × d``, unit rows, usually a
memory-mapped ``.npy``) in chunks, so memory grows with the number of clusters, not of rows;
per-row outputs go to arrays the caller allocates (``alloc``, e.g. memory-mapped scratch files).

``birch``    — sklearn ``Birch(n_clusters=None)`` fed with ``partial_fit`` chunk by chunk (no
               global step per chunk: with ``n_clusters`` set, sklearn re-runs it on every call),
               in a reduced space: PCA to ``reduce_dim`` = 32 dimensions fitted on a seeded sample
               of at most 100,000 rows, then rows re-normalised to the unit sphere, so the
               threshold is a radius in chord distance ``‖a − b‖ = √(2 − 2 cos)`` (Birch is slow
               and threshold-blind in hundreds of dimensions; see ../shared/ENVIRONMENT.md).
               One global step at the end: with ``k`` the subcluster centres are merged into
               ``k`` clusters (Ward agglomeration, sklearn Birch's own global step, up to
               5,000 subclusters; size-weighted k-means above that); without ``k`` every Birch
               subcluster is a cluster. Rows are then assigned to their nearest subcluster.
``kmeans``   — faiss spherical k-means (``faiss.Kmeans(spherical=True)``; on the GPU when faiss
               sees one), trained on a seeded sample of at most 256·k rows (faiss's own cap),
               then every row assigned to its most similar centroid (inner product).
``two-level``— faiss spherical k-means into ``partitions`` coarse cells (default
               ⌈n / 200,000⌉), then a separate Birch tree inside each cell (smaller trees,
               assignment only against the cell's own subclusters), then the same global step.

Output, for every algorithm: ``labels`` renumbered by decreasing cluster size (0 = largest;
ties by first row), and ``distances`` = the cosine distance ``1 − cos(x, ĉ)`` of each row to
its cluster centre ``ĉ`` = the L2-normalised mean of the cluster's member embeddings (in the
original embedding space, for every algorithm), in ``[0, 2]``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

ALGORITHMS = ("birch", "kmeans", "two-level")
AGGLOMERATIVE_MAX = 5_000  # Ward needs m²/2 distances: above this many subclusters, weighted k-means
PLUSPLUS_MAX_K = 256  # k-means++ seeding up to this k (see faiss_kmeans)
PARTITION_ROWS = 200_000  # two-level: default rows per coarse cell (Birch is fast at this size)

# progress(stage description, total units) -> advance(units)
ProgressFactory = Callable[[str, int], Callable[[int], None]]
# alloc(shape, dtype) -> writable array (np.zeros, or a memory-mapped scratch array)
Alloc = Callable[[tuple[int, ...], str], Any]


@dataclass(frozen=True)
class ClusterConfig:
    algorithm: str = "birch"
    k: int | None = None
    threshold: float = 0.5
    branching_factor: int = 50
    reduce_dim: int = 32
    partitions: int | None = None
    niter: int = 20
    max_points_per_centroid: int = 256
    pca_sample: int = 100_000
    chunk_size: int = 16_384
    seed: int = 0
    gpu: bool | None = None  # None: use a GPU when faiss has one

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r} (expected {', '.join(ALGORITHMS)})")
        if self.k is not None and self.k < 1:
            raise ValueError("k must be >= 1")
        if self.algorithm == "kmeans" and self.k is None:
            raise ValueError("kmeans needs k")
        if not self.threshold > 0:
            raise ValueError("threshold must be > 0")
        if self.branching_factor < 2:
            raise ValueError("branching_factor must be >= 2")
        if self.reduce_dim < 1 or self.chunk_size < 1 or self.niter < 1:
            raise ValueError("reduce_dim, chunk_size and niter must be >= 1")
        if self.partitions is not None and self.partitions < 1:
            raise ValueError("partitions must be >= 1")


@dataclass
class Clustering:
    labels: Any  # (n,) int32, 0 = largest cluster
    distances: Any  # (n,) float32, 1 - cos(x, centre)
    centroids: Any  # (n_clusters, d) float32, unit rows
    sizes: Any  # (n_clusters,) int64
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return int(len(self.sizes))


def _noop_progress(_desc: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


def _zeros(shape: tuple[int, ...], dtype: str) -> Any:
    import numpy as np

    return np.zeros(shape, dtype=dtype)


def chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def sample_rows(n: int, m: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded uniform sample of ``min(n, m)`` rows (sorted: memmap-friendly)."""
    import numpy as np

    if m >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))


FAISS_MISSING = (
    "k-means clustering needs faiss: pip install 'in2x[cpu]' (faiss-cpu) or, on an x86_64 GPU node, "
    "'in2x[gpu]' (faiss-gpu; never both: they overwrite each other). --algorithm birch needs no faiss"
)


def import_faiss() -> Any:
    """``faiss``, or a ValueError saying how to install it (only k-means paths need it)."""
    try:
        import faiss
    except ImportError:
        raise ValueError(FAISS_MISSING) from None
    return faiss


def faiss_gpu_count() -> int:
    """GPUs this faiss build can use: 0 for faiss-cpu (no ``StandardGpuResources``)."""
    faiss = import_faiss()
    if not hasattr(faiss, "StandardGpuResources") or not hasattr(faiss, "get_num_gpus"):
        return 0
    return int(faiss.get_num_gpus())


def use_gpu(config: ClusterConfig) -> bool:
    if config.gpu is False:
        return False
    available = faiss_gpu_count()
    if config.gpu and not available:
        raise ValueError("gpu requested but faiss sees no GPU (install faiss-gpu)")
    return available > 0


# --------------------------------------------------------------------------- building blocks


class Reducer:
    """PCA to ``dim`` fitted on a sample, then unit-normalised rows (identity + norm when d ≤ dim)."""

    def __init__(self, X: Any, dim: int, *, sample: int, seed: int) -> None:
        import numpy as np

        self.dim = min(dim, X.shape[1])
        self._pca: Any = None
        if X.shape[1] > dim:
            from sklearn.decomposition import PCA

            rows = np.asarray(X[sample_rows(X.shape[0], sample, seed)], dtype=np.float32)
            n_comp = max(1, min(dim, rows.shape[0] - 1)) if rows.shape[0] > 1 else 1
            self._pca = PCA(n_components=n_comp, svd_solver="randomized", random_state=seed).fit(rows)
            self.dim = n_comp

    def __call__(self, block: Any) -> np.ndarray:
        import numpy as np

        from in2x_cli.core.embed import l2_normalize

        block = np.asarray(block, dtype=np.float32)
        if self._pca is not None:
            block = self._pca.transform(block).astype(np.float32)
        return l2_normalize(block)


def kmeans_plusplus(x: np.ndarray, k: int, *, seed: int) -> np.ndarray:
    """Indices of ``k`` greedy k-means++ seeds (Arthur & Vassilvitskii 2007; greedy variant as in
    sklearn): each step draws ``2 + ⌊ln k⌋`` candidates with probability proportional to their
    squared distance to the nearest seed so far and keeps the one that lowers the potential most."""
    import numpy as np

    rng = np.random.default_rng(seed)
    m = len(x)
    trials = 2 + int(math.log(k)) if k > 1 else 1
    sq = np.einsum("ij,ij->i", x, x)
    idx = np.empty(k, dtype=np.int64)
    idx[0] = rng.integers(m)
    d2 = np.maximum(sq + sq[idx[0]] - 2.0 * (x @ x[idx[0]]), 0.0)
    for j in range(1, k):
        cum = np.cumsum(d2, dtype=np.float64)
        if cum[-1] <= 0:  # fewer distinct points than k: any row will do
            idx[j] = rng.integers(m)
            continue
        cand = np.minimum(np.searchsorted(cum, rng.random(trials) * cum[-1], side="right"), m - 1)
        dc = np.maximum(sq[None, :] + sq[cand][:, None] - 2.0 * (x[cand] @ x.T), 0.0)
        new = np.minimum(d2[None, :], dc)
        best = int(np.argmin(new.sum(axis=1)))
        idx[j] = cand[best]
        d2 = new[best]
    return idx


def faiss_kmeans(
    x: np.ndarray, k: int, *, seed: int, niter: int, spherical: bool, gpu: bool, weights: np.ndarray | None = None
) -> np.ndarray:
    """Centroids from faiss k-means on an in-memory sample (``k`` clipped to the sample size).

    Seeding: k-means++ on a seeded subsample of ``20·k`` rows when ``k <= PLUSPLUS_MAX_K`` (256);
    faiss's random seeding above that, where ++ costs ``k`` sequential passes and single bad
    seeds matter little. Random seeding alone often merges planted clusters at small ``k``.
    """
    import numpy as np

    faiss = import_faiss()
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = min(k, x.shape[0])
    km = faiss.Kmeans(
        x.shape[1], k, niter=niter, seed=seed, spherical=spherical, gpu=gpu, verbose=False,
        max_points_per_centroid=max(1, math.ceil(x.shape[0] / k)), min_points_per_centroid=1,
    )
    init = None
    if k <= PLUSPLUS_MAX_K:
        sub = x[sample_rows(len(x), 20 * k, seed)]
        init = np.ascontiguousarray(sub[kmeans_plusplus(sub, k, seed=seed)])
    km.train(x, weights=None if weights is None else np.ascontiguousarray(weights, dtype=np.float32), init_centroids=init)
    return np.asarray(km.centroids, dtype=np.float32).reshape(k, x.shape[1])


def flat_index(centroids: np.ndarray, *, metric: str, gpu: bool) -> Any:
    """An exact faiss index over ``centroids`` (inner product or L2), moved to the GPU if asked."""
    import numpy as np

    faiss = import_faiss()
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    index = faiss.IndexFlatIP(c.shape[1]) if metric == "ip" else faiss.IndexFlatL2(c.shape[1])
    if gpu:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(c)
    return index


class L2Nearest:
    """Exact nearest centre by squared L2 distance in NumPy, with faiss's ``search(x, 1)`` shape:
    the Birch paths use it so that they never need faiss. Rows are compared in slices so the
    distance matrix stays under ``max_cells`` floats."""

    def __init__(self, centroids: np.ndarray, *, max_cells: int = 1 << 24) -> None:
        import numpy as np

        self.c = np.ascontiguousarray(centroids, dtype=np.float32)
        self.c_sq = (self.c.astype(np.float64) ** 2).sum(axis=1)
        self.max_cells = max_cells

    def search(self, x: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        assert k == 1, "L2Nearest answers nearest-one queries only"
        x = np.asarray(x, dtype=np.float32)
        dist = np.empty((len(x), 1), dtype=np.float32)
        idx = np.empty((len(x), 1), dtype=np.int64)
        step = max(1, self.max_cells // max(1, len(self.c)))
        for start in range(0, len(x), step):
            block = x[start : start + step].astype(np.float64)
            d = self.c_sq[None, :] - 2.0 * (block @ self.c.T.astype(np.float64))
            best = d.argmin(axis=1)
            idx[start : start + step, 0] = best
            dist[start : start + step, 0] = d[np.arange(len(block)), best] + (block**2).sum(axis=1)
        return dist, idx


def assign_nearest(
    X: Any,
    index: Any,
    labels_out: Any,
    *,
    transform: Callable[[Any], np.ndarray] | None = None,
    chunk_size: int = 16_384,
    rows: np.ndarray | None = None,
    advance: Callable[[int], None] | None = None,
) -> None:
    """``labels_out[i]`` = the nearest entry of ``index`` to row ``i`` of ``X`` (or of
    ``X[rows]`` when ``rows`` is given), read chunk by chunk."""
    import numpy as np

    n = X.shape[0] if rows is None else len(rows)
    for sl in chunks(n, chunk_size):
        block = X[sl] if rows is None else X[rows[sl]]
        block = transform(block) if transform is not None else np.ascontiguousarray(block, dtype=np.float32)
        _, nearest = index.search(block, 1)
        labels_out[sl] = nearest[:, 0]
        if advance is not None:
            advance(sl.stop - sl.start)


def build_birch(blocks: Iterator[np.ndarray], *, threshold: float, branching_factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Stream blocks through one Birch CF-tree; return (subcluster centres, subcluster sizes)."""
    import numpy as np
    from sklearn.cluster import Birch

    birch = Birch(threshold=threshold, branching_factor=branching_factor, n_clusters=None, compute_labels=False)
    fitted = False
    for block in blocks:
        if len(block):
            birch.partial_fit(block)
            fitted = True
    if not fitted:
        raise ValueError("Birch got no rows")
    centres = np.asarray(birch.subcluster_centers_, dtype=np.float32)
    # sizes live on the leaves (private but stable since sklearn 0.16); same order as the centres
    sizes = np.asarray([sc.n_samples_ for leaf in birch._get_leaves() for sc in leaf.subclusters_], dtype=np.float64)
    if len(sizes) != len(centres):  # pragma: no cover - a future sklearn changed the layout
        sizes = np.ones(len(centres))
    return centres, sizes


def global_step(centres: np.ndarray, sizes: np.ndarray, k: int | None, *, seed: int, niter: int) -> tuple[np.ndarray, str]:
    """Map each subcluster to a final cluster (see the module docstring)."""
    import numpy as np

    m = len(centres)
    if k is None:
        return np.arange(m), "none (subclusters kept)"
    if m <= k:
        return np.arange(m), f"none ({m} subclusters <= k={k})"
    if m <= AGGLOMERATIVE_MAX:
        from sklearn.cluster import AgglomerativeClustering

        return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(centres).astype(np.int64), "ward agglomeration"
    from sklearn.cluster import KMeans  # not faiss: the Birch path must run without it

    km = KMeans(n_clusters=k, init="k-means++", n_init=1, max_iter=niter, random_state=seed)
    mapping = km.fit(centres, sample_weight=sizes).labels_.astype(np.int64)
    return mapping, "size-weighted k-means"


def finalize(
    X: Any,
    raw_labels: Any,
    mapping: np.ndarray | None,
    labels_out: Any,
    distances_out: Any,
    *,
    chunk_size: int,
    progress: ProgressFactory,
) -> tuple[np.ndarray, np.ndarray]:
    """Relabel by size, compute member-mean centres and cosine distances (two passes over X).

    ``raw_labels`` may alias ``labels_out``. Returns (centroids, sizes).
    """
    import numpy as np
    import scipy.sparse as sp

    n, d = X.shape
    n_raw = int(mapping.max()) + 1 if mapping is not None else None
    if n_raw is None:
        n_raw = 0
        for sl in chunks(n, chunk_size):
            n_raw = max(n_raw, int(np.max(raw_labels[sl])) + 1)
    sums = np.zeros((n_raw, d), dtype=np.float64)
    counts = np.zeros(n_raw, dtype=np.int64)
    first = np.full(n_raw, n, dtype=np.int64)
    advance = progress("cluster centres", n)
    for sl in chunks(n, chunk_size):
        lab = np.asarray(raw_labels[sl], dtype=np.int64)
        if mapping is not None:
            lab = mapping[lab]
        block = np.asarray(X[sl], dtype=np.float32)
        onehot = sp.csr_matrix((np.ones(len(lab), dtype=np.float32), (lab, np.arange(len(lab)))), shape=(n_raw, len(lab)))
        sums += onehot @ block
        counts += np.bincount(lab, minlength=n_raw)
        uniq, idx = np.unique(lab, return_index=True)
        first[uniq] = np.minimum(first[uniq], idx + sl.start)
        advance(sl.stop - sl.start)
    nonempty = np.flatnonzero(counts)
    order = nonempty[np.lexsort((first[nonempty], -counts[nonempty]))]  # biggest first, ties by first row
    remap = np.full(n_raw, -1, dtype=np.int64)
    remap[order] = np.arange(len(order))
    centroids = sums[order]
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    centroids = centroids.astype(np.float32)
    sizes = counts[order]
    advance = progress("distances", n)
    for sl in chunks(n, chunk_size):
        lab = np.asarray(raw_labels[sl], dtype=np.int64)
        if mapping is not None:
            lab = mapping[lab]
        new = remap[lab]
        block = np.asarray(X[sl], dtype=np.float32)
        labels_out[sl] = new
        distances_out[sl] = 1.0 - np.einsum("ij,ij->i", block, centroids[new])
        advance(sl.stop - sl.start)
    return centroids, sizes


# --------------------------------------------------------------------------- algorithms


class Prepared:
    """Work shared across runs on the same X (a threshold sweep): the PCA and the coarse cells."""

    def __init__(self, X: Any, config: ClusterConfig, alloc: Alloc, progress: ProgressFactory) -> None:
        self.X = X
        self.config = config
        self.alloc = alloc
        self.progress = progress
        self._reducer: Reducer | None = None
        self._cells: tuple[Any, np.ndarray] | None = None

    @property
    def reducer(self) -> Reducer:
        if self._reducer is None:
            c = self.config
            self._reducer = Reducer(self.X, c.reduce_dim, sample=c.pca_sample, seed=c.seed)
        return self._reducer

    def cells(self) -> tuple[Any, np.ndarray]:
        """(row order grouped by cell, cell boundaries) for two-level, computed once."""
        if self._cells is None:
            self._cells = coarse_cells(self.X, self.config, self.alloc, self.progress)
        return self._cells


def coarse_cells(X: Any, config: ClusterConfig, alloc: Alloc, progress: ProgressFactory) -> tuple[Any, np.ndarray]:
    """Spherical k-means cells; a counting sort writes row ids grouped by cell (stable)."""
    import numpy as np

    n = X.shape[0]
    p = config.partitions or max(1, math.ceil(n / PARTITION_ROWS))
    p = min(p, n)
    gpu = use_gpu(config)
    sample = np.asarray(X[sample_rows(n, config.max_points_per_centroid * p, config.seed)], dtype=np.float32)
    cents = faiss_kmeans(sample, p, seed=config.seed, niter=config.niter, spherical=True, gpu=gpu)
    cell = alloc((n,), "int32")
    assign_nearest(X, flat_index(cents, metric="ip", gpu=gpu), cell, chunk_size=config.chunk_size, advance=progress("coarse cells", n))
    counts = np.zeros(len(cents), dtype=np.int64)
    for sl in chunks(n, config.chunk_size):
        counts += np.bincount(np.asarray(cell[sl]), minlength=len(cents))
    bounds = np.concatenate([[0], np.cumsum(counts)])
    fill = bounds[:-1].copy()
    order = alloc((n,), "int64")
    for sl in chunks(n, config.chunk_size):
        c = np.asarray(cell[sl], dtype=np.int64)
        srt = np.argsort(c, kind="stable")
        cs = c[srt]
        group_start = np.searchsorted(cs, cs, side="left")
        order[fill[cs] + (np.arange(len(cs)) - group_start)] = srt + sl.start
        fill += np.bincount(c, minlength=len(cents))
    return order, bounds


def _birch_labels(prep: Prepared, threshold: float, raw: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One Birch tree over all rows; ``raw`` gets subcluster ids. Returns centres, sizes, info."""
    c = prep.config
    X, n = prep.X, prep.X.shape[0]
    reduce = prep.reducer
    advance = prep.progress(f"birch tree (threshold {threshold:g})", n)

    def blocks() -> Iterator[np.ndarray]:
        for sl in chunks(n, c.chunk_size):
            yield reduce(X[sl])
            advance(sl.stop - sl.start)

    centres, sizes = build_birch(blocks(), threshold=threshold, branching_factor=c.branching_factor)
    assign_nearest(X, L2Nearest(centres), raw, transform=reduce, chunk_size=c.chunk_size, advance=prep.progress("assign", n))
    return centres, sizes, {}


def _two_level_labels(prep: Prepared, threshold: float, raw: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Birch inside each coarse cell; ``raw`` gets globally numbered subcluster ids."""
    import numpy as np

    c = prep.config
    X = prep.X
    reduce = prep.reducer
    order, bounds = prep.cells()
    all_centres: list[np.ndarray] = []
    all_sizes: list[np.ndarray] = []
    offset = 0
    advance = prep.progress(f"birch per cell (threshold {threshold:g})", X.shape[0])
    for cell in range(len(bounds) - 1):
        rows = np.asarray(order[bounds[cell] : bounds[cell + 1]])
        if len(rows) == 0:
            continue
        reduced = np.concatenate([reduce(X[rows[sl]]) for sl in chunks(len(rows), c.chunk_size)])
        centres, sizes = build_birch(
            (reduced[sl] for sl in chunks(len(reduced), c.chunk_size)), threshold=threshold, branching_factor=c.branching_factor
        )
        local = np.empty(len(rows), dtype=np.int64)
        assign_nearest(reduced, L2Nearest(centres), local, chunk_size=c.chunk_size)
        raw[rows] = local + offset
        offset += len(centres)
        all_centres.append(centres)
        all_sizes.append(sizes)
        advance(len(rows))
    return np.concatenate(all_centres), np.concatenate(all_sizes), {"cells": int(len(bounds) - 1)}


def run(prep: Prepared, *, threshold: float | None = None) -> Clustering:
    """Cluster ``prep.X`` with ``prep.config`` (``threshold`` overrides the config's, for sweeps)."""
    import numpy as np

    c = prep.config
    X = prep.X
    n = X.shape[0]
    t0 = time.perf_counter()
    labels = prep.alloc((n,), "int32")
    distances = prep.alloc((n,), "float32")
    info: dict[str, Any] = {"algorithm": c.algorithm, "rows": n, "dim": int(X.shape[1])}
    mapping: np.ndarray | None = None
    if c.algorithm == "kmeans":
        assert c.k is not None
        if c.k > n:
            raise ValueError(f"k={c.k} is larger than the number of rows ({n})")
        gpu = use_gpu(c)
        sample = np.asarray(X[sample_rows(n, c.max_points_per_centroid * c.k, c.seed)], dtype=np.float32)
        cents = faiss_kmeans(sample, c.k, seed=c.seed, niter=c.niter, spherical=True, gpu=gpu)
        info.update(gpu=gpu, train_rows=len(sample), train_seconds=round(time.perf_counter() - t0, 3))
        assign_nearest(X, flat_index(cents, metric="ip", gpu=gpu), labels, chunk_size=c.chunk_size, advance=prep.progress("assign", n))
    else:
        t = c.threshold if threshold is None else threshold
        build = _birch_labels if c.algorithm == "birch" else _two_level_labels
        centres, sizes, extra = build(prep, t, labels)
        mapping, how = global_step(centres, sizes, c.k, seed=c.seed, niter=c.niter)
        info.update(extra, threshold=t, reduced_dim=prep.reducer.dim, subclusters=int(len(centres)), global_step=how)
    info["labels_seconds"] = round(time.perf_counter() - t0, 3)
    centroids, sizes = finalize(X, labels, mapping, labels, distances, chunk_size=c.chunk_size, progress=prep.progress)
    info["n_clusters"] = int(len(sizes))
    info["seconds"] = round(time.perf_counter() - t0, 3)
    return Clustering(labels=labels, distances=distances, centroids=centroids, sizes=sizes, info=info)


def cluster(X: Any, config: ClusterConfig, *, alloc: Alloc | None = None, progress: ProgressFactory | None = None) -> Clustering:
    """Cluster unit-norm rows ``X`` (see the module docstring)."""
    return run(Prepared(X, config, alloc or _zeros, progress or _noop_progress))


# --------------------------------------------------------------------------- selection and metrics


def representatives(labels: Any, distances: Any, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` rows nearest their centre in every cluster (ties: lower row)."""
    import numpy as np

    lab = np.asarray(labels, dtype=np.int64)
    dist = np.asarray(distances, dtype=np.float64)
    order = np.lexsort((np.arange(len(lab)), dist, lab))
    sorted_lab = lab[order]
    group_start = np.searchsorted(sorted_lab, sorted_lab, side="left")
    rank = np.arange(len(lab)) - group_start
    keep = np.zeros(len(lab), dtype=bool)
    keep[order[rank < k]] = True
    return keep


def tag_recapture(labels: Any, tag_ids: Any) -> float | None:
    """Share of tagged rows whose tag is their cluster's majority tag (rows with tag id < 0 are
    untagged and ignored); ``None`` when no row has a tag. 1.0 when every cluster is pure."""
    import numpy as np

    lab = np.asarray(labels, dtype=np.int64)
    tags = np.asarray(tag_ids, dtype=np.int64)
    tagged = tags >= 0
    if not tagged.any():
        return None
    lab, tags = lab[tagged], tags[tagged]
    pairs, counts = np.unique(np.stack([lab, tags], axis=1), axis=0, return_counts=True)
    cluster_of_pair = pairs[:, 0]
    starts = np.flatnonzero(np.r_[True, cluster_of_pair[1:] != cluster_of_pair[:-1]])
    majority = np.maximum.reduceat(counts, starts)
    return float(majority.sum() / len(lab))


def size_stats(sizes: Sequence[int] | np.ndarray) -> dict[str, float]:
    """Cluster-size shape. ``smoothness`` = normalised entropy of the size distribution,
    ``H(p) / ln K`` with ``p_c = n_c / N``: 1.0 when all clusters are the same size, towards 0
    when one cluster holds almost everything (defined as 1.0 for K = 1 only if N = 1, else 0)."""
    import numpy as np

    s = np.asarray(sizes, dtype=np.float64)
    total = s.sum()
    k = len(s)
    p = s / total
    entropy = float(-(p * np.log(p)).sum())
    smooth = entropy / math.log(k) if k > 1 else (1.0 if total == 1 else 0.0)
    return {
        "smoothness": round(smooth, 6),
        "size_cv": round(float(s.std() / s.mean()), 6),
        "largest_share": round(float(s.max() / total), 6),
        "singleton_share": round(float((s == 1).sum() / k), 6),
        "median_size": float(np.median(s)),
    }


def sweep(
    X: Any,
    thresholds: Sequence[float],
    config: ClusterConfig,
    *,
    tag_ids: Any = None,
    alloc: Alloc | None = None,
    progress: ProgressFactory | None = None,
) -> list[dict[str, Any]]:
    """One report per Birch threshold: clusters, tag recapture, size shape, mean distance.

    The PCA (and two-level's coarse cells) are computed once and shared by every threshold.
    """
    import numpy as np

    if config.algorithm == "kmeans":
        raise ValueError("a threshold sweep needs birch or two-level")
    prep = Prepared(X, config, alloc or _zeros, progress or _noop_progress)
    reports = []
    for t in thresholds:
        result = run(prep, threshold=t)
        report: dict[str, Any] = {
            "threshold": t,
            "n_clusters": result.n_clusters,
            "subclusters": result.info["subclusters"],
            "tag_recapture": None if tag_ids is None else tag_recapture(result.labels, tag_ids),
            **size_stats(result.sizes),
            "mean_centroid_distance": round(float(np.mean(np.asarray(result.distances, dtype=np.float64))), 6),
            "seconds": result.info["seconds"],
        }
        if report["tag_recapture"] is not None:
            report["tag_recapture"] = round(report["tag_recapture"], 6)
        reports.append(report)
    return reports
