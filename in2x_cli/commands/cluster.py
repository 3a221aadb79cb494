"""``in2x cluster``: options → ``ClusterRun`` → ``cluster.run.run_cluster`` (the stage)."""

from __future__ import annotations

from pathlib import Path

import typer

from in2x_cli.commands.common import seed_option, trust_remote_code_option


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


def cluster(
    input: str = typer.Argument("-", help="Input JSONL ('-' = stdin) with an instruction, prompt, messages or text per row."),
    output: str = typer.Option("-", "--output", "-o", help="Output JSONL ('-' = stdout): input rows + cluster + centroid_distance."),
    field: str = typer.Option(None, "--field", help="Field holding the text (default: instruction/prompt/query, else the first user message of messages, else text)."),
    algorithm: str = typer.Option("birch", "--algorithm", "-a", help="birch (the paper's), kmeans (faiss, spherical; GPU when faiss has one) or two-level (k-means cells, Birch inside each; for tens of millions of rows)."),
    k: int = typer.Option(None, "--k", help="Number of clusters: birch/two-level merge subclusters into k at the end (default: keep every subcluster); required for kmeans. The paper ends with ~1.5M clusters for 40M rows; python -m in2x_cli.cluster.threshold gives that ratio and picks --threshold from a sweep."),
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
    from in2x_cli.cluster.run import ClusterRun, run_cluster
    from in2x_cli.io import check_output_path
    from in2x_cli.io.arrays import default_cache_dir

    check_output_path(output)
    sweep = _parse_thresholds(sweep_threshold)
    run_cluster(ClusterRun(input, output, field, embedder, embed_model, dim, algorithm, k, threshold, branching_factor, reduce_dim,
                           partitions, niter, representatives, sweep, None if no_cache else str(cache_dir or default_cache_dir("embeddings")),
                           device, batch_size, trust_remote_code, seed))


def register(app: typer.Typer) -> None:
    app.command("cluster")(cluster)
