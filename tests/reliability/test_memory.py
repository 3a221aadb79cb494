"""Large inputs stay bounded: peak memory of cluster (assign), sample-difficulty (with and without
grading), translate (scripted backend) and eval at 1x and 10x input, each in a fresh interpreter
(tests/reliability/rss_probe.py: peak anonymous memory = the heap, which streaming bounds;
memory-mapped embeddings are file-backed and not counted).

Bounds, per row added (1,000 → 10,000 rows of about 1 KB):
- streaming commands keep per-row bookkeeping only (ids, labels, levels; a slim grade record per
  graded prompt): growth <= 4 MB + 0.5 KB/row — holding the rows would cost a multiple of their
  size (translate did: ~2.3 KB/row; cluster kept its 10,000-row fit sample even for embedders that
  need none);
- eval holds each segment's texts and statistics for paired tests and segment output, but no
  longer sacreBLEU's per-reference n-gram caches for the whole test set (~60 KB/segment before:
  1.2 GB at 20,000 segments): growth <= 4 MB + 5 KB/segment.
bench/reliability.py measures the same at larger sizes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.reliability.scenarios import MEMORY_WORKLOADS, measure_memory

SIZES = (1000, 10000)
PER_ROW = {"streaming": 512, "texts": 5 * 1024}  # bytes of peak growth allowed per added row
SLACK = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("memory")
    with ThreadPoolExecutor(max_workers=2) as pool:  # each measurement is its own process
        futures = {name: pool.submit(measure_memory, name, root / name.split()[0], SIZES) for name in MEMORY_WORKLOADS}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("name", list(MEMORY_WORKLOADS))
def test_peak_memory_does_not_grow_with_the_input(name: str, measured: dict[str, dict]) -> None:
    r = measured[name]
    small, large = r["runs"]
    added_rows = large["rows"] - small["rows"]
    growth = (large["peak_anon_kb"] - small["peak_anon_kb"]) * 1024
    limit = SLACK + PER_ROW[r["bound"]] * added_rows
    assert growth <= limit, f"{name}: peak heap grew {growth / 2**20:.1f} MB for {added_rows} more rows (limit {limit / 2**20:.1f} MB): {r}"


def test_chunked_sacrebleu_statistics_equal_the_unchunked_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """eval's bounded-memory path (references cached chunk by chunk, shared by all systems) gives
    the same statistics and scores as one cache for the whole test set."""
    import numpy as np

    from in2x_cli.core import metrics as M

    refs = [f"the cat number {i} sat on mat {i % 3}" for i in range(23)]
    systems = [[f"a cat number {i} sat on the mat" for i in range(23)], [r.upper() if i % 2 else r for i, r in enumerate(refs)]]
    ctx = M.MetricContext(tgt_lang="en")
    for spec in ("bleu", "chrf", "ter"):
        whole = [M.score_system(M.build_metric(M.parse_metric_specs([spec])[0], ctx), h, refs, [""] * 23) for h in systems]
        monkeypatch.setattr(M, "REF_CACHE_SEGMENTS", 5)
        chunked = M.score_systems(M.build_metric(M.parse_metric_specs([spec])[0], ctx), systems, refs, [""] * 23)
        one = M.build_metric(M.parse_metric_specs([spec])[0], ctx).segment_stats(systems[0], refs, [""] * 23)
        monkeypatch.undo()
        for w, c in zip(whole, chunked, strict=True):
            assert np.array_equal(w.stats, c.stats) and w.score == c.score and w.segments == c.segments, spec
        assert np.array_equal(one, whole[0].stats), spec
