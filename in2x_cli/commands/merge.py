"""``in2x merge``: fuse checkpoints (linear, task arithmetic, TIES, DARE, Fisher, OBIM) in bounded
memory; ``in2x merge fisher-stats`` / ``activation-stats``: precompute calibration statistics.

``merge`` is a typer group: its own options run a merge, its subcommands compute statistics.
Options go before a subcommand name, so the merge itself takes models via ``--model`` (repeated)
rather than positionally.
"""

from __future__ import annotations

from pathlib import Path

import typer

from in2x_cli import console
from in2x_cli.commands.common import trust_remote_code_option
from in2x_cli.errors import UserError

METHOD_HELP = (
    "linear | task_arithmetic | ties | dare_ties | dare_linear | dare (= dare_ties) | fisher | obim, "
    "or use --config. Defaults per method follow mergekit (linear/ties normalize on, task_arithmetic/dare off, "
    "DARE rescale on, density 1, weight 1); obim keeps density 0.2 per model (the OBIM abstract gives no value; "
    "0.2 is TIES's top-20%)."
)
SHARD_HELP = "Largest output shard (5GB, 500MB, 2GiB); peak memory is about one shard plus one tensor per input."

merge_app = typer.Typer(
    name="merge",
    invoke_without_command=True,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@merge_app.callback()
def merge(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", "-c", help="mergekit-shaped YAML recipe (merge_method, base_model, models[].parameters, parameters, dtype, tokenizer_source); replaces the method flags."),
    method: str | None = typer.Option(None, "--method", help=METHOD_HELP),
    base: str | None = typer.Option(None, "--base", help="Base model directory (task vectors are θ_i − base); required by all methods but linear and fisher."),
    model: list[str] = typer.Option([], "--model", "-m", help="A model to merge (repeat). For obim the order is the priority order: earlier models claim contested positions."),
    weight: list[float] = typer.Option([], "--weight", "-w", help="Per-model weight w_i: once for all models or once per --model (default 1)."),
    density: list[float] = typer.Option([], "--density", "-d", help="Per-model kept fraction (ties/dare trim or keep; obim top-p): once or once per --model."),
    lambda_: float | None = typer.Option(None, "--lambda", help="Scale λ of the merged task vector (task_arithmetic/ties/dare; default 1)."),
    normalize: bool | None = typer.Option(None, "--normalize/--no-normalize", help="Divide by the (agreeing) weights' sum; default per method as mergekit."),
    rescale: str | None = typer.Option(None, "--rescale", help="DARE rescale: true/l1 (mergekit: match the delta's L1 norm), inverse_density (the paper's 1/(1-p)), false."),
    calibration: list[str] = typer.Option([], "--calibration", help="fisher/obim calibration JSONL (text, messages or instruction+response rows): once for all models or once per --model. Computing statistics loads each model whole."),
    stats: list[str] = typer.Option([], "--stats", help="Statistics directories from `in2x merge fisher-stats` / `activation-stats`, once per --model ('' = none for that model)."),
    dtype: str | None = typer.Option(None, "--dtype", help="float32 | bfloat16 | float16: inputs are cast to it and the output saved in it (default: each tensor's own dtype). task_arithmetic/ties/dare compute in the inputs' dtype as mergekit does; linear/fisher/obim in float32."),
    tokenizer_source: str | None = typer.Option(None, "--tokenizer-source", help="Model whose config/tokenizer files the output gets (default: the base, else the first model)."),
    resize_vocab: bool = typer.Option(False, "--resize-vocab", help="Allow differing vocabulary sizes: cut/pad embedding rows to the tokenizer source's (missing rows copied from it)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for DARE's random masks (per tensor, order-independent; default 0 or the YAML seed)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output model directory (created atomically)."),
    shard_size: str = typer.Option("2GB", "--shard-size", help=SHARD_HELP),
    device: str = typer.Option("cpu", "--device", help="Where the tensor arithmetic runs: cpu or cuda (tensors are still streamed one at a time; DARE masks then differ from CPU ones)."),
    calibration_device: str = typer.Option("auto", "--calibration-device", help="Device for computing statistics from --calibration (auto = cuda if available)."),
    max_examples: int = typer.Option(128, "--max-examples", help="Calibration rows used per model (the first N)."),
    max_length: int = typer.Option(512, "--max-length", help="Calibration tokens per row (longer rows are truncated)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output directory."),
    trust_remote_code: bool = trust_remote_code_option(),
) -> None:
    """Merge checkpoints tensor by tensor in bounded memory into a sharded safetensors model that
    loads with AutoModelForCausalLM.from_pretrained (config/tokenizer copied, provenance JSON inside).

    Methods: linear (Σw·θ/Σw), task_arithmetic (base + λΣw·δ), ties (trim to density, elect sign by
    summed mass, disjoint mean), dare_ties/dare_linear (random drop + rescale), fisher (Σw·F·θ/Σw·F,
    diagonal Fisher from squared log-likelihood gradients on calibration data, floor 1e-6), obim
    (saliency δ²·‖X_j‖² for linear layers from calibration inputs, δ² otherwise; top-p per model;
    mutually exclusive: in --model order, each model writes only positions no earlier model took).
    Same YAML as mergekit gives the same tensors for linear/task_arithmetic/ties (and dare given
    the same masks). Inputs must share architecture, tensor names, shapes and vocabulary size.

    Example: printf 'merge_method: ties\\nbase_model: base\\nmodels:\\n  - {model: ja, parameters: {weight: 1, density: 0.5}}\\n  - {model: zh, parameters: {weight: 1, density: 0.5}}\\n' | in2x merge -c - -o merged
    """
    if ctx.invoked_subcommand is not None:
        return
    from in2x_cli.io.checkpoint import parse_size
    from in2x_cli.merge.config import recipe_from_options
    from in2x_cli.merge.run import RunOptions, run_merge

    if output is None:
        raise UserError("missing --output/-o (the merged model directory)")
    flags = {"method": method, "base_model": base, "models": model, "weights": weight, "densities": density, "lambda_": lambda_,
             "normalize": normalize, "rescale": rescale, "calibration": calibration, "stats": stats, "dtype": dtype,
             "tokenizer_source": tokenizer_source}  # fmt: skip
    recipe = recipe_from_options(str(config) if config is not None else None, flags, seed=seed, resize_vocab=resize_vocab)
    opts = RunOptions(
        output=output, shard_bytes=parse_size(shard_size), device=device, overwrite=overwrite, max_examples=max_examples,
        max_length=max_length, calibration_device=calibration_device, trust_remote_code=trust_remote_code,
    )
    summary = run_merge(recipe, opts)
    onto = f" onto {recipe.base_model}" if recipe.base_model and recipe.spec.base == "required" else ""  # linear/fisher merge no base
    console.info(
        f"merge: {recipe.method} of {len(recipe.models)} model(s){onto} → "
        f"{output} ({summary.tensors} tensors, {summary.bytes / 1e6:.1f} MB in {len(summary.files)} file(s), {summary.seconds:.1f}s)"
    )


FISHER_DOC = """Diagonal Fisher of a model on calibration data, saved for `in2x merge --method fisher --stats DIR`.

    F = mean over rows of (∇ mean target-token log-likelihood)², one backward pass per row (loads
    the whole model with gradients: ~3× its float32 size in memory; use a GPU for large models).

    Example: in2x merge fisher-stats runs/sft-ja --calibration ja.jsonl -o runs/sft-ja.fisher && in2x merge --method fisher -m runs/sft-ja -m runs/sft-zh --stats runs/sft-ja.fisher --stats runs/sft-zh.fisher -o merged
    """

ACT_DOC = """Squared input norms ‖X_j‖² of every linear layer on calibration data, for `in2x merge --method obim --stats DIR`.

    Forward passes only (loads the whole model). OBIM's saliency of δ_ij is then δ_ij²·‖X_j‖².

    Example: head -64 ja.jsonl | in2x merge activation-stats runs/sft-ja --calibration - -o runs/sft-ja.act
    """

STATS_COMMANDS = {"fisher": ("fisher-stats", FISHER_DOC), "activations": ("activation-stats", ACT_DOC)}


def _stats_command(kind: str, name: str, doc: str):  # noqa: ANN202 - typer reads the signature
    def command(
        model: str = typer.Argument(..., help="Model directory (safetensors + tokenizer)."),
        calibration: str = typer.Option(..., "--calibration", help="Calibration JSONL ('-' = stdin): text, messages or instruction+response rows."),
        output: Path = typer.Option(..., "--output", "-o", help="Statistics directory to create (safetensors keyed like the checkpoint)."),
        max_examples: int = typer.Option(128, "--max-examples", help="Rows used (the first N)."),
        max_length: int = typer.Option(512, "--max-length", help="Tokens per row (longer rows are truncated)."),
        device: str = typer.Option("auto", "--device", help="auto (cuda if available) | cpu | cuda."),
        dtype: str = typer.Option("float32", "--dtype", help="Dtype the model runs in (statistics accumulate in float32)."),
        shard_size: str = typer.Option("2GB", "--shard-size", help="Largest statistics shard."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing directory."),
        trust_remote_code: bool = trust_remote_code_option(),
    ) -> None:
        from in2x_cli.io.checkpoint import parse_size
        from in2x_cli.merge.config import normalize_dtype
        from in2x_cli.merge.run import run_stats
        from in2x_cli.merge.stats import StatsConfig

        cfg = StatsConfig(kind=kind, max_examples=max_examples, max_length=max_length, device=device,  # type: ignore[arg-type]
                          dtype=normalize_dtype(dtype, "--dtype") or "float32", trust_remote_code=trust_remote_code)
        meta = run_stats(model, calibration, output, cfg, shard_bytes=parse_size(shard_size), overwrite=overwrite, command=f"merge {name}")
        console.info(f"merge {name}: {meta['examples']} examples, {meta['tokens']} tokens → {output} ({meta['tensors']} tensors)")

    command.__doc__ = doc
    return command


for _kind, (_name, _doc) in STATS_COMMANDS.items():
    merge_app.command(_name)(_stats_command(_kind, _name, _doc))


def register(app: typer.Typer) -> None:
    app.add_typer(merge_app, name="merge")
