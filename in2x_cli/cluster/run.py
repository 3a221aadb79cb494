"""``in2x cluster``, read top to bottom: embed instructions and cluster them.

Three streaming passes over the input, so memory holds one chunk of rows plus the clusters:
(1) read and validate, digest the texts for the cache key, keep a seeded sample for fitting;
(2) embed into a memory-mapped ``.npy`` cache (skipped when the cache already holds it);
(3) cluster the memory-mapped embeddings, then re-read the input and write each row with
``cluster`` and ``centroid_distance``. stdin is spooled to a temp file during pass 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from in2x_cli import console


@dataclass(frozen=True)
class ClusterRun:
    """Resolved settings of one ``in2x cluster`` run (recorded in the provenance)."""

    input: str
    output: str
    field: str | None
    embedder: str
    embed_model: str | None
    dim: int
    algorithm: str
    k: int | None
    threshold: float
    branching_factor: int
    reduce_dim: int
    partitions: int | None
    niter: int
    representatives: int | None
    sweep: tuple[float, ...]
    cache_dir: str | None
    device: str
    batch_size: int
    trust_remote_code: bool
    seed: int


def _check_faiss(config: Any) -> None:
    """k-means paths need faiss (fail before embedding, saying how to install it); say on one
    stderr line when k-means will run on CPU although the machine has a GPU. Birch needs none."""
    from in2x_cli.core import cluster as core
    from in2x_cli.devices import driver_gpu_count
    from in2x_cli.errors import UserError

    if config.algorithm == "birch":
        return
    try:
        gpus = core.faiss_gpu_count()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if config.gpu is not False and gpus == 0 and driver_gpu_count():
        console.warn(
            f"cluster: k-means runs on CPU although nvidia-smi lists {driver_gpu_count()} GPU(s): this faiss has no GPU "
            "support (faiss-cpu?). For GPU k-means: pip uninstall -y faiss-cpu && pip install faiss-gpu (x86_64, sm_70-sm_90), "
            "or conda install -c pytorch faiss-gpu; --device cpu silences this"
        )


def run_cluster(run: ClusterRun) -> None:
    """Embed every row of ``run.input`` and cluster; write the rows (or one report per sweep
    threshold) to ``run.output``."""
    import tempfile
    from array import array

    from in2x_cli import provenance
    from in2x_cli.core import cluster as core
    from in2x_cli.core.embed import HashingConfig, Reservoir, TextDigest
    from in2x_cli.embedders import canonical
    from in2x_cli.errors import UserError
    from in2x_cli.io import JsonlWriter
    from in2x_cli.io.arrays import ensure_dir, scratch_array
    from in2x_cli.io.multipass import MultiPassInput
    from in2x_cli.records import row_text

    try:
        config = core.ClusterConfig(algorithm=run.algorithm, k=run.k, threshold=run.threshold, branching_factor=run.branching_factor,
                                    reduce_dim=run.reduce_dim, partitions=run.partitions, niter=run.niter, seed=run.seed,
                                    gpu=False if run.device == "cpu" else None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if run.representatives is not None and run.representatives < 1:
        raise UserError("--representatives must be >= 1")
    _check_faiss(config)
    with tempfile.TemporaryDirectory(prefix="in2x-cluster-") as tmp, MultiPassInput(run.input, tmp_dir=tmp) as src, _progress_factory() as progress:
        workdir = str(ensure_dir(run.cache_dir)) if run.cache_dir else tmp
        # pass 1. only the LSA embedder is fitted (on a sample of fit_rows texts); others need one text to learn the dimension
        fit_rows = HashingConfig().fit_rows if canonical(run.embedder, "lsa") == "lsa" and not run.embed_model else 1
        digest, sample, tags, tag_ids = TextDigest(), Reservoir(fit_rows, run.seed), {}, array("i")  # tag ids: sweep only
        overwritten = 0
        for line in src.first():
            text = row_text(line.data, run.field, line.where)
            digest.add(text)
            sample.add(text)
            overwritten += "cluster" in line.data
            if run.sweep:
                tag = line.data.get("tag")
                tag_ids.append(tags.setdefault(tag, len(tags)) if isinstance(tag, str) else -1)
        n = src.rows
        # pass 2. embeddings
        X, embed_info = _embeddings(run, src, n, digest.hexdigest(), sample.items, progress, workdir)

        def alloc(shape: tuple[int, ...], dtype: str) -> Any:
            return scratch_array(shape, dtype, dir=workdir)

        def meta(extra: dict[str, Any]) -> Callable[[], dict[str, Any]]:
            return lambda: provenance.collect(command="cluster", config=run, inputs=[run.input], seed=run.seed, extra=extra)

        # pass 3. cluster (or one report per sweep threshold), then write the rows
        try:
            if run.sweep:
                reports = core.sweep(X, run.sweep, config, tag_ids=tag_ids if tags else None, alloc=alloc, progress=progress)
                with JsonlWriter(run.output, meta=meta({"embedding": embed_info})) as writer:
                    writer.write_many({"algorithm": run.algorithm, **r} for r in reports)
                return
            result = core.run(core.Prepared(X, config, alloc, progress))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        keep = core.representatives(result.labels, result.distances, run.representatives) if run.representatives else None
        if overwritten:
            console.warn(f"{overwritten} input rows already had a 'cluster' field; it is replaced")
        with JsonlWriter(run.output, meta=meta({"embedding": embed_info, "clustering": result.info})) as writer:
            for i, line in enumerate(src.again()):
                if keep is None or keep[i]:
                    writer.write({**line.data, "cluster": int(result.labels[i]), "centroid_distance": round(float(result.distances[i]), 6)})
    console.info(f"cluster: {n} rows -> {result.n_clusters} clusters ({run.algorithm}, {result.info['seconds']} s)" + (f", {writer.rows_written} representatives kept" if keep is not None else ""))


def _embeddings(run: ClusterRun, src: Any, n: int, digest: str, sample: list[str], progress: Any, workdir: str) -> tuple[Any, dict[str, Any]]:
    """The (n, dim) embeddings, from the cache or computed into it (resumable)."""
    from in2x_cli.core.embed import HashingConfig, cache_key, embed_stream
    from in2x_cli.embedders import EncoderConfig, make_embedder
    from in2x_cli.io.arrays import NpyBuilder, open_npy
    from in2x_cli.records import row_text

    encoder = (
        EncoderConfig(model=run.embed_model, batch_size=run.batch_size, device=run.device, trust_remote_code=run.trust_remote_code)
        if run.embed_model
        else None
    )
    embedder = make_embedder(run.embedder, model=run.embed_model, hashing=HashingConfig(dim=run.dim, seed=run.seed), encoder=encoder)
    identity = embedder.identity()
    key = cache_key(digest, identity)
    path = Path(workdir) / f"{key}.npy"
    info = {"embedder": identity, "cache": str(path) if run.cache_dir else None}
    if path.exists():
        X = open_npy(path)
        if X.shape[0] == n:
            console.info(f"cluster: embeddings from cache {path}")
            return X, {**info, "cached": True}
    if embedder.needs_fit:
        embedder.fit(sample)
    dim = int(embedder.embed(sample[:1]).shape[1])
    builder = NpyBuilder(path, (n, dim), info={"embedder": identity, "texts": digest})
    texts = (row_text(line.data, run.field, line.where) for line in src.again())
    embed_stream(texts, embedder, builder, chunk_size=4096, progress=progress("embed", n), workers=_embed_workers(embedder, n))
    return builder.finish(), {**info, "cached": False}


def _embed_workers(embedder: Any, n: int) -> int:
    """Processes for the embedding pass: one per usable CPU for a pure-CPU embedder (the LSA
    hashing one) on inputs of at least two chunks, else 1. ``IN2X_EMBED_WORKERS`` overrides."""
    import os

    from in2x_cli.workers import can_fork, usable_cpus

    env = os.environ.get("IN2X_EMBED_WORKERS")
    if not can_fork():
        return 1
    if env and env.isdigit():
        return max(1, int(env))
    if not getattr(embedder, "cpu_parallel", False) or n < 2 * 4096:
        return 1
    return usable_cpus()


@contextmanager
def _progress_factory() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    with console.progress() as bar:

        def factory(description: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        yield factory
