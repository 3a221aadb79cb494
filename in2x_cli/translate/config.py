"""Settings and counters of one ``in2x translate`` run.

``TranslateConfig`` is what generation depends on (recorded as the provenance ``config``);
``TranslateRun`` adds where rows come from and go, and checks every option once, naming it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from in2x_cli.core import translate as T
from in2x_cli.core.fusion import DEFAULT_FUSE_TEMPLATE
from in2x_cli.core.mbr_methods import MBR_METHODS
from in2x_cli.core.metrics import DEFAULT_COMET_MODEL
from in2x_cli.errors import UserError

GRANULARITIES = ("document", "paragraph", "sentence")
MBR_OUTPUTS = ("best", "all")
INPUT_FORMATS = ("auto", "jsonl", "text")
TEXT_UNITS = ("line", "document")
DEFAULT_QE_MODEL = "Unbabel/wmt22-cometkiwi-da"


@dataclass(frozen=True)
class TranslateConfig:
    """What the translations depend on (recorded as the provenance ``config``)."""

    models: tuple[str, ...]
    backend: str = "auto"
    granularity: str = "document"
    system: str | None = None
    templates: dict[str, str] = field(default_factory=lambda: dict(T.TEMPLATES))
    mbr: int = 0
    mbr_utility: str = "chrf"
    mbr_output: str = "best"
    comet_model: str = DEFAULT_COMET_MODEL
    mbr_method: str = "mbr"  # a key of core.mbr_methods.MBR_METHODS
    mbr_alpha: float = 0.99  # pruned MBR: confidence threshold (Cheng & Vlachos 2023)
    mbr_first_refs: int = 8  # pruned MBR: pseudo-references of the first step (then doubling)
    qe_model: str = DEFAULT_QE_MODEL  # --mbr-method qe
    fuse: str | None = None  # fusion model (--fuse)
    fuse_template: str = DEFAULT_FUSE_TEMPLATE
    temperature: float = 1.0
    top_p: float = 0.9
    max_tokens: int = 0
    seed: int = 0
    chunk_rows: int = 256
    backend_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TranslateRun:
    """One ``in2x translate`` invocation: the generation settings, the input and its reading, the
    outputs. Constructing it checks the options (UserError naming the option)."""

    config: TranslateConfig
    input: str = "-"
    output: str = "-"
    src_lang: str | None = None
    tgt_lang: str | None = None
    input_format: str = "auto"
    text_unit: str = "line"
    wmt24: Path | None = None
    segments_out: Path | None = None
    prepare: bool = False
    prompt_file: Path | None = None
    fuse_prompt_file: Path | None = None
    shard: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        cfg = self.config
        _check_choice("--granularity", cfg.granularity, GRANULARITIES)
        _check_choice("--mbr-output", cfg.mbr_output, MBR_OUTPUTS)
        _check_choice("--mbr-method", cfg.mbr_method, tuple(MBR_METHODS))
        if not 0 < cfg.mbr_alpha <= 1 or cfg.mbr_first_refs < 1:
            raise UserError("--mbr-alpha must be in (0, 1] and --mbr-first-refs >= 1")
        _check_choice("--input-format", self.input_format, INPUT_FORMATS)
        _check_choice("--text-unit", self.text_unit, TEXT_UNITS)
        if cfg.mbr < 0 or cfg.max_tokens < 0 or cfg.chunk_rows < 0 or cfg.backend_options.get("batch_size", 1) < 1:
            raise UserError("--mbr, --max-tokens and --chunk-rows must be >= 0 and --batch-size >= 1")
        if not 0 < cfg.top_p <= 1 or cfg.temperature <= 0:
            raise UserError("--top-p must be in (0, 1] and --temperature > 0")
        if self.segments_out is not None and (self.wmt24 is None or self.shard):
            raise UserError("--segments-out needs --wmt24 and a complete (unsharded) run")
        if self.wmt24 is not None and self.input != "-":
            raise UserError(f"give exactly one input: {self.input} or --wmt24 {self.wmt24}, not both")
        if self.wmt24 is not None and (self.src_lang or self.tgt_lang):
            raise UserError("--src-lang/--tgt-lang do not apply with --wmt24 (its directory name is the pair)")
        if cfg.mbr_output == "all" and cfg.mbr == 0 and len(cfg.models) < 2:
            raise UserError("--mbr-output all logs the MBR candidates: give --mbr N (or several --model), or drop it")
        self._check_selection_options()
        if self.resume and self.output == "-":
            raise UserError("--resume needs --output FILE")
        if not cfg.models and not self.prepare:
            raise UserError("give a model with --model (repeat it to ensemble)")


    def _check_selection_options(self) -> None:
        """Options of a selection method that will not run change nothing: they are errors."""
        cfg = self.config
        defaults = {f.name: f.default for f in fields(TranslateConfig)}
        changed = lambda name: getattr(cfg, name) != defaults[name]  # noqa: E731
        if self.fuse_prompt_file is not None and cfg.fuse is None:
            raise UserError("--fuse-prompt-file sets the fusion prompt: give --fuse MODEL, or drop it")
        if changed("mbr_method") and cfg.mbr == 0 and len(cfg.models) < 2:
            raise UserError(f"--mbr-method {cfg.mbr_method} selects among candidates: give --mbr N (or several --model)")
        if (changed("mbr_alpha") or changed("mbr_first_refs")) and cfg.mbr_method != "pruned":
            raise UserError("--mbr-alpha and --mbr-first-refs apply only to --mbr-method pruned")
        if changed("qe_model") and cfg.mbr_method != "qe":
            raise UserError("--qe-model applies only to --mbr-method qe")


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(f"{option} must be one of {', '.join(choices)}, got {value!r}")


@dataclass
class TranslateStats:
    """Counters of a run: the summary on stderr and in ``OUTPUT.meta.json``."""

    rows: int = 0
    documents: int = 0
    requests: dict[str, int] = field(default_factory=lambda: Counter())
    split_for_context: int = 0
    document_chunks: int = 0
    misaligned_chunks: int = 0
    prompts: int = 0
    candidates: int = 0
    generated_tokens: int = 0
    cleaning: dict[str, int] = field(default_factory=lambda: Counter())
    model_loads: int = 0
    seconds: float = 0.0  # wall time of the run, model loading included
    generate_seconds: float = 0.0  # time inside backend generation calls
    load_seconds: float = 0.0  # time spent loading models
    select_seconds: float = 0.0  # time inside candidate selection (utility / QE scoring)
    utility_evaluations: int = 0  # segment pairs (MBR) or segments (QE) scored
    fused: int = 0  # requests whose translation the fusion model wrote
    fusion_paragraph_fallbacks: int = 0  # fused documents that did not align: fused paragraph by paragraph
    fusion_kept_selection: int = 0  # fusion replies that were empty or did not fit: the selected candidate stays
    truncated: dict[str, int] = field(default_factory=lambda: Counter())  # model → outputs cut at --max-tokens
    truncated_rows: int = 0  # rows whose translation contains a truncated output

    def to_dict(self) -> dict[str, Any]:
        rate = self.misaligned_chunks / self.document_chunks if self.document_chunks else 0.0
        return {
            "rows": self.rows,
            "documents": self.documents,
            "requests": dict(sorted(self.requests.items())),
            "documents_split_for_context": self.split_for_context,
            "document_chunks": self.document_chunks,
            "paragraph_fallbacks": self.misaligned_chunks,
            "fallback_rate": round(rate, 4),
            "prompts": self.prompts,
            "candidates": self.candidates,
            "generated_tokens": self.generated_tokens,
            "cleaning_rules_fired": dict(sorted(self.cleaning.items())),
            "truncated_rows": self.truncated_rows,
            "truncated_outputs": dict(sorted(self.truncated.items())),
            "model_loads": self.model_loads,
            "seconds": round(self.seconds, 3),
            "generate_seconds": round(self.generate_seconds, 3),
            "load_seconds": round(self.load_seconds, 3),
            "select_seconds": round(self.select_seconds, 3),
            "utility_evaluations": self.utility_evaluations,
            "fused": self.fused,
            "fusion_paragraph_fallbacks": self.fusion_paragraph_fallbacks,
            "fusion_kept_selection": self.fusion_kept_selection,
            "rows_per_s": round(self.rows / self.seconds, 3) if self.seconds else None,
            "tokens_per_s": round(self.generated_tokens / self.generate_seconds, 1) if self.generate_seconds else None,
        }


RATES = ("fallback_rate", "rows_per_s", "tokens_per_s")  # derived: recomputed, never summed


def combine_summaries(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The summary of a whole output written by several runs (``--resume``): counts and times are
    summed (dicts of counts key by key), rates recomputed from the sums, ``runs`` counted."""
    out: dict[str, Any] = {}
    for key, value in current.items():
        before = previous.get(key)
        if key in RATES or key == "runs":
            continue
        if isinstance(value, dict) and isinstance(before, dict):
            merged = Counter(before)
            merged.update(value)
            out[key] = dict(sorted(merged.items()))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(before, (int, float)):
            out[key] = round(before + value, 3) if isinstance(value, float) or isinstance(before, float) else before + value
        else:
            out[key] = value
    chunks, fallbacks = out.get("document_chunks", 0), out.get("paragraph_fallbacks", 0)
    out["fallback_rate"] = round(fallbacks / chunks, 4) if chunks else 0.0
    out["rows_per_s"] = round(out["rows"] / out["seconds"], 3) if out.get("seconds") else None
    out["tokens_per_s"] = round(out["generated_tokens"] / out["generate_seconds"], 1) if out.get("generate_seconds") else None
    out["runs"] = previous.get("runs", 1) + current.get("runs", 1)
    return out
