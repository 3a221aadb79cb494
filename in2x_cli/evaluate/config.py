"""Settings of ``in2x eval`` (score) and ``in2x eval autorank`` runs."""

from __future__ import annotations

from dataclasses import dataclass

BY_FIELDS = {"domain": "domain", "doc": "doc_id", "doc_id": "doc_id"}  # --by value -> Segment field


@dataclass(frozen=True)
class EvalConfig:
    """Resolved options of ``in2x eval`` (recorded in the provenance)."""

    input: str | None = None
    more_inputs: tuple[str, ...] = ()  # further JSONL files: `in2x eval a.jsonl b.jsonl` compares runs
    src: str | None = None
    ref: str | None = None
    hyps: tuple[str, ...] = ()
    wmt24: str | None = None
    systems: tuple[str, ...] = ()
    lang_pair: str | None = None
    metrics: tuple[str, ...] = ("bleu", "chrf")
    tokenize: str | None = None
    by: tuple[str, ...] = ()
    paired: str | None = None
    paired_n: int = 0
    paired_ar_confidence: int = 1000
    seed: int = 12345
    segments: str | None = None
    output: str = "-"
    autorank: bool = False
    comet_batch_size: int = 16
    comet_numerics: str = "float32"  # float32 | comet-score (matmul precision "high" + float16 weights, as comet-score)
    split_paragraphs: bool = False
    judge_model: str | None = None  # gemba-esa's judge (--judge-model)
    judge_backend: str = "transformers"
    judge_max_tokens: int = 512
    judge_retries: int = 2


@dataclass(frozen=True)
class AutorankConfig:
    """Resolved options of ``in2x eval autorank``."""

    inputs: tuple[str, ...]
    pairs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    lower_is_better: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # OURS=THEIRS
    domain: str | None = None
    top: int = 0  # systems shown in the table (0: all)
    allow_mixed: bool = False  # rank systems scored on different segments / metric signatures
    output: str = "-"
