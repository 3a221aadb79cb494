"""``in2x sft``: supervised fine-tuning on chat JSONL (TRL SFTTrainer), assistant-only loss."""

from __future__ import annotations

from pathlib import Path

import typer

from in2x_cli.commands import train_options as opts
from in2x_cli.commands.common import seed_option, trust_remote_code_option


def sft(
    ctx: typer.Context,
    data: list[str] = typer.Argument(..., help="Chat JSONL file(s): rows with 'messages' [{role, content}] (or 'instruction' + 'response'); optional 'lang', 'round'."),
    model: str = typer.Option(..., "--model", "-m", help="Base model: a local HF directory (safetensors) or a cached hub id."),
    output: Path = opts.output_option(),
    epochs: int = typer.Option(2, "--epochs", min=1, help="Passes over the data (paper: 2). Ignored with --rounds."),
    rounds: bool = typer.Option(False, "--rounds", help="Train round r in epoch r: rows carry 'round' from `sample-difficulty --rounds` (paper: one sampling round per epoch); epochs = distinct rounds, ascending."),
    language_temperature: float = typer.Option(
        1.0, "--language-temperature",
        help="The paper's anti-over-fitting temperature (value not given): each epoch re-samples languages with p_l ∝ n_l^(1/T) "
        "(XLM/mT5-style), so one language cannot dominate the model's semantic space. 1 = natural mix (default), 2-5 flattens it. "
        "Chosen over a loss temperature because the language share is the direct lever and keeps the loss a plain NLL.",
    ),  # fmt: skip
    lr: float = typer.Option(2e-5, "--lr", help="Peak learning rate (paper: 2e-5)."),
    lr_schedule: str = typer.Option("cosine", "--lr-schedule", help="cosine (paper), linear or constant, after a linear warm-up."),
    warmup_ratio: float = typer.Option(0.03, "--warmup-ratio", min=0.0, max=0.5, help="Warm-up as a fraction of all steps (paper silent; 0.03 as TRL/Alpaca recipes)."),
    weight_decay: float = typer.Option(0.0, "--weight-decay", help="AdamW weight decay (paper silent)."),
    max_length: int = typer.Option(4096, "--max-length", help="Tokens per conversation (cut at the end) and per packed row (paper silent)."),
    packing: bool = typer.Option(True, "--packing/--no-packing", help="Pack conversations into --max-length rows (best-fit decreasing); attention and positions stay inside each conversation."),
    batch_size: int = opts.batch_size_option(4),
    grad_accum: int = opts.grad_accum_option(1),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Stop after N optimizer steps (the LR schedule still spans N)."),
    mask_mode: str = typer.Option("auto", "--mask-mode", help="How assistant tokens are found: auto, markers ({% generation %} in the template), trl (TRL's training twin of known templates such as Qwen2.5), render (render each prefix)."),
    lora: bool = typer.Option(False, "--lora", help="Train LoRA adapters (peft) instead of all weights."),
    lora_r: int = typer.Option(16, "--lora-r", min=1, help="LoRA rank."),
    lora_alpha: int = typer.Option(32, "--lora-alpha", min=1, help="LoRA alpha (scale = alpha / r)."),
    lora_dropout: float = typer.Option(0.05, "--lora-dropout", min=0.0, max=1.0, help="LoRA dropout."),
    lora_targets: str = typer.Option("all-linear", "--lora-targets", help="Modules to adapt: all-linear or a comma list (q_proj,v_proj)."),
    merge_lora: bool = typer.Option(False, "--merge-lora", help="Merge the adapters into the base weights on save (a plain HF model); otherwise the adapter is saved."),
    attn_implementation: str | None = typer.Option(None, "--attn-implementation", help="sdpa, eager, flash_attention_2 (default: transformers' choice)."),
    random_init: bool = typer.Option(False, "--random-init", help="Use --model's architecture with fresh random weights (throughput benchmarks; needs no weights)."),
    seed: int = seed_option(),
    save_steps: int = opts.save_steps_option(),
    save_total_limit: int = opts.save_total_limit_option(),
    logging_steps: int = opts.logging_steps_option(),
    resume: bool = opts.resume_option(),
    overwrite: bool = opts.overwrite_option(),
    precision: str = opts.precision_option(),
    device: str = opts.device_option(),
    report_to: str = opts.report_to_option(),
    gradient_checkpointing: bool = opts.gradient_checkpointing_option(),
    max_shard_size: str = opts.max_shard_size_option(),
    trust_remote_code: bool = trust_remote_code_option(),
    launcher: str = opts.launcher_option(),
    launch_config: str = opts.launch_config_option(),
    num_processes: int | None = opts.num_processes_option(),
    num_machines: int = opts.num_machines_option(),
    machine_rank: int = opts.machine_rank_option(),
    main_process_ip: str | None = opts.main_process_ip_option(),
    main_process_port: int = opts.main_process_port_option(),
    print_launch: bool = opts.print_launch_option(),
) -> int | None:
    """Supervised fine-tuning with loss on assistant tokens only, packed without cross-contamination.
    Paper defaults: 2 epochs (one sampling round each with --rounds), LR 2e-5 cosine. Writes
    checkpoints, metrics.jsonl and TensorBoard logs to --output, then the final HF model there.

    Example: in2x sample-difficulty pool.jsonl --total 2000 --rounds 2 | in2x sft - --model runs/cpt --rounds --output runs/sft
    """
    from in2x_cli.errors import UserError
    from in2x_cli.train.launch import maybe_launch

    if merge_lora and not lora:
        raise UserError("--merge-lora needs --lora")
    if launcher != "none" and "-" in data:
        raise UserError("reading data from stdin ('-') needs --launcher none: every launched process reads the data itself")
    spec = opts.launch_spec(launcher, launch_config, num_processes, num_machines, machine_rank, main_process_ip, main_process_port, print_launch)
    rc = maybe_launch(spec, ctx, "sft")
    if rc is not None:
        return rc

    from in2x_cli import console
    from in2x_cli.train.options import TrainOptions
    from in2x_cli.train.sft import LoraOptions, SftConfig, run_sft

    cfg = SftConfig(
        model=model,
        data=tuple(data),
        train=TrainOptions(
            output_dir=output,
            seed=seed,
            resume=resume,
            overwrite=overwrite,
            save_steps=save_steps,
            save_total_limit=save_total_limit or None,
            logging_steps=logging_steps,
            precision=precision,
            device=device,
            report_to=tuple(r.strip() for r in report_to.split(",")),
            max_shard_size=max_shard_size,
            gradient_checkpointing=gradient_checkpointing,
            per_device_batch_size=batch_size,
            gradient_accumulation_steps=grad_accum,
        ),
        max_length=max_length,
        packing=packing,
        epochs=epochs,
        rounds=rounds,
        language_temperature=language_temperature,
        learning_rate=lr,
        lr_schedule=lr_schedule,
        warmup_ratio=warmup_ratio,
        weight_decay=weight_decay,
        max_steps=max_steps,
        mask_mode=mask_mode,
        lora=LoraOptions(lora_r, lora_alpha, lora_dropout, lora_targets, merge_lora) if lora else None,
        attn_implementation=attn_implementation,
        random_init=random_init,
        trust_remote_code=trust_remote_code,
        extra={"launch_config": launch_config},
    )
    from in2x_cli.train.rundir import removed_if_left_empty

    with removed_if_left_empty(output):
        summary = run_sft(cfg)
    console.info(f"sft: {summary['steps']} steps, {summary['tokens_seen']} tokens -> {output}")
    return None


def register(app: typer.Typer) -> None:
    app.command("sft")(sft)
