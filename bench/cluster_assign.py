"""Clustering throughput on synthetic clustered embeddings: Birch, k-means, two-level (the
clustering step alone; bench/cluster.py measures the whole command on real text).

Data: ``--rows`` (200,000) unit vectors in ``--dim`` (384) dimensions around ``--planted``
(1,000) random unit centres (Gaussian noise, re-normalised), written to a memory-mapped .npy
like the one ``in2x cluster`` embeds into, then clustered with ``in2x_cli.core.cluster`` into
``--k`` (1,000) clusters.

Baseline (named, measured in the same run): raw faiss assignment — ``IndexFlatIP.search`` over
the whole in-RAM array with the same centroids (the k-means run's). Ours: ``assign_nearest`` reading the
memmap in 16,384-row chunks and writing labels into a memory-mapped array (what the command
does). Goal: ours / raw throughput >= 0.9.

Extrapolation to 40M rows (stated in the JSON): every pass is linear in rows at the measured
rows/s; faiss k-means training stays constant (it trains on at most 256·k rows); Birch's
subcluster count and cell count are as measured (with more rows they grow, which makes the
nearest-subcluster search slower — the estimate is a lower bound for birch); the embeddings
(40M × dim × 4 bytes) stream from disk once per pass at ``--disk-gbps`` when they exceed RAM.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from common import best_of, emit


def planted(rows: int, dim: int, planted_k: int, noise: float, seed: int, path: Path):
    import numpy as np

    from in2x_cli.core.embed import l2_normalize

    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.standard_normal((planted_k, dim)))
    truth = rng.integers(0, planted_k, rows)
    out = np.lib.format.open_memmap(str(path), mode="w+", dtype=np.float32, shape=(rows, dim))
    for start in range(0, rows, 50_000):
        y = truth[start : start + 50_000]
        block = centres[y] + noise * rng.standard_normal((len(y), dim)).astype(np.float32) / math.sqrt(dim)
        out[start : start + len(y)] = l2_normalize(block)
    out.flush()
    del out
    return np.load(str(path), mmap_mode="r"), truth


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--planted", type=int, default=1000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--noise", type=float, default=0.8)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--niter", type=int, default=10)
    ap.add_argument("--target-rows", type=int, default=40_000_000)
    ap.add_argument("--disk-gbps", type=float, default=1.0, help="assumed sequential read bandwidth for the 40M extrapolation")
    ap.add_argument("--skip", default="", help="comma-separated algorithms to skip: birch, two-level (kmeans always runs: its centroids feed the assignment comparison)")
    args = ap.parse_args()

    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from in2x_cli.core.cluster import ClusterConfig, assign_nearest, cluster, flat_index
    from in2x_cli.io.arrays import scratch_array

    tmp = Path(tempfile.mkdtemp(prefix="in2x-bench-cluster-"))
    X, truth = planted(args.rows, args.dim, args.planted, args.noise, 0, tmp / "emb.npy")

    def alloc(shape, dtype):
        return scratch_array(shape, dtype, dir=tmp)

    results: dict[str, dict] = {}
    configs = {
        "kmeans": ClusterConfig(algorithm="kmeans", k=args.k, niter=args.niter),
        "birch": ClusterConfig(algorithm="birch", k=args.k, threshold=args.threshold),
        "two-level": ClusterConfig(algorithm="two-level", k=args.k, threshold=args.threshold, partitions=args.partitions, niter=args.niter),
    }
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    kmeans_centroids, train_s = None, 0.0
    for name, cfg in configs.items():
        if name in skip and name != "kmeans":
            continue
        t0 = time.perf_counter()
        res = cluster(X, cfg, alloc=alloc)
        seconds = time.perf_counter() - t0
        if name == "kmeans":
            kmeans_centroids = res.centroids
            train_s = res.info["train_seconds"]
        results[name] = {
            "seconds": round(seconds, 2),
            "rows_per_s": round(args.rows / seconds),
            "n_clusters": res.n_clusters,
            "adjusted_rand_vs_planted": round(float(adjusted_rand_score(truth, np.asarray(res.labels))), 4),
            **{k: v for k, v in res.info.items() if k in ("subclusters", "global_step", "cells", "train_rows")},
        }

    # assignment throughput: ours (chunked memmap -> memmap labels) vs raw faiss on the in-RAM
    # array, same centroids (the k-means result's); timed alternately, best of 5 each, because
    # this machine is shared
    index = flat_index(kmeans_centroids, metric="ip", gpu=False)
    in_ram = np.ascontiguousarray(X)
    labels = alloc((args.rows,), "int32")
    raw_s = ours_s = float("inf")
    for _ in range(5):
        raw_s = min(raw_s, best_of(lambda: index.search(in_ram, 1), repeats=1))
        ours_s = min(ours_s, best_of(lambda: assign_nearest(X, index, labels, chunk_size=16_384), repeats=1))
    _, raw_labels = index.search(in_ram, 1)
    assert np.array_equal(np.asarray(labels), raw_labels[:, 0]), "chunked assignment differs from faiss"

    scale = args.target_rows / args.rows
    emb_gb = args.target_rows * args.dim * 4 / 1e9
    io_pass_s = emb_gb / args.disk_gbps
    passes = {"kmeans": 3, "birch": 4, "two-level": 5}  # reads of X: (train sample) assign, centres, distances; birch adds the tree pass, two-level the cells
    extrapolation = {}
    for name, r in results.items():
        fixed = train_s if name == "kmeans" else 0.0
        compute = fixed + (r["seconds"] - fixed) * scale
        extrapolation[name] = {
            "compute_hours": round(compute / 3600, 2),
            "io_hours_at_disk_gbps": round(passes[name] * io_pass_s / 3600, 2),
        }
    emit({
        "bench": "cluster",
        "what": f"{args.rows} x {args.dim} synthetic unit vectors around {args.planted} planted centres -> k={args.k}",
        "baseline": "raw faiss IndexFlatIP.search over the whole in-RAM array, same centroids",
        "algorithms": results,
        "kmeans_train_seconds": round(train_s, 2),
        "assign_raw_faiss_seconds": round(raw_s, 3),
        "assign_ours_seconds": round(ours_s, 3),
        "assign_throughput_ratio": round(raw_s / ours_s, 3),
        "goal": "assign_throughput_ratio >= 0.9",
        "extrapolation_40M": {
            "target_rows": args.target_rows,
            "embeddings_gb": round(emb_gb, 1),
            "assumptions": [
                "every pass is linear in rows at the rows/s measured here, on this machine's cores",
                "k-means training time is constant: faiss trains on at most 256*k sampled rows",
                "Birch subclusters and two-level cells as measured; more rows usually means more subclusters, so birch is a lower bound",
                f"embeddings larger than RAM stream from disk at {args.disk_gbps} GB/s once per pass; compute and I/O overlap poorly, so add them for a pessimistic figure",
                "embedding time (hashing or an encoder) is not included",
            ],
            "per_algorithm": extrapolation,
        },
    })


if __name__ == "__main__":
    main()
