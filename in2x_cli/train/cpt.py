"""Continued pretraining (paper §CPT, arXiv 2508.14472): a token-weighted mixture of text JSONL
files, streamed, tokenized lazily and packed into ``seq_len`` rows, trained with transformers'
``Trainer`` (accelerate / FSDP2 / ZeRO-3 through the launcher).

The paper's three phases are three ``in2x cpt`` calls, each starting from the previous output::

    # 1. knowledge + creative data (paper: 2T general + 500B creative tokens, zh:en:ja balanced),
    #    constant LR, 8,192-token rows
    in2x cpt --model Qwen/Qwen2.5-7B --data knowledge.jsonl:0.8 --data creative.jsonl:0.2 \
        --lang-ratio zh=1,en=1,ja=1 --seq-len 8192 --lr-scheduler-type constant --max-tokens 2500B -o runs/cpt1
    # 2. length-filtered data, context grown towards 32k (ABF: a larger RoPE base)
    in2x cpt --model runs/cpt1 --data long.jsonl --min-tokens 8192 --seq-len 32768 \
        --rope-theta 1000000 --lr-scheduler-type constant --max-tokens 50B -o runs/cpt2
    # 3. anneal on the lowest-perplexity share (paper: 300B tokens), LR decaying linearly from 3e-5 (paper)
    in2x cpt --model runs/cpt2 --data hq.jsonl --ppl-filter runs/cpt2 --keep 0.3 \
        --seq-len 32768 --lr 3e-5 --lr-scheduler-type linear --max-tokens 300B -o runs/cpt3

Whose values: the paper gives the phase-1 budget (2T general + 500B creative = 2.5T, hence the 0.8 :
0.2 weights), the balanced zh:en:ja mixture of phase 1, the 8,192 → ~32k context, the phase-3
budget (300B) and schedule (3e-5, linear decay). It gives no phase-1/2 learning rate, warmup, batch
size, phase-2 budget, RoPE base, exact language ratio or keep fraction: those values above (1e-5,
no warmup, 50B, 1e6, 1:1:1, ``--keep 0.3``/``0.5``) are ours and the help text says so. Scaled
runs (recipes/demo.sh, the rehearsal) use budgets of ours. Instead of ``--rope-theta``,
``--rope-scaling yarn:4`` extends with YaRN (see ``data.apply_context_extension``).

Language balance (``--lang-ratio``, ``split_by_language``): each source is split into one stream
per language with weight w_source · r_lang / Σ r; the run summary (provenance) reports the planned
weight and the tokens seen per language.

Perplexity filter (``ppl.py``): every document is scored by the filter model, written with a
``ppl`` field to ``<out>/ppl/<n>-<name>.jsonl`` (inspectable, resumable), and the lowest-perplexity
``keep`` fraction of *each source* goes to ``<n>-<name>.kept.jsonl``, which then replaces that
source in the mixture (weights unchanged).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from in2x_cli import console
from in2x_cli.errors import UserError
from in2x_cli.train.callbacks import install_callbacks
from in2x_cli.train.data import (
    DataSource,
    MixtureStream,
    iter_texts,
    normalize_weights,
    pack_documents,
    shuffle_buffer,
)
from in2x_cli.train.devices import select_device
from in2x_cli.train.export import finish_run
from in2x_cli.train.flops import flops_per_token
from in2x_cli.train.loop import run_training
from in2x_cli.train.options import TrainOptions, common_training_args, seed_everything
from in2x_cli.train.rundir import check_output_dir, prepare_output_dir


@dataclass(frozen=True)
class CptConfig:
    """``in2x cpt``; the optimizer, schedule and budget in steps live in ``train``."""

    model: str
    data: tuple[DataSource, ...]
    train: TrainOptions
    text_field: str = "text"
    seq_len: int = 8192
    max_tokens: int | None = None
    min_tokens: int = 0
    shuffle_buffer: int = 1000
    doc_separator: str | None = None
    cross_document_attention: bool = False
    rope_theta: float | None = None
    rope_scaling: str | None = None
    ppl_filter: str | None = None
    keep: float = 0.5
    ppl_only: bool = False
    ppl_batch_size: int = 8
    lang_ratio: tuple[tuple[str, float], ...] | None = None

    def __post_init__(self) -> None:
        if any(d.path == "-" for d in self.data):
            raise UserError("cpt re-reads its sources (validation, restarts when a source runs out): pass files, not stdin")
        if not 0 < self.keep <= 1:
            raise UserError(f"--keep must be in (0, 1], got {self.keep}")
        if self.seq_len < 2:
            raise UserError("--seq-len must be at least 2")
        if not self.ppl_only and not self.train.max_steps and not self.max_tokens:
            raise UserError("cpt streams its data: give a training budget with --max-steps or --max-tokens")


class TokenStream:
    """One source as a restartable stream of token lists: shuffle buffer (reseeded per pass) →
    tokenize → append the document separator → length filter."""

    def __init__(
        self, path: str, tokenize: Callable[[str], list[int]], *, text_field: str, buffer: int, seed: int, min_tokens: int, lang: str | None = None
    ) -> None:
        self.path = path
        self.lang = lang
        self.tokenize = tokenize
        self.text_field = text_field
        self.buffer = buffer
        self.seed = seed
        self.min_tokens = min_tokens
        self.passes = 0

    def __call__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.passes)
        self.passes += 1
        texts = (t for t, row in iter_texts(self.path, self.text_field) if self.lang is None or row_language(t, row) == self.lang)
        for text in shuffle_buffer(texts, self.buffer, rng):
            ids = self.tokenize(text)
            if len(ids) >= max(self.min_tokens, 2):
                yield ids


def make_stream_dataset(sources: list[DataSource], tokenize: Callable[[str], list[int]], cfg: CptConfig) -> Any:
    """A torch ``IterableDataset`` of packed rows. Each ``__iter__`` restarts the whole stream from
    the seed, so a resumed Trainer that fast-forwards past N batches sees exactly the same data."""
    from torch.utils.data import IterableDataset

    weights = normalize_weights(sources)

    class _Packed(IterableDataset):  # type: ignore[type-arg]
        def __init__(self) -> None:
            self.mixture: MixtureStream | None = None

        def __iter__(self) -> Iterator[dict[str, list[int]]]:
            streams = [
                TokenStream(s.path, tokenize, text_field=cfg.text_field, buffer=cfg.shuffle_buffer, seed=cfg.train.seed + i, min_tokens=cfg.min_tokens,
                            lang=getattr(s, "lang", None))  # fmt: skip
                for i, s in enumerate(sources)
            ]
            self.mixture = MixtureStream(streams, weights)
            docs = (doc for _, doc in self.mixture)
            for row in pack_documents(docs, cfg.seq_len):
                if cfg.cross_document_attention:
                    row = {"input_ids": row["input_ids"], "seq_lengths": [len(row["input_ids"])]}
                yield row

    return _Packed()


@dataclass(frozen=True)
class LangSource(DataSource):
    """One language of one ``--data`` source (``--lang-ratio``): the rows whose language is ``lang``."""

    lang: str = ""


def row_language(text: str, row: dict[str, Any]) -> str:
    """A CPT row's language: its ``lang`` field (normalised), else detected from the text."""
    from in2x_cli.langs import detect_lang, normalize_lang

    code = row.get("lang")
    if isinstance(code, str) and code.strip():
        try:
            return normalize_lang(code)
        except UserError:
            return code.strip().lower()
    return detect_lang(text)


