"""The embedder registry: every text embedder in2x offers, by one name each (``cluster`` and
``synthesize`` both resolve ``--embedder`` here).

    name              what                                                         fitted
    lsa               hashed char 2–4-gram TF-IDF → truncated SVD → 128 dims        on a sample
                      (``core.embed.HashingEmbedder``)
    ngram-hash        signed hashed char 2–4-grams, 4,096 dims                      no
                      (``core.embed.ngram_hash_embed``)
    hf                a Hugging Face / sentence-transformers encoder (``--embed-model``)  no
    module:function   a user function ``(texts: list[str]) -> array (n, dim)``      no

``hashing``, the offline default both commands have always spelled so, keeps its meaning in each:
``lsa`` in ``cluster``, ``ngram-hash`` in ``synthesize`` (the ``hashing_means`` argument).

``hf`` — any Hugging Face encoder (``AutoModel``) by directory or cached hub id: token states
pooled over the attention mask (mean by default). A sentence-transformers directory is read
without the sentence-transformers package: ``modules.json`` → the pooling mode(s) in
``1_Pooling/config.json`` (cls / mean / max / mean_sqrt_len / lasttoken, concatenated when several
are on, as sentence-transformers does), an optional ``Dense`` layer (safetensors weights only),
``max_seq_length`` from ``sentence_bert_config.json``. This module loads the model; the pooling
arithmetic is ``core.embed.pool``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from in2x_cli.core.embed import (
    POOLING_MODES,
    Embedder,
    HashingConfig,
    HashingEmbedder,
    l2_normalize,
    ngram_hash_embed,
    pool,
)
from in2x_cli.errors import UserError

if TYPE_CHECKING:
    import numpy as np

EMBEDDERS: dict[str, str] = {
    "lsa": "hashed character n-gram TF-IDF reduced by SVD (LSA), fitted on a sample of the texts",
    "ngram-hash": "signed hashed character 2-4-grams, 4096 dimensions, nothing fitted",
    "hf": "a Hugging Face / sentence-transformers encoder (--embed-model)",
}
LEGACY_NAME = "hashing"  # cluster: lsa; synthesize: ngram-hash (see the module docstring)


def canonical(name: str, hashing_means: str) -> str:
    """The registry name for ``name`` (``hashing`` is ``hashing_means``)."""
    return hashing_means if name == LEGACY_NAME else name


# --------------------------------------------------------------------------- Hugging Face encoders

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


# --------------------------------------------------------------------------- functions


class FunctionEmbedder:
    """A function taking a list of texts and returning an ``(n, dim)`` array (a user's
    ``module:function``, or a built-in such as ``ngram-hash``), shape-checked and L2-normalised."""

    needs_fit = False

    def __init__(self, fn: Callable[[list[str]], Any], name: str) -> None:
        self.fn = fn
        self.dotted = name

    @classmethod
    def from_dotted(cls, dotted: str) -> FunctionEmbedder:
        from in2x_cli.plugins import import_dotted

        return cls(import_dotted(dotted, what="embedder", callable_=True), dotted)

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


# --------------------------------------------------------------------------- the registry


def make_embedder(
    name: str,
    *,
    hashing_means: str = "lsa",
    model: str | None = None,
    hashing: HashingConfig = HashingConfig(),
    encoder: EncoderConfig | None = None,
) -> Embedder:
    """The embedder called ``name``: a registry name, ``hashing`` (= ``hashing_means``), or
    ``module:function``. With ``model``, a Hugging Face encoder replaces any built-in."""
    name = canonical(name, hashing_means)
    if model is not None and name in EMBEDDERS:
        return EncoderEmbedder(encoder or EncoderConfig(model=model))
    if name == "lsa":
        return HashingEmbedder(hashing)
    if name == "ngram-hash":
        return FunctionEmbedder(ngram_hash_embed, name)
    if name == "hf":
        raise UserError("--embedder hf needs --embed-model PATH_OR_ID")
    if ":" in name:
        return FunctionEmbedder.from_dotted(name)
    raise UserError(f"unknown embedder {name!r} (expected {', '.join(EMBEDDERS)}, {LEGACY_NAME} or module:function)")


def embed_function(name: str, *, model: str | None = None, hashing_means: str = "ngram-hash") -> Callable[[Sequence[str]], Any]:
    """For a stage that embeds without fitting (synthesize's near-duplicate index): the function
    ``(texts) -> (n, dim)`` of embedder ``name``; with ``model``, that encoder's (it replaces
    ``--embedder``). A user function is returned as written (the caller checks and normalises)."""
    if model:
        return EncoderEmbedder(EncoderConfig(model=model)).embed
    embedder = make_embedder(name, hashing_means=hashing_means)
    if embedder.needs_fit:
        raise UserError(f"embedder {name!r} is fitted on a sample of the texts; here use ngram-hash, module:function or --embed-model")
    return embedder.fn if isinstance(embedder, FunctionEmbedder) else embedder.embed


__all__ = ["EMBEDDERS", "EncoderConfig", "EncoderEmbedder", "FunctionEmbedder", "canonical", "embed_function", "make_embedder"]
