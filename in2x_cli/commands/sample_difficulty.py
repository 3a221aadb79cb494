"""``in2x sample-difficulty``: options → ``SampleRun`` → ``sample.run.run_sample`` (the stage)."""

from __future__ import annotations

import typer

from in2x_cli.commands.common import backend_option, seed_option, trust_remote_code_option
from in2x_cli.errors import UserError


def sample_difficulty(
    input: str = typer.Argument("-", help="Input JSONL ('-' = stdin): rows with lang, difficulty (or something to grade it), optional cluster and tag."),
    output: str = typer.Option("-", "--output", "-o", help="Output JSONL ('-' = stdout): the picked rows with canonical difficulty, tag and round."),
    total: int = typer.Option(None, "--total", "-n", help="Rows per round (the paper: 1.5M)."),
    ratio: str = typer.Option("3:3:3:1:0", "--ratio", help="very_hard:hard:medium:easy:very_easy weights (the paper's 3:3:3:1:0)."),
    lang_ratio: str = typer.Option("zh=1,en=1,ja=1", "--lang-ratio", help="Language weights, zh=1,en=1,ja=1 or 1:1:1 (= zh:en:ja; the paper's 1:1:1); other languages are left out."),
    rounds: int = typer.Option(1, "--rounds", help="Sampling rounds (the paper: one per epoch). Disjoint when the pool allows: a stratum of n rows gives at most n//R per round and short strata follow --shortfall; rows are reused only when the pool is too small, with a warning."),
    shortfall: str = typer.Option("redistribute", "--shortfall", help="Short strata: redistribute (to other levels of the language, then other languages), none (leave missing), or shrink (lower the total, keep the ratio exactly)."),
    report: str = typer.Option(None, "--report", help="Write the JSON report here (default: a one-line summary on stderr; the whole report with -v)."),
    rejects: str = typer.Option(None, "--rejects", help="Write rows whose grading failed here (JSONL, with grade_error)."),
    grade_only: bool = typer.Option(False, "--grade-only", help="Grade and write every gradable row (all languages), no sampling."),
    field: str = typer.Option(None, "--field", help="Text field for grading (default: instruction/prompt/query, else the first user message)."),
    judge_model: str = typer.Option(None, "--judge-model", help="LLM that tags and grades rows without difficulty (JSON verdict, validated, retried once)."),
    solve_model: str = typer.Option(None, "--solve-model", help="Model whose pass@k solve rate grades rows that carry an answer (cut-offs: --cutoffs)."),
    backend: str = backend_option(),
    k: int = typer.Option(16, "--k", help="pass@k samples per row for --solve-model."),
    batch_size: int = typer.Option(32, "--batch-size", help="Rows per grading call (one batch is the most a kill can lose)."),
    judge_max_tokens: int = typer.Option(256, "--judge-max-tokens", help="Token budget of a judge verdict."),
    solve_max_tokens: int = typer.Option(1024, "--solve-max-tokens", help="Token budget of one solution sample."),
    solve_temperature: float = typer.Option(0.7, "--solve-temperature", help="Sampling temperature for pass@k (the paper is silent)."),
    cutoffs: str = typer.Option("0.2,0.4,0.6,0.8", "--cutoffs", help="Solve-rate cut-offs very_hard|hard|medium|easy|very_easy (rate < 0.2 is very_hard … ≥ 0.8 very_easy)."),
    grades: str = typer.Option(None, "--grades", help="Grades JSONL (one verdict per prompt; default: OUTPUT.grades.jsonl when --output is a file)."),
    resume: bool = typer.Option(False, "--resume", help="Reuse the grades file (and its .partial after a kill) and grade only what is missing."),
    trust_remote_code: bool = trust_remote_code_option(),
    seed: int = seed_option(),
) -> None:
    """Draw a difficulty-stratified, language-balanced sample, round-robin over clusters and tags;
    grade rows that lack `difficulty` with an LLM judge or by pass@k solve rate first.

    Example: in2x cluster pool.jsonl | in2x sample-difficulty - --total 1000 --rounds 2 --report report.json > picked.jsonl
    """
    from in2x_cli.core.sampling import SHORTFALL_RULES
    from in2x_cli.io import check_output_path
    from in2x_cli.langs import DEFAULT_LANGS, parse_lang_ratio
    from in2x_cli.sample.config import SampleRun, parse_cutoffs, parse_ratio
    from in2x_cli.sample.run import run_sample

    for path in (output, report, rejects, grades):
        if path is not None:
            check_output_path(path)
    if not grade_only and total is None:
        raise UserError("--total is required (or --grade-only to grade without sampling)")
    if (total is not None and total < 1) or rounds < 1 or k < 1 or batch_size < 1:
        raise UserError("--total, --rounds, --k and --batch-size must be >= 1 (--total 0 would pick nothing)")
    if shortfall not in SHORTFALL_RULES:
        raise UserError(f"--shortfall must be one of {', '.join(SHORTFALL_RULES)}")
    cuts = parse_cutoffs(cutoffs)
    level_weights = parse_ratio(ratio)
    lang_weights = parse_lang_ratio(lang_ratio, DEFAULT_LANGS)
    grades_path = grades or (f"{output}.grades.jsonl" if output != "-" else None)
    run = SampleRun(input, output, total, ratio, lang_ratio, rounds, shortfall, grade_only, field, judge_model, solve_model, backend, k,
                    batch_size, judge_max_tokens, solve_max_tokens, solve_temperature, cuts, grades_path, resume, trust_remote_code, seed)
    run_sample(run, level_weights=level_weights, lang_weights=lang_weights, report=report, rejects=rejects)


def register(app: typer.Typer) -> None:
    app.command("sample-difficulty")(sample_difficulty)
