"""Wire a ``SynthConfig`` to files and backends: read seeds / input rows, load the model(s), open
the output and rejects writers (resumable), run the blocks, report on stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

from in2x_cli import console, provenance
from in2x_cli.embedders import embed_function
from in2x_cli.io import JsonlWriter, Line, iter_jsonl
from in2x_cli.prompts import PromptSet, synthesize_prompts
from in2x_cli.synth.config import Stats, SynthConfig, load_seed_tasks
from in2x_cli.synth.pipeline import Candidate, Synthesizer
from in2x_cli.synth.schedule import BlockRunner


def _validated(path: str, stack: ExitStack) -> Iterator[Line]:
    """Check every input row (JSON, fields, language) before a model loads, then stream the rows
    again for the run (stdin is spooled to a temporary file for the second pass)."""
    from in2x_cli.io.multipass import MultiPassInput
    from in2x_cli.langs import normalize_lang
    from in2x_cli.records import InstructionRow

    src = stack.enter_context(MultiPassInput(path))
    for line in src.first():
        row = InstructionRow.from_line(line)
        if row.lang:
            normalize_lang(row.lang, where=line.where)
    return src.again()


def run_synth(cfg: SynthConfig, *, rules_file: str | None = None) -> Stats:
    """Run one ``in2x synthesize``: rows to ``cfg.output``, rejects to ``cfg.rejects``, counts on
    stderr; ``rules_file`` (where ``cfg.rules`` came from) is recorded in the provenance."""
    prompts: PromptSet = synthesize_prompts(cfg.prompt_file)
    seeds = load_seed_tasks(iter_jsonl(cfg.input)) if cfg.mode == "self-instruct" else []
    embed = embed_function(cfg.embedder, model=cfg.embed_model) if cfg.dedup == "embedding" else None

    from in2x_cli.backends import BackendCache

    opts = {"batch_size": cfg.batch_size, "trust_remote_code": cfg.trust_remote_code}
    with ExitStack() as stack:
        lines: Iterator[Line] = (
            _validated(cfg.input, stack) if cfg.mode in ("rewrite", "answer") and cfg.input else iter(())
        )
        engines = stack.enter_context(BackendCache(**opts))  # a critic naming the writer's model shares its engine
        backend = engines.get(cfg.backend, cfg.model)
        critic = engines.get(cfg.critic_backend or cfg.backend, cfg.critic_model) if cfg.critic_model else None
        synth = Synthesizer(cfg, backend, prompts, critic=critic, seeds=seeds, embed=embed)

        inputs = [p for p in (cfg.input, rules_file, cfg.prompt_file) if p]

        def meta(role: str) -> Callable[[], dict[str, Any]]:
            return lambda: provenance.collect(
                command="synthesize",
                config=cfg,
                inputs=inputs,
                seed=cfg.seed,
                extra={
                    "role": role,
                    "run": synth.run,
                    "stats": synth.stats.to_dict(),
                    "prompts_sha256": prompts.digest(),
                },
            )

        out = stack.enter_context(JsonlWriter(cfg.output, meta=meta("output"), resume=cfg.resume))
        rejects = (
            stack.enter_context(JsonlWriter(cfg.rejects, meta=meta("rejects"), resume=cfg.resume))
            if cfg.rejects
            else None
        )
        existing = [(True, r) for r in out.existing()]
        if rejects is not None:
            existing += [(False, r) for r in rejects.existing()]

        def write(c: Candidate) -> None:
            if c.reject is None:
                out.write(synth.row(c))
            elif rejects is not None:
                rejects.write(synth.row(c))

        with console.progress() as bar:
            task = bar.add_task(f"synthesize {cfg.mode}", total=None)

            def on_progress(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            stats = BlockRunner(synth).run_blocks(lines=lines, existing=existing, write=write, on_progress=on_progress)
    _report(cfg, stats)
    return stats


def _report(cfg: SynthConfig, stats: Stats) -> None:
    rejected = sum(stats.rejected.values())
    reasons = ", ".join(f"{k} {v}" for k, v in stats.rejected.most_common())
    where = cfg.rejects if cfg.rejects else "not kept: pass --rejects FILE to keep them"
    resumed = (
        f" (+{stats.resumed_accepted} already written)"
        if stats.resumed_accepted or stats.resumed_rejected
        else ""
    )
    console.info(
        f"synthesize {cfg.mode}: {stats.accepted} rows written{resumed}, {rejected} rejected"
        + (f" ({reasons})" if reasons else "")
        + (f" -> {where}" if rejected else "")
        + f"; {stats.backend_requests} backend requests"
    )
    for stage, n in stats.judge_parse_failures.items():
        failed = stats.rejected.get(f"{stage}_unparseable", 0)
        console.info(
            f"synthesize: {n} {stage} replies held no valid JSON verdict; retried {cfg.judge_retries}x, {failed} rejected as {stage}_unparseable"
        )
    for lang, text in stats.shortfall.items():
        console.warn(f"{lang}: quota not reached: {text}")
