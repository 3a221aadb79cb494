"""``in2x cluster``: embed instructions and cluster them (Birch / spherical k-means / two-level).

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

import typer

from in2x_cli import console
from in2x_cli.commands.common import seed_option, trust_remote_code_option


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


@contextmanager
def _progress_factory() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    with console.progress() as bar:

        def factory(description: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        yield factory


def _parse_thresholds(text: str | None) -> tuple[float, ...]:
    from in2x_cli.errors import UserError

    if not text:
        return ()
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise UserError(f"--sweep-threshold takes numbers separated by commas, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise UserError(f"--sweep-threshold values must be > 0, got {text!r}")
    return values


def _embeddings(run: ClusterRun, src: Any, n: int, digest: str, sample: list[str], progress: Any, workdir: str) -> tuple[Any, dict[str, Any]]:
    """The (n, dim) embeddings, from the cache or computed into it (resumable)."""
    from in2x_cli.core.embed import HashingConfig, cache_key, embed_stream, row_text
    from in2x_cli.embedders import EncoderConfig, make_embedder
    from in2x_cli.io.arrays import NpyBuilder, open_npy

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
    embed_stream(texts, embedder, builder, chunk_size=4096, progress=progress("embed", n))
    return builder.finish(), {**info, "cached": False}


def cluster(
    input: str = typer.Argument("-", help="Input JSONL ('-' = stdin) with an instruction, prompt, messages or text per row."),
    output: str = typer.Option("-", "--output", "-o", help="Output JSONL ('-' = stdout): input rows + cluster + centroid_distance."),
    field: str = typer.Option(None, "--field", help="Field holding the text (default: instruction/prompt/query, else the first user message of messages, else text)."),
    algorithm: str = typer.Option("birch", "--algorithm", "-a", help="birch (the paper's), kmeans (faiss, spherical; GPU when faiss has one) or two-level (k-means cells, Birch inside each; for tens of millions of rows)."),
    k: int = typer.Option(None, "--k", help="Number of clusters: birch/two-level merge subclusters into k at the end (default: keep every subcluster); required for kmeans."),
    threshold: float = typer.Option(0.5, "--threshold", help="Birch subcluster radius on the unit sphere after PCA (chord distance; the paper tunes it, default ours)."),
    branching_factor: int = typer.Option(50, "--branching-factor", help="Birch CF-tree branching factor (sklearn default)."),
    reduce_dim: int = typer.Option(32, "--reduce-dim", help="PCA dimensions Birch works in (rows re-normalised after PCA)."),
    partitions: int = typer.Option(None, "--partitions", help="two-level: coarse k-means cells (default: one per 200,000 rows)."),
    niter: int = typer.Option(20, "--niter", help="k-means iterations (faiss)."),
    representatives: int = typer.Option(None, "--representatives", help="Keep only the K rows nearest each cluster centre."),
    sweep_threshold: str = typer.Option(None, "--sweep-threshold", help="Comma-separated Birch thresholds: print one JSON report per threshold instead of rows: n_clusters; tag_recapture = share of rows with a `tag` whose tag is their cluster's majority tag (null when no row has one); smoothness = size entropy H(p)/ln K with p_c = n_c/N (1 = equal sizes, near 0 = one cluster holds almost all); plus size_cv, largest_share, singleton_share, median_size, mean_centroid_distance."),
    embedder: str = typer.Option("hashing", "--embedder", help="hashing (= lsa: built-in char n-gram LSA, offline, any language), ngram-hash (unfitted char n-gram hashing), or module:function returning an (n, dim) array (registry: in2x_cli/embedders.py)."),
    embed_model: str = typer.Option(None, "--embed-model", help="A Hugging Face / sentence-transformers encoder (directory or cached hub id), mean-pooled; replaces hashing."),
    dim: int = typer.Option(128, "--dim", help="hashing embedder: SVD (LSA) dimensions."),
    batch_size: int = typer.Option(64, "--batch-size", help="Encoder batch size (--embed-model)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda: the encoder's device; cpu also keeps faiss off the GPU."),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="Embedding cache (default ~/.cache/in2x/embeddings, or $IN2X_CACHE_DIR/embeddings); keyed by a hash of the texts and the embedder, so reruns skip embedding."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Embed into a temporary file that is deleted afterwards."),
    trust_remote_code: bool = trust_remote_code_option(),
    seed: int = seed_option(),
) -> None:
    """Embed every row and cluster the embeddings; add `cluster` (0 = largest) and
    `centroid_distance` (1 − cosine to the cluster's mean embedding) to each row.

    Example: in2x cluster pool.jsonl --k 2000 -o clustered.jsonl && in2x sample-difficulty clustered.jsonl --total 1000 > picked.jsonl

    Tune the Birch threshold the way the paper did: in2x cluster pool.jsonl --sweep-threshold 0.3,0.5,0.7
    """
    import tempfile
    from array import array

    from in2x_cli import provenance
    from in2x_cli.core import cluster as core
    from in2x_cli.core.embed import HashingConfig, Reservoir, TextDigest, row_text
    from in2x_cli.embedders import canonical
    from in2x_cli.errors import UserError
    from in2x_cli.io import JsonlWriter, check_output_path
    from in2x_cli.io.arrays import default_cache_dir, ensure_dir, scratch_array
    from in2x_cli.io.multipass import MultiPassInput

    check_output_path(output)
    sweep = _parse_thresholds(sweep_threshold)
    run = ClusterRun(input, output, field, embedder, embed_model, dim, algorithm, k, threshold, branching_factor, reduce_dim,
                     partitions, niter, representatives, sweep, None if no_cache else str(cache_dir or default_cache_dir("embeddings")),
                     device, batch_size, trust_remote_code, seed)
    try:
        config = core.ClusterConfig(algorithm=algorithm, k=k, threshold=threshold, branching_factor=branching_factor, reduce_dim=reduce_dim,
                                    partitions=partitions, niter=niter, seed=seed, gpu=False if device == "cpu" else None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if representatives is not None and representatives < 1:
        raise UserError("--representatives must be >= 1")
    with tempfile.TemporaryDirectory(prefix="in2x-cluster-") as tmp, MultiPassInput(input, tmp_dir=tmp) as src, _progress_factory() as progress:
        workdir = str(ensure_dir(run.cache_dir)) if run.cache_dir else tmp
        # only the hashing embedder is fitted (on a sample of fit_rows texts); others need one text to learn the dimension
        fit_rows = HashingConfig().fit_rows if canonical(embedder, "lsa") == "lsa" and not embed_model else 1
        digest, sample, tags, tag_ids = TextDigest(), Reservoir(fit_rows, seed), {}, array("i")  # tag ids: sweep only
        overwritten = 0
        for line in src.first():
            text = row_text(line.data, field, line.where)
            digest.add(text)
            sample.add(text)
            overwritten += "cluster" in line.data
            if sweep:
                tag = line.data.get("tag")
                tag_ids.append(tags.setdefault(tag, len(tags)) if isinstance(tag, str) else -1)
        n = src.rows
        X, embed_info = _embeddings(run, src, n, digest.hexdigest(), sample.items, progress, workdir)

        def alloc(shape: tuple[int, ...], dtype: str) -> Any:
            return scratch_array(shape, dtype, dir=workdir)

        def meta(extra: dict[str, Any]) -> Callable[[], dict[str, Any]]:
            return lambda: provenance.collect(command="cluster", config=run, inputs=[input], seed=seed, extra=extra)

        try:
            if sweep:
                reports = core.sweep(X, sweep, config, tag_ids=tag_ids if tags else None, alloc=alloc, progress=progress)
                with JsonlWriter(output, meta=meta({"embedding": embed_info})) as writer:
                    writer.write_many({"algorithm": algorithm, **r} for r in reports)
                return
            result = core.run(core.Prepared(X, config, alloc, progress))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        keep = core.representatives(result.labels, result.distances, representatives) if representatives else None
        if overwritten:
            console.warn(f"{overwritten} input rows already had a 'cluster' field; it is replaced")
        with JsonlWriter(output, meta=meta({"embedding": embed_info, "clustering": result.info})) as writer:
            for i, line in enumerate(src.again()):
                if keep is None or keep[i]:
                    writer.write({**line.data, "cluster": int(result.labels[i]), "centroid_distance": round(float(result.distances[i]), 6)})
    console.info(f"cluster: {n} rows -> {result.n_clusters} clusters ({algorithm}, {result.info['seconds']} s)" + (f", {writer.rows_written} representatives kept" if keep is not None else ""))


def register(app: typer.Typer) -> None:
    app.command("cluster")(cluster)
