"""``in2x sft``: supervised fine-tuning on chat JSONL (TRL SFTTrainer), assistant-only loss."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from in2x_cli.commands.train_options import TrainDefaults, training_command

if TYPE_CHECKING:
    from in2x_cli.train.launch import LaunchSpec
    from in2x_cli.train.options import TrainOptions

DEFAULTS = TrainDefaults(
    batch_size=4,
    learning_rate=2e-5,
    learning_rate_note="paper: 2e-5",
    lr_scheduler_type="cosine",
    lr_scheduler_note="paper: cosine",
    warmup_steps=0.03,
    warmup_note="paper silent; 3% as TRL/Alpaca recipes",
    max_steps_note="default: the epochs",
)


@training_command(DEFAULTS)
def sft(
    ctx: typer.Context,
    data: list[str] = typer.Argument(..., help="Chat JSONL file(s): rows with 'messages' [{role, content}] (or 'instruction' + 'response'); optional 'lang', 'round'."),
    model: str = typer.Option(..., "--model", "-m", help="Base model: a local HF directory (safetensors) or a cached hub id."),
    epochs: int = typer.Option(2, "--epochs", min=1, help="Passes over the data (paper: 2). Ignored with --rounds."),
    rounds: bool = typer.Option(False, "--rounds", help="Train round r in epoch r: rows carry 'round' from `sample-difficulty --rounds` (paper: one sampling round per epoch); epochs = distinct rounds, ascending."),
    language_temperature: float = typer.Option(
        1.0, "--language-temperature",
        help="The paper's anti-over-fitting temperature (value not given): each epoch re-samples languages with p_l ∝ n_l^(1/T) "
        "(XLM/mT5-style), so one language cannot dominate the model's semantic space. 1 = natural mix (default), 2-5 flattens it. "
        "Chosen over a loss temperature because the language share is the direct lever and keeps the loss a plain NLL.",
    ),  # fmt: skip
    max_length: int = typer.Option(4096, "--max-length", help="Tokens per conversation (cut at the end) and per packed row (paper silent)."),
    packing: bool = typer.Option(True, "--packing/--no-packing", help="Pack conversations into --max-length rows (best-fit decreasing); attention and positions stay inside each conversation."),
    mask_mode: str = typer.Option("auto", "--mask-mode", help="How assistant tokens are found: auto, markers ({% generation %} in the template), trl (TRL's training twin of known templates such as Qwen2.5), render (render each prefix)."),
    lora: bool = typer.Option(False, "--lora", help="Train LoRA adapters (peft) instead of all weights."),
    lora_r: int = typer.Option(16, "--lora-r", min=1, help="LoRA rank."),
    lora_alpha: int = typer.Option(32, "--lora-alpha", min=1, help="LoRA alpha (scale = alpha / r)."),
    lora_dropout: float = typer.Option(0.05, "--lora-dropout", min=0.0, max=1.0, help="LoRA dropout."),
    lora_targets: str = typer.Option("all-linear", "--lora-targets", help="Modules to adapt: all-linear or a comma list (q_proj,v_proj)."),
    merge_lora: bool = typer.Option(False, "--merge-lora", help="Merge the adapters into the base weights on save (a plain HF model); otherwise the adapter is saved."),
    attn_implementation: str | None = typer.Option(None, "--attn-implementation", help="sdpa, eager, flash_attention_2 (default: transformers' choice)."),
    random_init: bool = typer.Option(False, "--random-init", help="Use --model's architecture with fresh random weights (throughput benchmarks; needs no weights)."),
    *,
    train: TrainOptions,
    launch: LaunchSpec,
) -> int | None:
    """Supervised fine-tuning with loss on assistant tokens only, packed without cross-contamination.
    Paper defaults: 2 epochs (one sampling round each with --rounds), LR 2e-5 cosine. Writes
    checkpoints, metrics.jsonl and TensorBoard logs to --output, then the final HF model there.

    Example: in2x sample-difficulty pool.jsonl --total 2000 --rounds 2 | in2x sft - --model runs/cpt --rounds --output runs/sft
    """
    from in2x_cli.errors import UserError
    from in2x_cli.train.launch import launch_or_train
    from in2x_cli.train.sft import LoraOptions, SftConfig, run_sft

    if merge_lora and not lora:
        raise UserError("--merge-lora needs --lora")
    if launch.launcher != "none" and "-" in data:
        raise UserError("reading data from stdin ('-') needs --launcher none: every launched process reads the data itself")
    cfg = SftConfig(
        model=model,
        data=tuple(data),
        train=train,
        max_length=max_length,
        packing=packing,
        epochs=epochs,
        rounds=rounds,
        language_temperature=language_temperature,
        mask_mode=mask_mode,
        lora=LoraOptions(lora_r, lora_alpha, lora_dropout, lora_targets, merge_lora) if lora else None,
        attn_implementation=attn_implementation,
        random_init=random_init,
    )

    def summary() -> str:
        done = run_sft(cfg)
        return f"sft: {done['steps']} steps, {done['tokens_seen']} tokens -> {train.output_dir}"

    return launch_or_train(ctx, "sft", launch, train.output_dir, summary)


def register(app: typer.Typer) -> None:
    app.command("sft")(sft)
