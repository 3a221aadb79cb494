"""Supervised fine-tuning (paper §SFT, arXiv 2508.14472): two epochs, one sampling round per epoch,
LR 2e-5 with cosine decay, and a "temperature" against over-fitting to one language's semantic space.

Read top to bottom:

1. rows → conversations (``messages``, or ``instruction`` + ``response``), ``lang`` and ``round``;
2. tokenized once with the assistant-only label mask (``data.ChatFormatter``);
3. the epoch plan (``data.plan_epochs``): ``--rounds`` trains round r in epoch r, otherwise
   ``--epochs`` passes; inside an epoch ``--language-temperature`` T re-balances languages by
   p_l ∝ n_l^(1/T);
4. each epoch is packed on its own (TRL's best-fit-decreasing ``pack_dataset``, so no row mixes two
   epochs) and shuffled, then the epochs are concatenated and read in order (sequential sampler);
5. TRL's ``SFTTrainer`` runs the loop on the pre-tokenized data (``skip_prepare_dataset``), with our
   packed-row collator (position ids restart per conversation: no cross-contamination);
6. the final model (optionally a merged LoRA) is exported with the original chat template.

Why temperature *sampling* (and not a logit temperature in the loss): the paper's concern is the
model collapsing into the dominant language's semantic space; the share of each language in an
epoch is the direct lever on that, it is the standard multilingual remedy (XLM, mT5, NLLB), it
keeps the loss an ordinary NLL (comparable across runs), and it is testable exactly (per-language
counts per epoch). T = 1 (default: the paper gives no value) keeps the natural mix.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from in2x_cli import console
from in2x_cli.errors import InputError, UserError
from in2x_cli.train.callbacks import install_callbacks
from in2x_cli.train.data import (
    IGNORE_INDEX,
    EpochPlan,
    chat_messages,
    epoch_fraction,
    make_chat_formatter,
    make_collator,
    plan_epochs,
)
from in2x_cli.train.export import finish_run
from in2x_cli.train.flops import flops_per_token
from in2x_cli.train.loop import run_training
from in2x_cli.train.options import TrainOptions, common_training_args, seed_everything
from in2x_cli.train.rundir import check_output_dir, prepare_output_dir


@dataclass(frozen=True)
class LoraOptions:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str = "all-linear"
    merge: bool = False


@dataclass(frozen=True)
class SftConfig:
    """``in2x sft``; the optimizer, schedule and step budget live in ``train``."""

    model: str
    data: tuple[str, ...]
    train: TrainOptions
    max_length: int = 4096
    packing: bool = True
    epochs: int = 2
    rounds: bool = False
    language_temperature: float = 1.0
    mask_mode: str = "auto"
    lora: LoraOptions | None = None
    attn_implementation: str | None = None
    random_init: bool = False

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise UserError("--max-length must be at least 2")


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    lang: str
    round: int | None


def load_examples(cfg: SftConfig, formatter: Any) -> list[Example]:
    """Read and tokenize every row (errors name file:line). Over-long conversations are cut to
    ``max_length`` (keeping the start); one left with no assistant token is dropped with a note."""
    from in2x_cli.io import iter_jsonl
    from in2x_cli.langs import detect_lang, normalize_lang

    examples: list[Example] = []
    dropped = 0
    for path in cfg.data:
        for line in iter_jsonl(path):
            msgs = chat_messages(line.data, line.where)
            rnd = line.data.get("round")
            if cfg.rounds and (not isinstance(rnd, int) or isinstance(rnd, bool)):
                raise InputError("--rounds: field 'round' must be an integer (from sample-difficulty --rounds)", line.where)
            lang = line.data.get("lang")
            if lang is not None and not isinstance(lang, str):
                raise InputError(f"field 'lang' must be a string, got {type(lang).__name__}", line.where)
            if not lang:  # the language of what the model learns to write
                lang = detect_lang(next(m["content"] for m in reversed(msgs) if m["role"] == "assistant")) or "und"
            enc = formatter.tokenize(msgs, line.where)
            ids, labels = enc["input_ids"][: cfg.max_length], enc["labels"][: cfg.max_length]
            if all(t == IGNORE_INDEX for t in labels[1:]):
                dropped += 1
                continue
            examples.append(Example(ids, labels, normalize_lang(lang) or lang, rnd))
    if dropped:
        console.warn(f"sft: dropped {dropped} conversation(s) whose assistant turns start after --max-length {cfg.max_length}")
    if not examples:
        raise UserError("no trainable conversation in the data")
    return examples


def build_epochs(examples: list[Example], plan: EpochPlan, *, packing: bool, max_length: int, seed: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows in training order and the row count of each epoch. Packing uses TRL's ``pack_dataset``
    (best-fit decreasing: conversations are never split) per epoch; the packs are then shuffled."""
    rows: list[dict[str, Any]] = []
    sizes: list[int] = []
    for e, order in enumerate(plan.epochs):
        items = [{"input_ids": examples[i].input_ids, "labels": examples[i].labels} for i in order]
        if packing:
            import datasets
            from datasets import Dataset
            from trl.data_utils import pack_dataset

            datasets.disable_progress_bars()  # our own progress/logging is on stderr already

            packed = pack_dataset(Dataset.from_list(items), max_length, strategy="bfd")
            items = [
                {"input_ids": list(r["input_ids"]), "labels": list(r["labels"]), "seq_lengths": list(r["seq_lengths"])}
                for r in packed
            ]
            random.Random(seed * 7919 + e).shuffle(items)
        rows.extend(items)
        sizes.append(len(items))
    return rows, sizes


