"""``in2x cpt``: continued pretraining on a streamed, token-weighted mixture of text JSONL files."""

from __future__ import annotations

from pathlib import Path

import typer

from in2x_cli.commands import train_options as opts
from in2x_cli.commands.common import seed_option, trust_remote_code_option


def cpt(
    ctx: typer.Context,
    data: list[str] = typer.Option(..., "--data", "-d", help="Text JSONL source as PATH[:WEIGHT] (repeatable). Weights are token shares: a.jsonl:0.7 --data b.jsonl:0.3."),
    model: str = typer.Option(..., "--model", "-m", help="Base model: a local HF directory (safetensors) or a cached hub id."),
    output: Path = opts.output_option(),
    text_field: str = typer.Option("text", "--text-field", help="Row field holding the document text."),
    seq_len: int = typer.Option(8192, "--seq-len", min=2, help="Tokens per packed row (paper: 8,192 in phase 1, grown to ~32k in phase 2)."),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Training budget in optimizer steps (or use --max-tokens)."),
    max_tokens: str | None = typer.Option(None, "--max-tokens", help="Training budget in tokens, e.g. 2B, 500M, 1e9 (steps = tokens / (seq-len x batch x grad-accum x processes))."),
    lr: float = typer.Option(1e-5, "--lr", help="Peak learning rate. Paper: 3e-5 for phase 3; silent for phases 1-2 (1e-5 is our default)."),
    lr_schedule: str = typer.Option("constant", "--lr-schedule", help="constant (phases 1-2), linear (phase 3 anneal: decays to 0) or cosine; after a linear warm-up."),
    warmup_steps: int = typer.Option(0, "--warmup-steps", min=0, help="Linear warm-up steps (paper silent)."),
    weight_decay: float = typer.Option(0.0, "--weight-decay", help="AdamW weight decay (paper silent)."),
    min_tokens: int = typer.Option(0, "--min-tokens", min=0, help="Drop documents shorter than this many tokens (phase 2's length filter)."),
    rope_theta: float | None = typer.Option(None, "--rope-theta", help="Long-context phase: set the RoPE base frequency (ABF), e.g. 1000000; stored in the output config.json."),
    rope_scaling: str | None = typer.Option(None, "--rope-scaling", help="Long-context phase: TYPE:FACTOR with TYPE linear, dynamic, yarn or llama3 (e.g. yarn:4); sets config.rope_parameters and max_position_embeddings."),
    ppl_filter: str | None = typer.Option(None, "--ppl-filter", help="Phase 3: score every document's perplexity with this model, write it to OUTPUT/ppl/*.jsonl ('ppl' field) and train on the lowest --keep fraction of each source."),
    keep: float = typer.Option(0.5, "--keep", help="Fraction of each source kept by --ppl-filter, lowest perplexity first (paper silent)."),
    ppl_only: bool = typer.Option(False, "--ppl-only", help="Stop after writing the perplexity-filtered files (inspect them before annealing)."),
    ppl_batch_size: int = typer.Option(8, "--ppl-batch-size", min=1, help="Documents per forward pass in the perplexity scoring."),
    shuffle_buffer: int = typer.Option(1000, "--shuffle-buffer", min=0, help="Streaming shuffle buffer per source (0 = file order)."),
    doc_separator: str | None = typer.Option(None, "--doc-separator", help="Token appended to each document (default <|endoftext|> when present, else EOS)."),
    cross_document_attention: bool = typer.Option(False, "--cross-document-attention", help="Let packed documents attend to the ones before them in the row (default: attention and positions restart per document)."),
    batch_size: int = opts.batch_size_option(1),
    grad_accum: int = opts.grad_accum_option(1),
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
    """Continued pretraining: sources are interleaved by token share, streamed, packed into
    --seq-len rows (attention stays inside each document) and trained with the transformers Trainer.
    The paper's three phases are three calls, each from the previous output: constant LR at 8k;
    --min-tokens-filtered data at 32k with --rope-theta; then --ppl-filter + --lr 3e-5 --lr-schedule linear.

    Example: in2x cpt --model runs/cpt2 --data web.jsonl --ppl-filter runs/cpt2 --keep 0.3 --ppl-only -o runs/cpt3 && jq -c '{ppl, text}' runs/cpt3/ppl/0-web.kept.jsonl | head
    """
    from in2x_cli.errors import UserError
    from in2x_cli.train.launch import maybe_launch

    if any(d == "-" or d.startswith("-:") for d in data):
        raise UserError("cpt re-reads its sources (validation, restarts when a source runs out): pass files, not stdin")
    if lr_schedule not in ("constant", "linear", "cosine"):
        raise UserError(f"unknown --lr-schedule {lr_schedule!r} (expected constant, linear or cosine)")
    spec = opts.launch_spec(launcher, launch_config, num_processes, num_machines, machine_rank, main_process_ip, main_process_port, print_launch)
    rc = maybe_launch(spec, ctx, "cpt")
    if rc is not None:
        return rc

    from in2x_cli import console
    from in2x_cli.train.cpt import CptConfig, parse_token_count, run_cpt
    from in2x_cli.train.data import parse_data_spec
    from in2x_cli.train.options import TrainOptions

    cfg = CptConfig(
        model=model,
        data=tuple(parse_data_spec(d) for d in data),
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
        text_field=text_field,
        seq_len=seq_len,
        learning_rate=lr,
        lr_schedule=lr_schedule,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        max_steps=max_steps,
        max_tokens=parse_token_count(max_tokens) if max_tokens else None,
        min_tokens=min_tokens,
        shuffle_buffer=shuffle_buffer,
        doc_separator=doc_separator,
        cross_document_attention=cross_document_attention,
        rope_theta=rope_theta,
        rope_scaling=rope_scaling,
        ppl_filter=ppl_filter,
        keep=keep,
        ppl_only=ppl_only,
        ppl_batch_size=ppl_batch_size,
        trust_remote_code=trust_remote_code,
        extra={"launch_config": launch_config},
    )
    from in2x_cli.train.rundir import removed_if_left_empty

    with removed_if_left_empty(output):
        summary = run_cpt(cfg)
    if "steps" in summary:
        console.info(f"cpt: {summary['steps']} steps, {summary['tokens_seen']} tokens -> {output}")
    return None


def register(app: typer.Typer) -> None:
    app.command("cpt")(cpt)
