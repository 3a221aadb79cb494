"""``in2x eval``: score translations (sacreBLEU + COMET), test significance, AutoRank.

``in2x eval [score] ...`` scores (``score`` is the default subcommand, so ``in2x eval rows.jsonl``
works); ``in2x eval autorank ...`` ranks systems from score files. The work is in
in2x_cli/evaluate/ and in2x_cli/core/{metrics,significance,autorank}.py.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from in2x_cli.commands.common import BACKEND_HELP


class _DefaultScoreGroup(TyperGroup):
    """``in2x eval ARGS`` means ``in2x eval score ARGS`` unless ARGS names a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["score", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(
    cls=_DefaultScoreGroup,
    help=(
        "Score translations with sacreBLEU (BLEU, chrF++, TER) and COMET, with paired significance tests, "
        "and rank systems with WMT25's AutoRank. `in2x eval ARGS` is `in2x eval score ARGS`.\n\n"
        "Example: in2x eval --wmt24 ../shared/data/wmt24/en-ja --systems GPT-4,Claude-3.5 --paired bs > scores.json"
    ),
    add_completion=False,
    rich_markup_mode=None,
)


def _csv(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for item in values or [] for v in item.split(",") if v.strip())


@eval_app.command(
    "score",
    epilog=(
        'Output: {"schema": "in2x.eval/1", "results": [{"pair", "metrics": {NAME: {"signature", "higher_is_better"}}, '
        '"systems": [{"system", "scores", "significance", "by"}], "autorank"}], "provenance"}; '
        "the full schema is in docs/eval.md."
    ),
)
def score(
    inputs: list[str] | None = typer.Argument(None, metavar="INPUT...", help="Translation rows JSONL (src, ref, hyp; optional id, doc_id, domain, system, src_lang, tgt_lang); - = stdin. Several files (NAME=path names one) compare runs: a system per file unless rows name theirs."),
    src: str | None = typer.Option(None, "--src", metavar="FILE", help="Line-aligned sources (text mode; COMET needs them)."),
    ref: str | None = typer.Option(None, "--ref", metavar="FILE", help="Line-aligned references (text mode)."),
    hyp: list[str] | None = typer.Option(None, "--hyp", metavar="[NAME=]FILE", help="Line-aligned system output, repeatable; NAME=path names the system (default: file name). The first is the baseline. With --wmt24: your own systems, aligned with the WMT24 source lines (canary included), scored beside the published ones."),
    wmt24: str | None = typer.Option(None, "--wmt24", metavar="DIR", help="A WMT24 pair directory (en-ja/: sources, refA, .docs, system-outputs/); the canary line is not scored."),
    systems: list[str] | None = typer.Option(None, "--systems", metavar="A,B", help="With --wmt24: which systems, in order (comma list; default all, by name)."),
    lang_pair: str | None = typer.Option(None, "--lang-pair", "-l", metavar="SRC-TGT", help="SRC-TGT (en-ja); default: the rows' src_lang/tgt_lang, else detected from the references."),
    metrics: list[str] | None = typer.Option(None, "--metrics", "-m", metavar="LIST", help="Comma list of bleu, chrf (chrF++), ter (ter=asian for CJK), comet, cometkiwi, xcomet, gemba-esa (LLM judge: --judge-model); NAME=MODEL picks a COMET model name or local checkpoint; module:attr adds your own. Default: bleu,chrf."),
    tokenize: str | None = typer.Option(None, "--tokenize", "-tok", metavar="TOK", help="BLEU tokenizer (default by target language: ja-mecab, zh, else 13a)."),
    by: list[str] | None = typer.Option(None, "--by", metavar="FIELD", help="Also score per group: domain and/or doc (comma list)."),
    paired: str | None = typer.Option(None, "--paired", metavar="bs|ar", help="Significance vs the first system: bs (paired bootstrap) or ar (approximate randomisation); with one system, its bootstrap 95% CI."),
    paired_n: int | None = typer.Option(None, "--paired-n", min=1, metavar="N", help="Bootstrap samples (bs, default 1000) or randomisation trials (ar, default 10000), as sacreBLEU."),
    paired_ar_confidence: int = typer.Option(1000, "--paired-ar-confidence", metavar="N", help="With --paired ar: bootstrap samples for the 95% intervals (0 = none)."),
    seed: int = typer.Option(12345, "--seed", metavar="INT", help="Seed of the resampling; 12345 is sacreBLEU's default, so p-values match its CLI."),
    segments: str | None = typer.Option(None, "--segments", metavar="FILE", help="Also write per-segment scores as JSONL (one row per system and segment)."),
    output: str = typer.Option("-", "--output", "-o", metavar="FILE", help="Where to write the JSON document (- = stdout)."),
    autorank: bool = typer.Option(False, "--autorank", help="Also rank the scored systems with AutoRank over the chosen metrics."),
    comet_batch_size: int = typer.Option(16, "--comet-batch-size", metavar="N", help="Batch size of the COMET worker."),
    comet_numerics: str = typer.Option("float32", "--comet-numerics", metavar="MODE", help="float32 (full precision), or comet-score to reproduce the comet-score command's numbers (it sets float32 matmul precision 'high' and runs the model in float16; scores differ by up to ~3e-4, docs/eval.md)."),
    judge_model: str | None = typer.Option(None, "--judge-model", metavar="MODEL", help="The LLM judge of gemba-esa (a local model directory, hub id, or a name your --judge-backend knows)."),
    judge_backend: str = typer.Option("transformers", "--judge-backend", metavar="NAME", help="Backend of the judge. " + BACKEND_HELP),
    judge_max_tokens: int = typer.Option(512, "--judge-max-tokens", min=16, metavar="N", help="Longest judge reply (ours; GEMBA's error lists are short)."),
    judge_retries: int = typer.Option(2, "--judge-retries", min=0, metavar="N", help="Re-ask an unreadable judge reply N times, each 0.5 hotter (0, 0.5, 1.0; ours); still unreadable = no score, counted."),
    split_paragraphs: bool = typer.Option(False, "--split-paragraphs", help="JSONL document rows: score each paragraph as a segment (blank-line separated src/ref; hypothesis from hyp_paragraphs, as in2x translate writes), the unit WMT25 scores."),
) -> None:
    """Score systems: system and segment scores with sacreBLEU signatures, per-domain/document
    breakdowns, paired significance, JSON on stdout and a table on stderr.

    Example: in2x translate --model runs/sft rows.jsonl | in2x eval - -m bleu,chrf,comet=runs/comet --by domain > scores.json

    Example: in2x eval greedy=runs/greedy.jsonl mbr=runs/mbr.jsonl --paired bs > compare.json
    """
    from in2x_cli.evaluate.config import EvalConfig
    from in2x_cli.evaluate.run import run_eval

    input, *more = inputs or [None]
    if input is None and not hyp and wmt24 is None and not sys.stdin.isatty():
        input = "-"
    run_eval(EvalConfig(
        input=input, more_inputs=tuple(more), src=src, ref=ref, hyps=tuple(hyp or ()), wmt24=wmt24, systems=_csv(systems), lang_pair=lang_pair,
        metrics=_csv(metrics) or ("bleu", "chrf"), tokenize=tokenize, by=_csv(by), paired=paired, paired_n=paired_n or 0,
        paired_ar_confidence=paired_ar_confidence, seed=seed, segments=segments, output=output, autorank=autorank,
        comet_batch_size=comet_batch_size, comet_numerics=comet_numerics, split_paragraphs=split_paragraphs, judge_model=judge_model,
        judge_backend=judge_backend, judge_max_tokens=judge_max_tokens, judge_retries=judge_retries,
    ))


@eval_app.command(
    "autorank",
    epilog='Output: {"schema": "in2x.autorank/1", "pairs": [{"pair", "metrics", "systems": [{"system", "autorank", "mean_z", "scores", "z"}]}]}.',
)
def autorank(
    inputs: list[str] = typer.Argument(..., metavar="INPUTS", help="WMT25 automatic-score files or their directory, in2x eval JSON outputs, or --segments JSONL files."),
    pair: list[str] | None = typer.Option(None, "--pair", metavar="PAIR", help="Language pairs to rank (comma list, e.g. en-ja_JP); one pair also labels inputs without languages. Default: every pair found."),
    metrics: list[str] | None = typer.Option(None, "--metrics", "-m", metavar="LIST", help="Metrics to rank on (comma list). Default: those every system has."),
    lower_is_better: list[str] | None = typer.Option(None, "--lower-is-better", metavar="LIST", help="Metrics where lower is better (negated before z-scoring), e.g. ter or a raw MetricX; eval outputs mark theirs. WMT25 files store MetricX negated already."),
    alias: list[str] | None = typer.Option(None, "--alias", metavar="OURS=THEIRS", help="OURS=THEIRS: rename a metric so inputs agree (xcomet=XCOMET-XL); repeatable."),
    domain: str | None = typer.Option(None, "--domain", metavar="NAME", help="Rank on one domain only (WMT25 files and segment rows by their domain; eval outputs need --by domain)."),
    top: int | None = typer.Option(None, "--top", metavar="N", min=1, help="Show only the first N systems in the table (the JSON has all; default: every system)."),
    output: str = typer.Option("-", "--output", "-o", metavar="FILE", help="Where to write the JSON ranking (- = stdout)."),
    allow_mixed: bool = typer.Option(False, "--allow-mixed", help="Rank systems even when they were scored on different segment sets or with different metric signatures (refused by default; the output lists what differs)."),
) -> None:
    """AutoRank as WMT25 ranked systems: mean segment score per metric, robust z = (x − median) /
    (P100 − P25) over systems, mean z over metrics, mapped linearly to [1, N] with the best at 1.

    Example: in2x eval autorank ../shared/data/wmt25/automatic-scores --pair en-ja_JP --top 10 > ranking.json
    """
    from in2x_cli.evaluate.autorank import run_autorank
    from in2x_cli.evaluate.config import AutorankConfig

    run_autorank(AutorankConfig(
        inputs=tuple(inputs), pairs=_csv(pair), metrics=_csv(metrics), lower_is_better=_csv(lower_is_better),
        aliases=tuple(alias or ()), domain=domain, top=top or 0, output=output, allow_mixed=allow_mixed,
    ))


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
