"""Birch / k-means / two-level on planted clusters, the finalisation step, metrics by hand."""

import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from in2x_cli.core.cluster import (
    ClusterConfig,
    cluster,
    kmeans_plusplus,
    representatives,
    size_stats,
    sweep,
    tag_recapture,
)
from in2x_cli.core.embed import l2_normalize


def planted(n_per=60, k=8, d=64, noise=0.5, seed=0):
    """k random unit centres, Gaussian noise, re-normalised, rows shuffled."""
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.standard_normal((k, d)))
    y = np.repeat(np.arange(k), n_per)
    x = l2_normalize(centres[y] + noise * rng.standard_normal((len(y), d)) / math.sqrt(d))
    perm = rng.permutation(len(y))
    return x[perm], y[perm]


X, Y = planted()


@pytest.mark.parametrize(
    "config",
    [
        ClusterConfig(algorithm="birch", k=8),
        ClusterConfig(algorithm="kmeans", k=8),
        ClusterConfig(algorithm="two-level", k=8, partitions=3),
        ClusterConfig(algorithm="birch", threshold=0.6),  # no k: the subclusters are the clusters
    ],
    ids=["birch", "kmeans", "two-level", "birch-no-k"],
)
def test_recovers_planted_clusters(config):
    result = cluster(X, config)
    assert adjusted_rand_score(Y, result.labels) >= 0.9
    assert result.n_clusters == 8
    again = cluster(X, config)
    assert np.array_equal(result.labels, again.labels) and np.array_equal(result.distances, again.distances)


def test_chunking_does_not_change_birch_or_kmeans():
    for algo in ("birch", "kmeans"):
        a = cluster(X, ClusterConfig(algorithm=algo, k=8, chunk_size=1000))
        b = cluster(X, ClusterConfig(algorithm=algo, k=8, chunk_size=7))
        assert adjusted_rand_score(a.labels, b.labels) == 1.0


def test_labels_by_size_and_distance_to_member_mean():
    # three points on a circle + one far point; k=2: clusters {0,1,2} (size 3) and {3}
    x = l2_normalize(np.array([[1.0, 0.1], [1.0, 0.0], [1.0, -0.1], [-1.0, 0.0]], dtype=np.float32))
    r = cluster(x, ClusterConfig(algorithm="kmeans", k=2))
    assert r.labels.tolist() == [0, 0, 0, 1] and r.sizes.tolist() == [3, 1]
    assert np.allclose(r.centroids[0], [1.0, 0.0], atol=1e-6)  # the normalised mean of the first three
    cos = x[0] @ np.array([1.0, 0.0])
    assert r.distances[0] == pytest.approx(1 - cos, abs=1e-6) and r.distances[1] == pytest.approx(0.0, abs=1e-6)
    assert r.distances[3] == pytest.approx(0.0, abs=1e-6)


def test_alloc_and_progress_hooks_are_used():
    made, ticks = [], []

    def alloc(shape, dtype):
        made.append((shape, dtype))
        return np.zeros(shape, dtype=dtype)

    def progress(desc, total):
        return lambda n: ticks.append((desc, n))

    cluster(X, ClusterConfig(algorithm="two-level", k=8, partitions=2), alloc=alloc, progress=progress)
    assert ((480,), "int32") in made and ((480,), "int64") in made  # labels, cells, cell order
    assert sum(n for d, n in ticks if d == "distances") == 480


def test_representatives_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 0])
    dist = np.array([0.3, 0.1, 0.2, 0.5, 0.5, 0.1])
    # cluster 0 nearest two: rows 1 and 5 (0.1, tie -> lower row first); cluster 1: both, tie -> row 3
    assert np.flatnonzero(representatives(labels, dist, 2)).tolist() == [1, 3, 4, 5]
    assert np.flatnonzero(representatives(labels, dist, 1)).tolist() == [1, 3]


def test_tag_recapture_by_hand():
    labels = [0, 0, 0, 1, 1, 1]
    tags = [5, 5, 6, 7, 7, -1]  # -1: untagged, ignored
    assert tag_recapture(labels, tags) == pytest.approx(4 / 5)
    assert tag_recapture(labels, [-1] * 6) is None
    assert tag_recapture([0, 1, 2], [1, 2, 1]) == 1.0


def test_size_stats_by_hand():
    assert size_stats([2, 2])["smoothness"] == 1.0 and size_stats([2, 2])["size_cv"] == 0.0
    s = size_stats([3, 1])
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert s["smoothness"] == pytest.approx(h / math.log(2), abs=1e-6)  # 0.811278
    assert s["largest_share"] == 0.75 and s["singleton_share"] == 0.5 and s["size_cv"] == pytest.approx(0.5)


def test_sweep_reports():
    reports = sweep(X, [0.2, 0.6, 1.2], ClusterConfig(), tag_ids=Y)
    assert [r["threshold"] for r in reports] == [0.2, 0.6, 1.2]
    keys = {"threshold", "n_clusters", "subclusters", "tag_recapture", "smoothness", "size_cv", "largest_share",
            "singleton_share", "median_size", "mean_centroid_distance", "seconds"}
    assert all(set(r) == keys for r in reports)
    counts = [r["n_clusters"] for r in reports]
    assert counts[0] > counts[1] >= counts[2]  # a larger radius merges more
    assert reports[1]["n_clusters"] == 8 and reports[1]["tag_recapture"] == 1.0 and reports[1]["smoothness"] == 1.0
    with pytest.raises(ValueError, match="needs birch or two-level"):
        sweep(X, [0.5], ClusterConfig(algorithm="kmeans", k=3))


def test_kmeans_plusplus_spreads_seeds():
    idx = kmeans_plusplus(X, 8, seed=0)
    assert len(set(Y[idx].tolist())) == 8  # one seed per planted cluster


def test_config_validation():
    with pytest.raises(ValueError, match="kmeans needs k"):
        ClusterConfig(algorithm="kmeans")
    with pytest.raises(ValueError, match="unknown algorithm"):
        ClusterConfig(algorithm="dbscan")
    with pytest.raises(ValueError, match="larger than the number of rows"):
        cluster(X[:5], ClusterConfig(algorithm="kmeans", k=6))