def split_by_language(sources: list[DataSource], lang_ratio: tuple[tuple[str, float], ...], text_field: str) -> tuple[list[LangSource], list[int], dict[str, Any]]:
    """Per-language weights inside the mixture (paper: phase 1 balances zh:en:ja).

    Source s with weight w_s becomes one stream per language l of ``lang_ratio`` present in it, with
    weight w_s · r_l / Σ_{l' in s} r_l' (the source keeps its share; inside it the languages follow
    the ratio). Rows in languages outside the ratio are dropped (counted in the report). Returns the
    streams, their row counts and the report logged with the run."""
    ratio = dict(lang_ratio)
    out: list[LangSource] = []
    counts: list[int] = []
    report: dict[str, Any] = {"ratio": ratio, "sources": []}
    for s in sources:
        per: dict[str, int] = {}
        for text, row in iter_texts(s.path, text_field):
            lang = row_language(text, row)
            per[lang] = per.get(lang, 0) + 1
        present = [lang for lang in ratio if per.get(lang) and ratio[lang] > 0]
        if not present:
            raise UserError(f"no rows in the --lang-ratio languages ({', '.join(ratio)}); found {', '.join(sorted(per)) or 'none'}", s.path)
        total = sum(ratio[lang] for lang in present)
        for lang in present:
            out.append(LangSource(s.path, s.weight * ratio[lang] / total, lang))
            counts.append(per[lang])
        report["sources"].append({"path": s.path, "rows_by_lang": dict(sorted(per.items())), "dropped_rows": sum(n for lang, n in per.items() if lang not in present)})
    return out, counts, report


