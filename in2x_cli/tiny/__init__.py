"""Tiny models built offline in seconds, for tests, ``make demo`` and ``in2x tiny-model``.

- ``corpus.py``: the bundled en/ja/zh corpus (``in2x_cli/data/tiny``);
- ``model.py``: ``build_tiny_model``: a byte-level BPE tokenizer trained on that corpus, a ChatML
  template, a Qwen2-shaped causal LM (``TinyConfig``), optionally warmed up on the corpus;
- ``run.py``: the ``in2x tiny-model`` stage (atomic output directory).

Imported by every stage's tests, the demo and the benchmarks, hence the names below. Heavy imports
(torch, transformers, tokenizers) happen inside functions.
"""

from in2x_cli.tiny.corpus import CORPUS_FILES, corpus_dir, corpus_texts, load_corpus
from in2x_cli.tiny.model import CHATML_TEMPLATE, SPECIAL_TOKENS, TinyConfig, build_tiny_model, build_tokenizer

__all__ = [
    "CHATML_TEMPLATE",
    "CORPUS_FILES",
    "SPECIAL_TOKENS",
    "TinyConfig",
    "build_tiny_model",
    "build_tokenizer",
    "corpus_dir",
    "corpus_texts",
    "load_corpus",
]
