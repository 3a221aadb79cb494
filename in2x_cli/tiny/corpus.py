"""The bundled en/ja/zh corpus (``in2x_cli/data/tiny``): what the tiny model is trained on, and
the fixture data of the tests, the demo and the benchmarks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any


def corpus_dir() -> Path:
    return Path(str(resources.files("in2x_cli") / "data" / "tiny"))


def load_corpus(name: str) -> list[dict[str, Any]]:
    """Rows of a bundled corpus file (``parallel``, ``instructions``, ``seed_tasks``, ``documents``, ``pretrain``)."""
    path = corpus_dir() / f"{name}.jsonl"
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _chat(user: str, assistant: str) -> str:
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{assistant}<|im_end|>\n"


CORPUS_FILES = ("parallel", "instructions", "pretrain", "seed_tasks")  # what corpus_texts reads


def corpus_texts() -> Iterator[str]:
    """Everything the tokenizer and the warm-up training see, as strings."""
    for row in load_corpus("parallel"):
        for lang in ("en", "ja", "zh"):
            yield row[lang]
        yield _chat(f"Translate the following English text into Japanese.\n\n{row['en']}", row["ja"])
        yield _chat(f"Translate the following Japanese text into Chinese.\n\n{row['ja']}", row["zh"])
    for row in load_corpus("instructions"):
        yield _chat(row["instruction"], row["response"])
    for row in load_corpus("pretrain"):
        yield row["text"]
    for row in load_corpus("seed_tasks"):
        yield _chat(row["instruction"] + (("\n\n" + row["input"]) if row.get("input") else ""), row["output"])
    for row in load_corpus("documents"):
        yield row["src_text"]
        yield row["ref_text"]
