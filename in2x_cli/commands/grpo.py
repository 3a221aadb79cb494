"""``in2x grpo``: Trajectory-Corrected GRPO with rule-based and generative rewards."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from in2x_cli.commands.common import BACKEND_HELP
from in2x_cli.commands.train_options import TrainDefaults, training_command
from in2x_cli.errors import UserError

if TYPE_CHECKING:
    from in2x_cli.train.launch import LaunchSpec
    from in2x_cli.train.options import TrainOptions

DEFAULTS = TrainDefaults(
    batch_size=8,
    learning_rate=1e-6,
    learning_rate_note="paper silent; 1e-6 as TRL and verl",
    lr_scheduler_type="constant",
    lr_scheduler_note="paper silent; constant as verl",
    warmup_steps=0,
    warmup_note="paper silent",
    max_steps_note="default: the epochs",
    grad_accum=False,
    save_steps=100,
    logging_steps=1,
)


@training_command(DEFAULTS)
def grpo(
    ctx: typer.Context,
    prompts: str = typer.Argument(..., help="Prompt JSONL ('-' = stdin): rows with 'messages', 'instruction' (or 'prompt'/'query'), or 'src' + 'tgt_lang'; other fields (answer, ref, ...) reach the rewards."),
    model: str = typer.Option(..., "--model", "-m", help="Policy to train: a local HF model directory (e.g. an sft output) or a cached hub id."),
    reward: list[str] = typer.Option(..., "--reward", "-r", help="Reward NAME[:WEIGHT], repeatable: math_exact, format, language_match, translation_chrf, translation_bleu, translation_comet, generative_judge, repetition, terminology, round_trip, gemba, or module:function."),
    num_generations: int = typer.Option(16, "--num-generations", "-G", help="Rollouts per prompt (paper: 16)."),
    rollout_batch: int = typer.Option(128, "--rollout-batch", help="Prompts sampled per rollout batch (paper: batch 128)."),
    minibatch: int = typer.Option(32, "--minibatch", help="Prompts per optimizer update (paper: minibatch 32); rollout-batch/minibatch updates per rollout batch, all but the first off-policy."),
    num_iterations: int = typer.Option(1, "--num-iterations", min=1, help="Passes over each rollout batch (paper: 1)."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over the prompt set (paper: one epoch)."),
    max_completion_tokens: int = typer.Option(1024, "--max-completion-tokens", min=1, help="Longest rollout in tokens (paper silent)."),
    temperature_start: float = typer.Option(1.0, "--temperature-start", help="Sampling temperature of the first rollout batch (paper decays it but gives no values)."),
    temperature_end: float = typer.Option(0.7, "--temperature-end", help="Sampling temperature of the last rollout batch; linear in between (equal to start = constant)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling for rollouts."),
    ratio_level: str = typer.Option("trajectory", "--ratio-level", help="Importance ratio: trajectory (TIC-GRPO, paper), sequence-mean (GSPO) or token (GRPO)."),
    advantage: str = typer.Option("auto", "--advantage", help="auto (ours, default): TIC-GRPO's length-corrected (r/L - mean)/std in groups whose rewards are pass/fail (0 or one positive value: math_exact, at any weight), GRPO's (r - mean)/std elsewhere; length-corrected: r/L everywhere (with dense rewards such as chrF or the judge's fraction it ranks truncated answers above full ones: bench/grpo_ablation.py); group; reference-length: r*min(1, L_ref/L), L_ref the token length of the row's 'ref' (or 'answer'); rows without one are not rescaled."),
    epsilon_high: float = typer.Option(0.28, "--epsilon-high", help="Upper clip of a token's ratio, 1+eps (paper silent; DAPO's clip-higher 0.28). No lower clip unless --symmetric-clip."),
    clip_scale: str = typer.Option("sqrt-length", "--clip-scale", help="Trajectory ratios only (a product of L token ratios): clip log w at log(1+eps)*s(L) and the dual clip at log(c)*s(L), s = sqrt(L) (sqrt-length, ours), L (length: the geometric-mean ratio at 1+eps) or 1 (none)."),
    symmetric_clip: bool = typer.Option(False, "--symmetric-clip", help="Also clip negative-advantage samples whose log w falls below -log(1+eps)*s(L): the positive bound mirrored in log-space."),
    dual_clip: float = typer.Option(3.0, "--dual-clip", help="Dual clip c for negative advantages: objective >= c*A (verl's clip_ratio_c 3; 0 = off)."),
    entropy_coef: float = typer.Option(0.01, "--entropy-coef", help="Entropy bonus coefficient (paper: 0.01)."),
    kl_coef: float = typer.Option(0.0, "--kl-coef", help="KL penalty to the initial model (paper: none; > 0 keeps a reference copy)."),
    length_penalty: str | None = typer.Option(None, "--length-penalty", help="Soft length penalty TARGET:CAP in tokens: 0 up to TARGET, linear to -weight at CAP (paper: on, values not given)."),
    length_penalty_weight: float = typer.Option(1.0, "--length-penalty-weight", help="Penalty at and beyond CAP."),
    reward_clip_high: float | None = typer.Option(None, "--reward-clip-high", help="Clip the total reward at this value from above (paper: on, value not given)."),
    format_tags: str = typer.Option("think", "--format-tags", help="Comma-separated tags the 'format' reward requires in order (rows may override with 'format_tags')."),
    comet_model: str | None = typer.Option(None, "--comet-model", help="COMET checkpoint for translation_comet."),
    judge_model: str | None = typer.Option(None, "--judge-model", help="Judge model for generative_judge and gemba (GEMBA-ESA). generative_judge scores open-ended rows only: a row with a reference ('answer' or 'ref') is left to the rule rewards (None) unless it sets \"judge\": true; \"judge\": false skips a row."),
    judge_backend: str = typer.Option("transformers", "--judge-backend", help=BACKEND_HELP),
    principles: Path | None = typer.Option(None, "--principles", help="Judge principles, one per line (default: five generic ones; the paper's are not published)."),
    judge_max_tokens: int = typer.Option(512, "--judge-max-tokens", min=16, help="Longest judge reply."),
    glossary: Path | None = typer.Option(None, "--glossary", help="terminology reward: JSONL of {\"src\": TERM, \"tgt\": RENDERING} (default: key terms shared by src and ref)."),
    round_trip_model: str | None = typer.Option(None, "--round-trip-model", help="round_trip reward: the back-translation model (tgt → src)."),
    round_trip_backend: str = typer.Option("transformers", "--round-trip-backend", help=BACKEND_HELP),
    eval_prompts: str | None = typer.Option(None, "--eval-prompts", help="Held-out prompt JSONL (same rows as PROMPTS): scored before training and every --eval-steps updates; metrics.jsonl gets eval_reward, eval_completions/mean_length and eval_completions/clipped_ratio (reward up with length not collapsing = not gaming the reward)."),
    eval_steps: int = typer.Option(0, "--eval-steps", min=0, help="Updates between held-out evaluations (0 = only at the start and the end)."),
    rollout_engine: str = typer.Option("auto", "--rollout-engine", help="auto (TRL's colocated vLLM when installed with a GPU, else transformers), vllm or transformers."),
    vllm_gpu_memory: float = typer.Option(0.3, "--vllm-gpu-memory", help="Share of each GPU's memory the colocated vLLM rollout engine takes (TRL's default 0.3)."),
    judge_gpu_memory: float = typer.Option(0.3, "--judge-gpu-memory", help="Share of each GPU's memory a vLLM judge takes (ours). With vLLM rollouts the two must add up to at most 0.95; training uses the rest."),
    *,
    train: TrainOptions,
    launch: LaunchSpec,
) -> int | None:
    """Reinforcement learning with Trajectory-Corrected GRPO (In2x / TIC-GRPO): one importance
    ratio per rollout, upper-only and dual clipping on the trajectory's scale, length-corrected
    advantages where rewards are pass/fail, entropy bonus, temperature decay; rewards are weighted
    rule-based and generative-judge functions, each scoring only the rows it applies to. Writes an HF
    model directory with metrics.jsonl, checkpoints (--resume) and provenance.

    Example: jq -c 'select(.answer) | {instruction, answer}' in2x_cli/data/tiny/instructions.jsonl | in2x grpo - --model runs/sft --output runs/grpo --reward math_exact --reward format:0.2 -G 8 --rollout-batch 8 --minibatch 4
    """
    from in2x_cli.io import read_text_lines
    from in2x_cli.rewards import DEFAULT_PRINCIPLES, RewardContext, parse_reward_spec
    from in2x_cli.train.grpo import GRPORunConfig, parse_length_penalty, run_grpo
    from in2x_cli.train.launch import launch_or_train

    if launch.launcher != "none" and prompts == "-":
        raise UserError("reading prompts from stdin ('-') needs --launcher none: every launched process reads the prompts itself")
    principle_lines = tuple(p.strip() for p in read_text_lines(principles) if p.strip()) if principles else DEFAULT_PRINCIPLES
    if principles and not principle_lines:
        raise UserError("no principles in the file (one per line)", str(principles))
    cfg = GRPORunConfig(
        model=model,
        prompts=prompts,
        train=train,
        rewards=tuple(parse_reward_spec(r) for r in reward),
        reward_context=RewardContext(
            format_tags=tuple(t.strip() for t in format_tags.split(",") if t.strip()),
            comet_model=comet_model,
            judge_model=judge_model,
            judge_backend=judge_backend,
            judge_gpu_memory_utilization=judge_gpu_memory,
            principles=principle_lines,
            judge_max_tokens=judge_max_tokens,
            trust_remote_code=train.trust_remote_code,
            seed=train.seed,
            glossary=str(glossary) if glossary else None,
            round_trip_model=round_trip_model,
            round_trip_backend=round_trip_backend,
        ),
        num_generations=num_generations,
        rollout_batch=rollout_batch,
        minibatch=minibatch,
        num_iterations=num_iterations,
        epochs=epochs,
        max_completion_tokens=max_completion_tokens,
        temperature_start=temperature_start,
        temperature_end=temperature_end,
        top_p=top_p,
        ratio_level=ratio_level,
        advantage=advantage,
        clip_scale=clip_scale,
        symmetric_clip=symmetric_clip,
        epsilon_high=epsilon_high,
        dual_clip=dual_clip or None,
        entropy_coef=entropy_coef,
        kl_coef=kl_coef,
        length_penalty=parse_length_penalty(length_penalty),
        length_penalty_weight=length_penalty_weight,
        reward_clip_high=reward_clip_high,
        eval_prompts=eval_prompts,
        eval_steps=eval_steps,
        rollout_engine=rollout_engine,
        vllm_gpu_memory_utilization=vllm_gpu_memory,
    )
    return launch_or_train(ctx, "grpo", launch, train.output_dir, lambda: f"grpo: wrote {run_grpo(cfg)}")


def register(app: typer.Typer) -> None:
    app.command("grpo")(grpo)
