"""``in2x synthesize MODE``: options → ``synth.config.resolve_config`` (a checked ``SynthConfig``) →
``synth.run.run_synth`` (the stage)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from in2x_cli.commands.common import backend_option, seed_option, trust_remote_code_option


class Mode(str, Enum):
    self_instruct = "self-instruct"
    magpie = "magpie"
    rewrite = "rewrite"
    answer = "answer"


class Dedup(str, Enum):
    auto = "auto"
    rouge = "rouge"
    embedding = "embedding"
    none = "none"


class Style(str, Enum):
    localize = "localize"
    creative = "creative"
    exam = "exam"
    cultural = "cultural"


def synthesize(
    mode: Mode = typer.Argument(..., help="self-instruct: new tasks from seed tasks (INPUT = seeds JSONL). magpie: user queries from the model's pre-query template (no INPUT). rewrite: INPUT tasks rewritten into --langs in --style. answer: responses for INPUT tasks."),
    input: str | None = typer.Argument(None, help="JSONL of tasks (instruction / prompt / messages; optional lang, id, input); '-' = stdin."),
    model: str = typer.Option(..., "--model", "-m", help="Generating model (local directory or cached hub id); also does ReReading."),
    output: str = typer.Option("-", "--output", "-o", help="Accepted rows (JSONL); '-' = stdout."),
    rejects: str | None = typer.Option(None, "--rejects", help="Rejected rows with stage, reason and detail. Default: OUTPUT.rejects.jsonl next to a file OUTPUT; with stdout output they are only counted on stderr."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run into the same OUTPUT/--rejects: rows already written are skipped, never duplicated; the result equals an uninterrupted run."),
    num: int = typer.Option(100, "--num", "-n", help="self-instruct/magpie: rows to produce, split over --langs by --lang-ratio."),
    langs: str | None = typer.Option(None, "--langs", help="Target languages, e.g. zh,en,ja (the paper's 1:1:1 zh/en/ja is the default). Every output's language is detected (Unicode script ratios, in2x_cli.langs) and wrong-language outputs are rejected."),
    lang_ratio: str | None = typer.Option(None, "--lang-ratio", help="Weights for --langs: 1:1:1, or zh=1,en=1,ja=1. self-instruct/magpie: quota per language; rewrite: share of rows sent to each language; answer: unused (rows keep their language, rows outside --langs are rejected)."),
    rules: Path | None = typer.Option(None, "--rules", help="Text file of rules injected into every generation prompt and checked by ReReading and the critic."),
    prompt_file: Path | None = typer.Option(None, "--prompt-file", help="JSON/YAML mapping prompt names to templates, replacing the built-in ones (see in2x_cli/prompts/synthesize.py for names and placeholders)."),
    style: Style = typer.Option(Style.localize, "--style", help="rewrite: localize (natural native task), creative (story/dialogue/role-play form), exam (target-language exam style; answers with a reasoning chain), cultural (move into the target culture)."),
    dedup: Dedup = typer.Option(Dedup.auto, "--dedup", help="Near-duplicate rejection of each final instruction (after --reread, so a rewrite is checked as written) against the seeds and earlier outputs of the same language: rouge (ROUGE-L F1: words for Latin script, characters for CJK), embedding (cosine), none. auto = rouge for self-instruct/magpie, none otherwise."),
    dedup_threshold: float | None = typer.Option(None, "--dedup-threshold", help="Reject at similarity >= this. Default 0.7 for rouge (Self-Instruct), 0.9 for embedding (the paper is silent)."),
    embedder: str = typer.Option("hashing", "--embedder", help="--dedup embedding: hashing (= ngram-hash: offline character n-gram hashing) or module:function(texts) -> (n, d) array (registry: in2x_cli/embedders.py)."),
    embed_model: str | None = typer.Option(None, "--embed-model", help="--dedup embedding with a Hugging Face / sentence-transformers encoder (directory or cached hub id) instead of --embedder."),
    num_demos: int = typer.Option(8, "--num-demos", help="self-instruct: seed tasks shown per prompt (Self-Instruct uses 8), preferring seeds in the target language."),
    no_answer: bool = typer.Option(False, "--no-answer", help="Produce instructions only (no response, no messages)."),
    temperature: float | None = typer.Option(None, "--temperature", help="Sampling temperature for new instructions. Default: 0.7 self-instruct (Self-Instruct), 1.0 magpie (Magpie), 0.7 rewrite."),
    top_p: float | None = typer.Option(None, "--top-p", help="Top-p for new instructions. Default: 0.5 self-instruct (Self-Instruct), 1.0 otherwise."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Token limit for a new instruction; one that hits it is rejected as truncated."),
    answer_temperature: float = typer.Option(0.0, "--answer-temperature", help="Temperature for responses (0 = greedy, as Magpie)."),
    answer_max_tokens: int = typer.Option(1024, "--answer-max-tokens", help="Token limit for responses (truncated ones are rejected) and for the critic's own answer."),
    critic_model: str | None = typer.Option(None, "--critic-model", help="Critic: answers each task itself, then judges it as JSON {contradiction, hallucination, invalid, reason}; any flag rejects the row (reason critic_flagged)."),
    critic_backend: str | None = typer.Option(None, "--critic-backend", help="Backend for --critic-model (default: --backend)."),
    reread: bool = typer.Option(False, "--reread", help="ReReading: the model re-reads each task (correctness, cultural norms, native style) and answers JSON keep/rewrite/reject; rewrites keep the original in reread.original_instruction."),
    order: str = typer.Option("paper", "--order", help="Stage order after generation: paper (the critic validates task + response, then ReReading; a rewritten task is answered again; near-duplicates checked last) or reread-first (ReReading, near-duplicates, answer, critic: rejects early and saves answer calls)."),
    judge_retries: int = typer.Option(1, "--judge-retries", help="A critic or ReReading reply without exactly one valid JSON verdict is asked again this many times (a follow-up turn); still invalid → rejected as critic_unparseable / reread_unparseable. Counted on stderr and in the .meta.json."),
    judge_max_tokens: int = typer.Option(512, "--judge-max-tokens", help="Token limit for critic and ReReading verdicts."),
    max_attempts: float = typer.Option(4.0, "--max-attempts", help="self-instruct/magpie: give a language up after quota x this many candidates (reported on stderr)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Requests per backend call (and per block of candidates); does not change the rows."),
    backend: str = backend_option(),
    seed: int = seed_option(),
    trust_remote_code: bool = trust_remote_code_option(),
) -> None:
    """Synthesize instruction data the In2x way: Self-Instruct and Magpie generation under
    rule-laden prompts, cultural/localized rewrites, answers; then ReReading self-review, a critic
    that flags contradiction / hallucination / invalid results, language detection and
    near-duplicate rejection. Output rows: id, mode, lang, source, instruction, response, messages
    (user + assistant, ready for in2x sft), critic, reread (+ seed_ids / origin_id / style,
    source_instruction). Rejected rows go to --rejects with stage, reason and detail.

    Example: head -20 in2x_cli/data/tiny/instructions.jsonl | in2x synthesize answer - -m runs/tiny --critic-model runs/tiny --reread > answered.jsonl

    Example: in2x synthesize self-instruct in2x_cli/data/tiny/seed_tasks.jsonl -m Qwen/Qwen2.5-7B-Instruct --num 3000 --langs zh,en,ja --lang-ratio 1:1:1 --rules rules.txt --reread --critic-model judge/ -o si.jsonl --resume
    """
    from in2x_cli.synth.config import resolve_config
    from in2x_cli.synth.run import run_synth

    cfg = resolve_config(
        mode=mode.value, input=input, model=model, output=output, rejects=rejects, resume=resume, num=num, langs=langs, lang_ratio=lang_ratio,
        rules=str(rules) if rules else None, prompt_file=str(prompt_file) if prompt_file else None, style=style.value, dedup=dedup.value,
        dedup_threshold=dedup_threshold, embedder=embedder, embed_model=embed_model, num_demos=num_demos, answer=not no_answer,
        temperature=temperature, top_p=top_p, max_tokens=max_tokens, answer_temperature=answer_temperature, answer_max_tokens=answer_max_tokens,
        critic_model=critic_model, critic_backend=critic_backend, reread=reread, judge_retries=judge_retries, judge_max_tokens=judge_max_tokens,
        max_attempts=max_attempts, batch_size=batch_size, backend=backend, seed=seed, trust_remote_code=trust_remote_code,
        order=order,
    )  # fmt: skip
    run_synth(cfg, rules_file=str(rules) if rules else None)


def register(app: typer.Typer) -> None:
    app.command("synthesize")(synthesize)