def _trainer_class() -> type:
    from trl import SFTTrainer

    class In2xSFTTrainer(SFTTrainer):
        """SFTTrainer reading our pre-tokenized rows in order; TRL's ``num_tokens`` metric is dropped
        (it assumes flattened padding-free batches; ``num_input_tokens_seen`` counts tokens)."""

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            for mode in ("train", "eval"):
                self._metrics[mode].pop("num_tokens", None)
            super().log(logs, start_time)

    return In2xSFTTrainer


def load_model(cfg: SftConfig, model_path: Any) -> Any:
    from in2x_cli.io.checkpoint import load_causal_lm
    from in2x_cli.train.devices import packed_attention, select_device

    kwargs: dict[str, Any] = {"trust_remote_code": cfg.train.trust_remote_code}
    attn = packed_attention(cfg.attn_implementation, select_device(cfg.train.device), packed=cfg.packing)
    if attn:
        kwargs["attn_implementation"] = attn
    if cfg.random_init:  # benchmarking: the architecture of model_path with fresh weights
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(str(model_path), **kwargs)
        seed_everything(cfg.train.seed)
        return AutoModelForCausalLM.from_config(config, dtype=torch.float32, **kwargs)
    return load_causal_lm(model_path, **kwargs)


def run_sft(cfg: SftConfig) -> dict[str, Any]:
    from in2x_cli.io.checkpoint import resolve_model

    check_output_dir(cfg.train.output_dir, resume=cfg.train.resume, overwrite=cfg.train.overwrite)
    model_path = resolve_model(cfg.model, trust_remote_code=cfg.train.trust_remote_code)

    import transformers
    from datasets import Dataset
    from trl import SFTConfig as TrlSFTConfig

    from in2x_cli.io.checkpoint import load_tokenizer, loading_errors

    transformers.utils.logging.disable_progress_bar()
    tokenizer = load_tokenizer(model_path, trust_remote_code=cfg.train.trust_remote_code)
    with loading_errors(model_path):  # a chat template that does not compile
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        formatter = make_chat_formatter(tokenizer, cfg.mask_mode)
    examples = load_examples(cfg, formatter)
    # the training arguments create the distributed state (process group, FSDP / ZeRO-3 plugins), so the
    # model below loads under it: FSDP's cpu-RAM-efficient loading and ZeRO-3 partitioned init take effect
    args = TrlSFTConfig(
        **common_training_args(cfg.train),
        num_train_epochs=1,  # the epochs are laid out in the data (see build_epochs)
        train_sampling_strategy="sequential",
        max_length=cfg.max_length,
        packing=False,  # packed by us per epoch; TRL's own packing would pack across epochs
        dataset_kwargs={"skip_prepare_dataset": True},
        model_init_kwargs=None,
    )
    # only now (data valid) is the run directory created (by the main process), or emptied by --overwrite
    resume_from = prepare_output_dir(cfg.train.output_dir, resume=cfg.train.resume, overwrite=cfg.train.overwrite)
    langs = [ex.lang for ex in examples]
    plan = plan_epochs([ex.round for ex in examples], langs, epochs=cfg.epochs, use_rounds=cfg.rounds, temperature=cfg.language_temperature, seed=cfg.train.seed)
    rows, sizes = build_epochs(examples, plan, packing=cfg.packing, max_length=cfg.max_length, seed=cfg.train.seed)
    lang_mix = [dict(sorted(Counter(langs[i] for i in ep).items())) for ep in plan.epochs]
    for label, n_conv, n_rows, mix in zip(plan.labels, plan.sizes, sizes, lang_mix, strict=True):
        console.info(f"sft: {label}: {n_conv} conversations -> {n_rows} {'packed rows' if cfg.packing else 'rows'}; languages {mix}")

    from transformers import AutoConfig

    with loading_errors(model_path):
        base_dtype = getattr(AutoConfig.from_pretrained(str(model_path), trust_remote_code=cfg.train.trust_remote_code), "dtype", None)
        seed_everything(cfg.train.seed)
        model = load_model(cfg, model_path)
    model.config.use_cache = False
    world = int(os.environ.get("WORLD_SIZE", "1"))
    global_batch = cfg.train.per_device_batch_size * cfg.train.gradient_accumulation_steps * world
    boundaries = []
    total = 0
    for n in sizes:
        total += n
        boundaries.append(total / global_batch)

    peft_config = None
    if cfg.lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=cfg.lora.target_modules if cfg.lora.target_modules == "all-linear" else cfg.lora.target_modules.split(","),
            task_type="CAUSAL_LM",
        )
    pad_id = tokenizer.pad_token_id
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        data_collator=make_collator(model, pad_id, packed=cfg.packing),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    install_callbacks(
        trainer,
        cfg.train.output_dir,
        description="sft",
        flops_per_token_value=flops_per_token(model, cfg.max_length if cfg.packing else max(len(r["input_ids"]) for r in rows)),
        epoch_fn=lambda state: round(epoch_fraction(state.global_step, boundaries), 4),
    )
    run_training(trainer, resume_from)

    summary = {
        "steps": trainer.state.global_step,
        "tokens_seen": trainer.state.num_input_tokens_seen,
        "conversations": len(examples),
        "mask_mode": formatter.mode,
        "epochs": [
            {"label": lab, "conversations": n, "rows": r, "languages": mix}
            for lab, n, r, mix in zip(plan.labels, plan.sizes, sizes, lang_mix, strict=True)
        ],
    }
    trainer.accelerator.unwrap_model(trainer.model).config.use_cache = True
    finish_run(
        trainer, cfg.train, command="sft", config=cfg, base_model=model_path, inputs=[str(model_path), *cfg.data],
        extra={"summary": summary}, tokenizer=tokenizer, base_dtype=base_dtype, chat_template=formatter.inference_template,
        merge_lora_base=model_path if cfg.lora is not None and cfg.lora.merge else None,
    )  # fmt: skip
    return summary