def language_shares(sources: list[DataSource], tokens: list[int]) -> dict[str, dict[str, float]]:
    """Planned weight and seen token share per language (``--lang-ratio`` runs; for the metrics)."""
    weights = normalize_weights(sources)
    total_tokens = max(1, sum(tokens))
    out: dict[str, dict[str, float]] = {}
    for s, w, t in zip(sources, weights, tokens, strict=True):
        lang = getattr(s, "lang", None) or "all"
        entry = out.setdefault(lang, {"weight": 0.0, "tokens": 0, "token_share": 0.0})
        entry["weight"] = round(entry["weight"] + w, 6)
        entry["tokens"] += t
        entry["token_share"] = round(entry["tokens"] / total_tokens, 6)
    return out


def language_share_callback(dataset: Any, sources: list[DataSource]) -> Any:
    """Adds ``lang_share/<lang>`` (share of the tokens streamed so far) to every training log line,
    so metrics.jsonl shows the zh:en:ja balance as it happens (runs before the metrics writer)."""
    from transformers import TrainerCallback

    langs = [getattr(s, "lang", None) or "all" for s in sources]

    class _LanguageShares(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            mixture = getattr(dataset, "mixture", None)
            if logs is None or mixture is None or "loss" not in logs:
                return
            total = max(1, sum(mixture.tokens))
            for lang in dict.fromkeys(langs):
                logs[f"lang_share/{lang}"] = round(sum(t for t, l2 in zip(mixture.tokens, langs, strict=True) if l2 == lang) / total, 6)

    return _LanguageShares()


def parse_token_count(text: str) -> int:
    """``2B`` / ``500M`` / ``10k`` / ``1e9`` / ``123`` → tokens (decimal units)."""
    t = text.strip().upper().replace("_", "")
    scale = {"K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}.get(t[-1:], 1)
    body = t[:-1] if scale != 1 else t
    try:
        value = float(body) * scale
    except ValueError:
        raise UserError(f"--max-tokens must look like 2B, 500M or 1e9, got {text!r}") from None
    if not math.isfinite(value) or value < 1:
        raise UserError(f"--max-tokens must be at least 1, got {text!r}")
    return int(value)


def validate_sources(sources: list[DataSource], text_field: str) -> list[int]:
    """A quick pass over every source (JSON + field types only, no tokenization), so bad data fails
    with file:line before any training. Returns the row count per source."""
    counts = []
    for s in sources:
        n = 0
        for _ in iter_texts(s.path, text_field):
            n += 1
        counts.append(n)
    return counts


def resolve_max_steps(cfg: CptConfig, world_size: int) -> int:
    """``--max-steps`` or ``--max-tokens`` / (seq_len × batch × grad_accum × processes), rounded up."""
    if cfg.train.max_steps:
        return cfg.train.max_steps
    assert cfg.max_tokens, "CptConfig checks that a budget is given"
    per_step = cfg.seq_len * cfg.train.per_device_batch_size * cfg.train.gradient_accumulation_steps * max(1, world_size)
    return max(1, math.ceil(cfg.max_tokens / per_step))


def document_separator(tokenizer: Any, requested: str | None) -> int:
    """Token id appended to every document: ``--doc-separator``, else ``<|endoftext|>`` when the
    vocabulary has it (Qwen), else the EOS token."""
    candidates = [requested] if requested else ["<|endoftext|>", tokenizer.eos_token]
    for tok in candidates:
        if tok is None:
            continue
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            return tid
    raise UserError(f"document separator {candidates[0]!r} is not a token of this tokenizer")


def run_cpt(cfg: CptConfig) -> dict[str, Any]:
    """Train; returns a summary (also stored in the provenance)."""
    from in2x_cli.io.checkpoint import resolve_model

    check_output_dir(cfg.train.output_dir, resume=cfg.train.resume, overwrite=cfg.train.overwrite)
    model_path = resolve_model(cfg.model, trust_remote_code=cfg.train.trust_remote_code)
    sources = list(cfg.data)
    counts = validate_sources(sources, cfg.text_field)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    max_steps = None if cfg.ppl_only else resolve_max_steps(cfg, world)
    # the training arguments create the distributed state first, so the model loads under it (FSDP's
    # cpu-RAM-efficient loading, ZeRO-3 partitioned init); then the main process prepares the run directory
    from transformers import TrainingArguments

    args = None if max_steps is None else TrainingArguments(**{**common_training_args(cfg.train), "max_steps": max_steps})
    # only now (input valid) is the run directory created, or emptied by --overwrite
    resume_from = prepare_output_dir(cfg.train.output_dir, resume=cfg.train.resume, overwrite=cfg.train.overwrite)

    import transformers
    from transformers import AutoConfig, Trainer

    from in2x_cli.io.checkpoint import load_causal_lm, load_tokenizer, loading_errors

    transformers.utils.logging.disable_progress_bar()
    tokenizer = load_tokenizer(model_path, trust_remote_code=cfg.train.trust_remote_code)
    sep = document_separator(tokenizer, cfg.doc_separator)

    ppl_report: dict[str, Any] | None = None
    if cfg.ppl_filter:
        from in2x_cli.devices import pick_device
        from in2x_cli.train.ppl import perplexity_filter
        from in2x_cli.train.rundir import on_main_process

        filter_sources = sources
        # scored once, by the main process (on its GPU); the other ranks wait and read its files
        sources, ppl_report = on_main_process(lambda: perplexity_filter(
            cfg.ppl_filter,
            filter_sources,
            Path(cfg.train.output_dir) / "ppl",
            keep=cfg.keep,
            seq_len=cfg.seq_len,
            batch_size=cfg.ppl_batch_size,
            text_field=cfg.text_field,
            device=pick_device(cfg.train.device),
            trust_remote_code=cfg.train.trust_remote_code,
        ))
        if cfg.ppl_only:
            console.info(f"cpt: perplexity filter written to {Path(cfg.train.output_dir) / 'ppl'} (--ppl-only: no training)")
            return {"ppl_filter": ppl_report}
        counts = [s["kept"] for s in ppl_report["sources"]]
    lang_report: dict[str, Any] | None = None
    if cfg.lang_ratio:
        sources, counts, lang_report = split_by_language(sources, cfg.lang_ratio, cfg.text_field)

    def tokenize(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"] + [sep]

    with loading_errors(model_path):
        model_config = AutoConfig.from_pretrained(str(model_path), trust_remote_code=cfg.train.trust_remote_code)
    from in2x_cli.train.data import apply_context_extension

    context_changes = apply_context_extension(model_config, seq_len=cfg.seq_len, rope_theta=cfg.rope_theta, rope_scaling=cfg.rope_scaling)
    base_dtype = getattr(model_config, "dtype", None)  # the export's (loading in float32 changes the config's)
    model_config.use_cache = False  # packed-sequence masks are only built without a cache object
    seed_everything(cfg.train.seed)
    from in2x_cli.train.devices import packed_attention

    attn = packed_attention(None, select_device(cfg.train.device), packed=not cfg.cross_document_attention)
    model = load_causal_lm(model_path, config=model_config, trust_remote_code=cfg.train.trust_remote_code, **({"attn_implementation": attn} if attn else {}))

    assert args is not None
    from in2x_cli.train.data import make_collator

    dataset = make_stream_dataset(sources, tokenize, cfg)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=make_collator(model, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else sep, packed=True, cross_document_attention=cfg.cross_document_attention),
        processing_class=tokenizer,
    )
    install_callbacks(
        trainer, cfg.train.output_dir, description="cpt", flops_per_token_value=flops_per_token(model, cfg.seq_len)
    )
    if lang_report:  # ahead of the metrics writer (install_callbacks puts it first)
        trainer.callback_handler.callbacks.insert(0, language_share_callback(dataset, sources))
    console.info(
        f"cpt: {len(sources)} source(s) ({', '.join(f'{s.path} w={w:.3g} rows={n}' for s, w, n in zip(sources, normalize_weights(sources), counts, strict=True))}), "
        f"{max_steps} steps x {cfg.seq_len * cfg.train.per_device_batch_size * cfg.train.gradient_accumulation_steps * world} tokens"
    )
    run_training(trainer, resume_from)

    mixture = dataset.mixture
    summary = {
        "steps": trainer.state.global_step,
        "tokens_seen": trainer.state.num_input_tokens_seen,
        "context_extension": context_changes,
        **({"languages": {**lang_report, "shares": language_shares(sources, mixture.tokens if mixture else [0] * len(sources))}} if lang_report else {}),
        "sources": [
            {"path": s.path, **({"lang": s.lang} if isinstance(s, LangSource) else {}), "weight": w, "rows": n, **({"tokens": mixture.tokens[i], "documents": mixture.docs[i], "passes": mixture.passes[i]} if mixture else {})}
            for i, (s, w, n) in enumerate(zip(sources, normalize_weights(sources), counts, strict=True))
        ],
        **({"ppl_filter": ppl_report} if ppl_report else {}),
    }
    if lang_report:
        shares = summary["languages"]["shares"]
        console.info("cpt: languages " + ", ".join(f"{k} weight {v['weight']:.3f} tokens {v['tokens']} ({v['token_share']:.1%})" for k, v in shares.items()))
    model.config.use_cache = True  # off only for training; inference wants the KV cache
    inputs = [str(model_path), *(s.path for s in cfg.data)]
    finish_run(
        trainer, cfg.train, command="cpt", config=cfg, base_model=model_path, inputs=inputs, extra={"summary": summary},
        tokenizer=tokenizer, base_dtype=base_dtype,
    )  # fmt: skip
    return summary
