"""Text embedders (pure: no files, no models to load): every embedder returns L2-normalised
float32 rows, because clustering and near-duplicate search work on the unit sphere (cosine).

Which embedder a command uses, by name, is ``in2x_cli/embedders.py`` (the registry; it also holds
the Hugging Face encoder, which loads a model). The two offline ones are here:

``HashingEmbedder`` (registry name ``lsa``; ``cluster``'s default, spelled ``hashing`` there) —
  latent semantic analysis over hashed character n-grams:
    1. ``HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=2**20,
       alternate_sign=False)``: counts of 2–4-character n-grams inside word boundaries (CJK text
       without spaces is one long "word", so it contributes its character bi/tri/4-grams);
    2. the ``vocabulary_size`` = 32,768 hash columns with the highest document frequency in the
       fitting sample are kept (the SVD's components are dense: dim × columns);
       ``TfidfTransformer(sublinear_tf=True)``: 1 + log(tf), times idf, L2 row norm;
    3. ``TruncatedSVD(dim)`` (randomized, 4 power iterations, ``random_state=seed``) to ``dim`` =
       128 dimensions (LSA's usual 100–300; Birch works in 32 PCA dimensions of these anyway);
    4. L2 normalisation.
  Steps 2–3 are fitted once on a seeded uniform sample of at most ``fit_rows`` = 10,000 texts,
  then applied to every text in chunks. Texts in different scripts share no n-grams (Latin vs
  CJK), so they land far apart; Chinese and Japanese share Han characters and can meet in a
  cluster. The sampler downstream balances languages itself, so mixed clusters are harmless.

``ngram_hash_embed`` (registry name ``ngram-hash``; ``synthesize``'s default, spelled ``hashing``
  there) — signed hashed character 2–4-grams in 4,096 buckets, nothing fitted: near-copies and
  paraphrases that share wording are close, in any script (see its docstring).

``pool`` — masked pooling of an encoder's token states (the modes sentence-transformers writes).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from in2x_cli.errors import UserError

if TYPE_CHECKING:
    import numpy as np


class Embedder(Protocol):
    """What the cluster stage needs from an embedder."""

    needs_fit: bool

    def fit(self, sample: Sequence[str]) -> None: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def identity(self) -> dict[str, Any]:
        """Everything that changes the vectors (used in the cache key)."""
        ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


# --------------------------------------------------------------------------- hashing (LSA)


@dataclass(frozen=True)
class HashingConfig:
    dim: int = 128
    ngram_min: int = 2
    ngram_max: int = 4
    n_features: int = 2**20
    vocabulary_size: int = 2**15
    fit_rows: int = 10_000
    svd_iter: int = 4
    seed: int = 0


class HashingEmbedder:
    """Hashed char n-gram TF-IDF → TruncatedSVD → L2 norm (see the module docstring)."""

    needs_fit = True
    cpu_parallel = True  # pure CPU, one thread: embed_stream may spread chunks over processes

    def __init__(self, config: HashingConfig = HashingConfig()) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self.config = config
        self._vectorizer = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=(config.ngram_min, config.ngram_max),
            n_features=config.n_features,
            alternate_sign=False,
            norm=None,
            lowercase=True,
            dtype=_float32(),
        )
        self._tfidf: Any = None
        self._svd: Any = None
        self._columns: Any = None
        self.dim = config.dim

    def fit(self, sample: Sequence[str]) -> None:
        import numpy as np
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfTransformer

        counts = self._vectorizer.transform(list(sample))
        # keep the vocabulary_size hash columns present in most sample texts: the SVD's dense
        # components are dim × columns, so 2**20 columns would cost gigabytes
        df = counts.getnnz(axis=0)
        present = np.flatnonzero(df)
        if len(present) == 0:
            raise UserError("nothing to embed: every sampled text is empty")
        if len(present) > self.config.vocabulary_size:
            top = np.argsort(-df[present], kind="stable")[: self.config.vocabulary_size]
            present = np.sort(present[top])
        self._columns = present
        counts = counts[:, present]
        self._tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
        weighted = self._tfidf.transform(counts)
        # TruncatedSVD needs n_components < n_features and, to be meaningful, < n_samples.
        self.dim = max(1, min(self.config.dim, weighted.shape[0] - 1, weighted.shape[1] - 1))
        self._svd = TruncatedSVD(n_components=self.dim, algorithm="randomized", n_iter=self.config.svd_iter, random_state=self.config.seed)
        with warnings.catch_warnings():  # degenerate samples (one distinct text) divide 0 by 0 in explained_variance_ratio_
            warnings.simplefilter("ignore", RuntimeWarning)
            self._svd.fit(weighted)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._svd is None:
            raise RuntimeError("HashingEmbedder.embed before fit")
        weighted = self._tfidf.transform(self._vectorizer.transform(list(texts))[:, self._columns])
        return l2_normalize(self._svd.transform(weighted))

    def identity(self) -> dict[str, Any]:
        return {"embedder": "hashing", **asdict(self.config)}


def _float32() -> Any:
    import numpy as np

    return np.float32


# --------------------------------------------------------------------------- n-gram hashing (no fitting)


def ngram_hash_embed(texts: Sequence[str], dim: int = 4096) -> Any:
    """A language-agnostic offline embedding: hashed character 2–4-grams, L2-normalised.

    Each n-gram of the NFKC-lower-cased text (whitespace collapsed, padded with spaces) adds ±1 to
    bucket ``crc32(ngram) mod dim`` (sign from a second hash, which keeps collisions unbiased).
    Cosine similarity of these vectors is high for near-copies and paraphrases that share wording,
    in any script; it is not a semantic model (pass ``--embedder module:function`` for one).
    Returns a float32 array of shape (len(texts), dim).
    """
    import numpy as np

    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        norm = " " + " ".join(unicodedata.normalize("NFKC", text).lower().split()) + " "
        for n in (2, 3, 4):
            for i in range(len(norm) - n + 1):
                gram = norm[i : i + n].encode("utf-8")
                h = zlib.crc32(gram)
                sign = 1.0 if zlib.adler32(gram) & 1 else -1.0
                out[row, h % dim] += sign
        length = float(np.linalg.norm(out[row]))
        if length > 0:
            out[row] /= length
    return out


# --------------------------------------------------------------------------- Hugging Face encoders: pooling

POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len", "lasttoken")


def pool(hidden: Any, mask: Any, modes: Sequence[str]) -> Any:
    """Pool token states ``(b, t, h)`` over ``mask`` ``(b, t)``; several modes concatenate."""
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    lengths = m.sum(dim=1).clamp(min=1.0)
    parts = []
    for mode in modes:
        if mode == "mean":
            parts.append((hidden * m).sum(dim=1) / lengths)
        elif mode == "mean_sqrt_len":
            parts.append((hidden * m).sum(dim=1) / lengths.sqrt())
        elif mode == "max":
            parts.append(hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(dim=1).values)
        elif mode == "cls":
            parts.append(hidden[:, 0])
        elif mode == "lasttoken":
            # the last unmasked position, for right or left padding alike
            positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
            last = (positions * mask).argmax(dim=1)
            parts.append(hidden[torch.arange(hidden.shape[0], device=hidden.device), last])
        else:
            raise ValueError(f"unknown pooling mode {mode!r}")
    return torch.cat(parts, dim=-1)


def cache_key(text_digest: str, identity: dict[str, Any]) -> str:
    """The embedding cache file stem: sha256 over the texts' digest and the embedder identity."""
    payload = json.dumps({"texts": text_digest, "embedder": identity}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- streaming helpers


class ArraySink(Protocol):
    """Where embeddings go (``io.arrays.NpyBuilder``): rows written so far, append a block."""

    rows_done: int

    def write(self, block: np.ndarray) -> None: ...


def embed_stream(
    texts: Iterable[str],
    embedder: Embedder,
    sink: ArraySink,
    *,
    chunk_size: int = 4096,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> None:
    """Embed ``texts`` in chunks into ``sink``, skipping the ``sink.rows_done`` already there.

    ``workers`` > 1 embeds chunks in that many forked processes (each inherits the fitted
    embedder), at most two chunks per worker in flight, written in input order: the same chunks
    through the same function, so the same rows as one process. Only for embedders that are
    plain CPU code (``cpu_parallel``); an encoder uses its own threads or a GPU."""
    skip = sink.rows_done
    if progress is not None and skip:
        progress(skip)

    def chunks() -> Iterator[list[str]]:
        buf: list[str] = []
        for i, text in enumerate(texts):
            if i < skip:
                continue
            buf.append(text)
            if len(buf) >= chunk_size:
                yield buf
                buf = []
        if buf:
            yield buf

    def done(block: np.ndarray, n: int) -> None:
        sink.write(block)
        if progress is not None:
            progress(n)

    if workers <= 1:
        for buf in chunks():
            done(embedder.embed(buf), len(buf))
        return
    from collections import deque

    from in2x_cli.workers import fork_pool

    _EMBED_JOB["embedder"] = embedder
    try:
        with fork_pool(workers) as pool:
            pending: deque[tuple[Any, int]] = deque()
            for buf in chunks():
                pending.append((pool.apply_async(_embed_chunk, (buf,)), len(buf)))
                if len(pending) >= 2 * workers:
                    res, n = pending.popleft()
                    done(res.get(), n)
            while pending:
                res, n = pending.popleft()
                done(res.get(), n)
    finally:
        _EMBED_JOB.clear()


_EMBED_JOB: dict[str, Any] = {}


def _embed_chunk(texts: list[str]) -> Any:
    return _EMBED_JOB["embedder"].embed(texts)


class Reservoir:
    """A uniform sample of at most ``size`` items from a stream of unknown length (Algorithm L,
    Li 1994: O(size · log(n / size)) random draws), deterministic given ``seed``."""

    def __init__(self, size: int, seed: int) -> None:
        import math
        import random

        self.size = size
        self.items: list[Any] = []
        self._rng = random.Random(seed)
        self._math = math
        self._seen = 0
        self._next = 0
        self._w = 1.0

    def _advance(self) -> None:
        log = self._math.log
        self._w *= self._math.exp(log(1.0 - self._rng.random()) / self.size) if self.size else 1.0
        self._next += int(log(1.0 - self._rng.random()) / log(1.0 - self._w)) + 1 if self._w < 1.0 else 1

    def add(self, item: Any) -> None:
        i = self._seen
        self._seen += 1
        if self.size <= 0:
            return
        if i < self.size:
            self.items.append(item)
            if i == self.size - 1:
                self._next = i
                self._advance()
            return
        if i == self._next:
            self.items[self._rng.randrange(self.size)] = item
            self._advance()


class TextDigest:
    """sha256 over a sequence of texts (order matters), for the embedding cache key."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.count = 0

    def add(self, text: str) -> None:
        self._h.update(text.encode("utf-8", "surrogatepass"))
        self._h.update(b"\x00")
        self.count += 1

    def hexdigest(self) -> str:
        return self._h.hexdigest()

