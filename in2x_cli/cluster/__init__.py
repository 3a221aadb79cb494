"""``in2x cluster``: embed every row and cluster the embeddings (``run.py``). The algorithms are in
``core/cluster.py`` (Birch, spherical k-means, two-level) and ``core/embed.py`` (offline
embedders); which embedder a name means is ``in2x_cli/embedders.py``."""
