"""``in2x cpt``: continued pretraining on a streamed, token-weighted mixture of text JSONL files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from in2x_cli.commands.train_options import TrainDefaults, training_command

if TYPE_CHECKING:
    from in2x_cli.train.launch import LaunchSpec
    from in2x_cli.train.options import TrainOptions

DEFAULTS = TrainDefaults(
    batch_size=1,
    learning_rate=1e-5,
    learning_rate_note="paper: 3e-5 for phase 3; silent for phases 1-2, 1e-5 is ours",
    lr_scheduler_type="constant",
    lr_scheduler_note="constant for phases 1-2, linear for the phase 3 anneal: decays to 0",
    warmup_steps=0,
    warmup_note="paper silent",
    max_steps_note="or give the budget in tokens with --max-tokens",
)


@training_command(DEFAULTS)
def cpt(
    ctx: typer.Context,
    data: list[str] = typer.Option(..., "--data", "-d", help="Text JSONL source as PATH[:WEIGHT] (repeatable). Weights are token shares: a.jsonl:0.7 --data b.jsonl:0.3."),
    model: str = typer.Option(..., "--model", "-m", help="Base model: a local HF directory (safetensors) or a cached hub id."),
    text_field: str = typer.Option("text", "--text-field", help="Row field holding the document text."),
    seq_len: int = typer.Option(8192, "--seq-len", min=2, help="Tokens per packed row (paper: 8,192 in phase 1, grown to ~32k in phase 2)."),
    max_tokens: str | None = typer.Option(None, "--max-tokens", help="Training budget in tokens, e.g. 2B, 500M, 1e9 (steps = tokens / (seq-len x batch x grad-accum x processes))."),
    min_tokens: int = typer.Option(0, "--min-tokens", min=0, help="Drop documents shorter than this many tokens (phase 2's length filter)."),
    rope_theta: float | None = typer.Option(None, "--rope-theta", help="Long-context phase: set the RoPE base frequency (ABF), e.g. 1000000; stored in the output config.json."),
    rope_scaling: str | None = typer.Option(None, "--rope-scaling", help="Long-context phase: TYPE:FACTOR with TYPE linear, dynamic, yarn or llama3 (e.g. yarn:4); sets config.rope_parameters and max_position_embeddings."),
    ppl_filter: str | None = typer.Option(None, "--ppl-filter", help="Phase 3: score every document's perplexity with this model, write it to OUTPUT/ppl/*.jsonl ('ppl' field) and train on the lowest --keep fraction of each source."),
    keep: float = typer.Option(0.5, "--keep", help="Fraction of each source kept by --ppl-filter, lowest perplexity first (paper silent)."),
    ppl_only: bool = typer.Option(False, "--ppl-only", help="Stop after writing the perplexity-filtered files (inspect them before annealing)."),
    lang_ratio: str | None = typer.Option(None, "--lang-ratio", help="Per-language weights inside each source, e.g. zh=1,en=1,ja=1 (paper: phase 1 balances zh:en:ja; the 1:1:1 values are ours). A row's language is its 'lang' field, else detected; rows in other languages are dropped. The planned weights and the tokens seen per language are in the run summary."),
    ppl_batch_size: int = typer.Option(8, "--ppl-batch-size", min=1, help="Documents per forward pass in the perplexity scoring."),
    shuffle_buffer: int = typer.Option(1000, "--shuffle-buffer", min=0, help="Streaming shuffle buffer per source (0 = file order)."),
    doc_separator: str | None = typer.Option(None, "--doc-separator", help="Token appended to each document (default <|endoftext|> when present, else EOS)."),
    cross_document_attention: bool = typer.Option(False, "--cross-document-attention", help="Let packed documents attend to the ones before them in the row (default: attention and positions restart per document)."),
    *,
    train: TrainOptions,
    launch: LaunchSpec,
) -> int | None:
    """Continued pretraining: sources are interleaved by token share, streamed, packed into
    --seq-len rows (attention stays inside each document) and trained with the transformers Trainer.
    The paper's three phases are three calls, each from the previous output: constant LR at 8k;
    --min-tokens-filtered data at 32k with --rope-theta; then --ppl-filter + --lr 3e-5 --lr-scheduler-type linear.

    Example: in2x cpt --model runs/cpt2 --data web.jsonl --ppl-filter runs/cpt2 --keep 0.3 --ppl-only -o runs/cpt3 && jq -c '{ppl, text}' runs/cpt3/ppl/0-web.kept.jsonl | head
    """
    from in2x_cli.langs import parse_lang_ratio
    from in2x_cli.train.cpt import CptConfig, parse_token_count, run_cpt
    from in2x_cli.train.data import parse_data_spec
    from in2x_cli.train.launch import launch_or_train

    cfg = CptConfig(
        model=model,
        data=tuple(parse_data_spec(d) for d in data),
        train=train,
        text_field=text_field,
        seq_len=seq_len,
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
        lang_ratio=tuple((k, float(v)) for k, v in parse_lang_ratio(lang_ratio).items()) if lang_ratio else None,
    )

    def summary() -> str | None:
        done = run_cpt(cfg)
        return f"cpt: {done['steps']} steps, {done['tokens_seen']} tokens -> {train.output_dir}" if "steps" in done else None

    return launch_or_train(ctx, "cpt", launch, train.output_dir, summary)


def register(app: typer.Typer) -> None:
    app.command("cpt")(cpt)
