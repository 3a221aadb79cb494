"""Text embedders for clustering: every embedder returns L2-normalised float32 rows.

Clustering works on the unit sphere (cosine geometry), so whatever the encoder, the output is
L2-normalised. Three kinds, in a plain registry (``EMBEDDERS``) plus dotted paths:

``hashing`` (default; offline, no model, language-agnostic) — latent semantic analysis over
  hashed character n-grams:
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

``hf`` — any Hugging Face encoder (``AutoModel``) by directory or cached hub id: token states
  pooled over the attention mask (mean by default). A sentence-transformers directory is read
  without the sentence-transformers package: ``modules.json`` → the pooling mode(s) in
  ``1_Pooling/config.json`` (cls / mean / max / mean_sqrt_len / lasttoken, concatenated when
  several are on, as sentence-transformers does), an optional ``Dense`` layer (safetensors
  weights only), ``max_seq_length`` from ``sentence_bert_config.json``.

``module:function`` — a user function ``(texts: list[str]) -> array (n, dim)``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
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


# --------------------------------------------------------------------------- Hugging Face encoders

POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len", "lasttoken")
# the flags sentence-transformers writes in 1_Pooling/config.json
_POOLING_KEYS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


@dataclass(frozen=True)
class EncoderConfig:
    model: str
    batch_size: int = 64
    max_length: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False


def read_sentence_transformers_layout(path: Path) -> dict[str, Any]:
    """Pooling modes, Dense layers and max length from a sentence-transformers directory.

    Returns ``{"transformer_dir", "pooling": [modes], "dense": [dirs], "normalize": bool,
    "max_length": int | None}``; a plain HF directory gives mean pooling.
    """
    layout: dict[str, Any] = {"transformer_dir": path, "pooling": ["mean"], "dense": [], "normalize": False, "max_length": None}
    modules_file = path / "modules.json"
    if not modules_file.exists():
        return layout
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"invalid modules.json: {exc}", str(modules_file)) from None
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        sub = path / module.get("path", "")
        if kind == "Transformer":
            layout["transformer_dir"] = sub
            for cfg_name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
                cfg_file = sub / cfg_name
                if cfg_file.exists():
                    layout["max_length"] = json.loads(cfg_file.read_text(encoding="utf-8")).get("max_seq_length")
        elif kind == "Pooling":
            cfg = json.loads((sub / "config.json").read_text(encoding="utf-8"))
            modes = [m for m in POOLING_MODES if cfg.get(_POOLING_KEYS[m])]
            if cfg.get("pooling_mode") and not modes:  # newer configs: {"pooling_mode": "mean"}
                modes = [cfg["pooling_mode"]]
            if cfg.get("pooling_mode_weightedmean_tokens"):
                raise UserError("weighted-mean pooling is not supported", str(sub))
            layout["pooling"] = modes or ["mean"]
        elif kind == "Dense":
            layout["dense"].append(sub)
        elif kind == "Normalize":
            layout["normalize"] = True
        else:
            raise UserError(f"unsupported sentence-transformers module {module.get('type')!r} (supported: Transformer, Pooling, Dense, Normalize)", str(modules_file))
    return layout


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


_ACTIVATIONS = {"Tanh": "tanh", "Identity": None, "ReLU": "relu", "GELU": "gelu", "Sigmoid": "sigmoid"}


class EncoderEmbedder:
    """A Hugging Face encoder with masked pooling (see the module docstring)."""

    needs_fit = False

    def __init__(self, config: EncoderConfig) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from in2x_cli.backends.hf import pick_device
        from in2x_cli.io.checkpoint import check_tokenizer, resolve_model

        self.config = config
        root = resolve_model(config.model, what="embedding model", trust_remote_code=config.trust_remote_code)
        self.layout = read_sentence_transformers_layout(root)
        self.device = pick_device(config.device)
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"--device {config.device}: torch sees no CUDA device")
        dtype = config.dtype if config.dtype != "auto" else ("bfloat16" if self.device.startswith("cuda") else "float32")
        src = str(self.layout["transformer_dir"])
        try:
            self.tokenizer = check_tokenizer(AutoTokenizer.from_pretrained(src, trust_remote_code=config.trust_remote_code), src)
            self.model = AutoModel.from_pretrained(src, dtype=getattr(torch, dtype), trust_remote_code=config.trust_remote_code, use_safetensors=True)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load embedding model: {str(exc).splitlines()[0]}", src) from None
        self.model.to(self.device).eval()
        limit = getattr(self.tokenizer, "model_max_length", None) or 512
        self.max_length = int(config.max_length or self.layout["max_length"] or min(limit, 512))
        self.dense = [self._load_dense(d) for d in self.layout["dense"]]
        self._root = root

    def _load_dense(self, path: Path) -> tuple[Any, Any, str | None]:
        from safetensors.torch import load_file

        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        weights = path / "model.safetensors"
        if not weights.exists():
            raise UserError("Dense layer without model.safetensors (pickle weights are refused)", str(path))
        state = load_file(str(weights), device=self.device)
        act_name = str(cfg.get("activation_function", "Identity")).rsplit(".", 1)[-1]
        if act_name not in _ACTIVATIONS:
            raise UserError(f"unsupported Dense activation {act_name!r}", str(path))
        return state["linear.weight"].float(), state.get("linear.bias"), _ACTIVATIONS[act_name]

    def fit(self, sample: Sequence[str]) -> None:
        return None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        out: list[Any] = [None] * len(texts)
        bs = max(1, self.config.batch_size)
        with torch.inference_mode():
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
                hidden = self.model(**enc, return_dict=True).last_hidden_state
                vec = pool(hidden.float(), enc["attention_mask"], self.layout["pooling"])
                for weight, bias, act in self.dense:
                    vec = torch.nn.functional.linear(vec, weight, None if bias is None else bias.float())
                    if act is not None:
                        vec = getattr(torch, act)(vec) if act in ("tanh", "sigmoid", "relu") else torch.nn.functional.gelu(vec)
                vec = vec.cpu().numpy()
                for j, i in enumerate(idx):
                    out[i] = vec[j]
        return l2_normalize(np.stack(out))

    def identity(self) -> dict[str, Any]:
        weights = sorted(p for p in self._root.rglob("*.safetensors"))
        fingerprint = hashlib.sha256()
        for p in [self._root / "config.json", *weights]:
            if p.exists():
                st = p.stat()
                fingerprint.update(f"{p.relative_to(self._root)}:{st.st_size}:{int(st.st_mtime)}\n".encode())
        return {
            "embedder": "hf",
            "model": str(self._root),
            "fingerprint": fingerprint.hexdigest()[:16],
            "pooling": list(self.layout["pooling"]),
            "dense": len(self.dense),
            "max_length": self.max_length,
            "dtype": str(next(self.model.parameters()).dtype),
        }


# --------------------------------------------------------------------------- user functions


class FunctionEmbedder:
    """``module:function`` taking a list of texts and returning an ``(n, dim)`` array."""

    needs_fit = False

    def __init__(self, dotted: str) -> None:
        module_name, _, attr = dotted.partition(":")
        try:
            self.fn: Callable[[list[str]], Any] = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"cannot import embedder {dotted!r}: {exc}") from None
        self.dotted = dotted

    def fit(self, sample: Sequence[str]) -> None:
        return None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        vec = np.asarray(self.fn(list(texts)), dtype=np.float32)
        if vec.ndim != 2 or vec.shape[0] != len(texts):
            raise UserError(f"embedder {self.dotted!r} returned shape {vec.shape} for {len(texts)} texts")
        return l2_normalize(vec)

    def identity(self) -> dict[str, Any]:
        return {"embedder": self.dotted}


EMBEDDERS: dict[str, str] = {"hashing": "hashing", "hf": "hf"}


def make_embedder(name: str, *, model: str | None = None, hashing: HashingConfig = HashingConfig(), encoder: EncoderConfig | None = None) -> Embedder:
    """``hashing``, ``hf`` (needs ``model``), or ``module:function``."""
    if model is not None and name in ("hashing", "hf"):
        return EncoderEmbedder(encoder or EncoderConfig(model=model))
    if name == "hashing":
        return HashingEmbedder(hashing)
    if name == "hf":
        raise UserError("--embedder hf needs --embed-model PATH_OR_ID")
    if ":" in name:
        return FunctionEmbedder(name)
    raise UserError(f"unknown embedder {name!r} (expected {', '.join(EMBEDDERS)} or module:function)")


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
) -> None:
    """Embed ``texts`` in chunks into ``sink``, skipping the ``sink.rows_done`` already there."""
    skip = sink.rows_done
    if progress is not None and skip:
        progress(skip)
    buf: list[str] = []
    for i, text in enumerate(texts):
        if i < skip:
            continue
        buf.append(text)
        if len(buf) >= chunk_size:
            sink.write(embedder.embed(buf))
            if progress is not None:
                progress(len(buf))
            buf = []
    if buf:
        sink.write(embedder.embed(buf))
        if progress is not None:
            progress(len(buf))


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


# The text of a row to embed or grade is read by the one row parser (records.py); its callers here
# import it from this module until they import it from records.
from in2x_cli.records import row_text as row_text  # noqa: E402
