"""The ``translate`` stage: input rows → generation requests → candidate selection → output rows.

Read top to bottom:

1. ``run_translate`` checks the prompts and the MBR utility, reads the input (``jobs``: JSONL rows,
   plain text or a WMT24 directory, one ``Job`` per output row) and, with ``--resume``, skips the
   rows a previous run already wrote (by row key).
2. ``translate_jobs`` processes jobs in rounds of ``chunk_rows``. In a round every request of a
   phase goes to the backend in one call (``generate``: the backend batches and sorts by length;
   vLLM runs one ``generate``), first greedy, then ``--mbr N`` samples per request, per model of
   the ensemble.
   - phase 1 (``document`` granularity): each document — or, when it does not fit the context,
     each chunk of paragraphs (``prompting.Planner``) — is one request. Candidates are cleaned
     and must align paragraph for paragraph with the source; MBR picks among the aligned ones
     (``select``).
   - phase 2 (fallback): chunks with no aligned candidate are re-translated paragraph by
     paragraph. ``paragraph``/``sentence`` granularities start here.
   Rows of a round are yielded in input order, so a killed run resumes into identical output.
3. The summary goes to stderr and the provenance sidecar; with ``--segments-out`` the WMT24
   segment lines are written.

Ensembles load one model at a time (bounded memory): the model loaded last stays loaded into the
next phase; candidates are pooled in model order whatever the loading order.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from in2x_cli import console
from in2x_cli.errors import UserError
from in2x_cli.records import row_key
from in2x_cli.translate.config import TranslateConfig, TranslateRun, TranslateStats
from in2x_cli.translate.fuse import Fuser, check_fuse_model, load_fuse_template
from in2x_cli.translate.generate import BackendPool, generate
from in2x_cli.translate.jobs import Job, JobSource, load_jobs, segment_lines, shard, wmt24_jobs
from in2x_cli.translate.prompting import Planner, load_templates
from in2x_cli.translate.select import check_utility, finish_row, mbr_utility, select


def run_translate(run: TranslateRun) -> None:
    """Translate ``run.input`` (or a WMT24 directory) into ``run.output``; see the module docstring."""
    from in2x_cli import provenance
    from in2x_cli.io import JsonlWriter, check_output_path, write_json, write_text

    cfg = replace(run.config, templates=load_templates(run.prompt_file), fuse_template=load_fuse_template(run.fuse_prompt_file))
    check_utility(cfg)
    if not run.prepare:
        check_fuse_model(cfg)
    check_output_path(run.output)
    if run.segments_out is not None:
        check_output_path(run.segments_out)

    with contextlib.ExitStack() as stack:  # the stdin spool of a streamed input is removed at the end
        ws = None
        jobs: Sequence[Job] | JobSource
        if run.wmt24 is not None:
            jobs, ws = wmt24_jobs(str(run.wmt24))
        else:  # validated now, streamed later (a JobSource keeps the rows' keys, not the rows)
            jobs = stack.enter_context(
                load_jobs(run.input, src_lang=run.src_lang, tgt_lang=run.tgt_lang, input_format=run.input_format, text_unit=run.text_unit)
            )
        jobs = shard(jobs, run.shard)
        keys = jobs.keys if isinstance(jobs, JobSource) else [j.key for j in jobs]
        stats = TranslateStats()
        inputs = [str(ws.file(".txt")), str(ws.file(".docs"))] if ws is not None else [run.input]
        earlier: dict[str, Any] = {}  # the summary of the rows earlier runs wrote (--resume)
        meta = lambda: provenance.collect(  # noqa: E731
            command="translate", config=cfg, inputs=inputs, seed=cfg.seed, extra={"translate": _whole_output(earlier, stats), "last_run": stats.to_dict()}
        )
        with JsonlWriter(run.output, meta=meta, resume=run.resume) as writer:
            if run.prepare:
                writer.write_many(j.row for j in jobs)
                return
            kept: list[dict[str, Any]] = []  # only for --segments-out (a WMT24 set)
            done = _resumed(writer.existing(), keys, f"{run.output}.partial", kept if run.segments_out is not None else None)
            todo = (j for j in jobs if j.key not in done)
            if done:
                console.info(f"translate: resuming, {len(done)} rows already written, {len(keys) - len(done)} to go")
                earlier.update(_earlier_summary(run.output, len(done)))
            try:
                for row in translate_jobs(todo, cfg, stats, total=len(keys) - len(done)):
                    writer.write(row)
                    if run.segments_out is not None:
                        kept.append(row)
            except BaseException:
                if run.resume:  # the next --resume adds this run's counts to its own
                    write_json(_summary_path(run.output), _whole_output(earlier, stats))
                raise
        with contextlib.suppress(FileNotFoundError):
            os.remove(_summary_path(run.output))
        summary = {**stats.to_dict(), "rows_resumed": len(done)}
        console.info("translate: " + json.dumps(summary, ensure_ascii=False))
        if stats.truncated_rows:
            console.warn(f"translate: {stats.truncated_rows} row(s) stopped at --max-tokens (marked \"truncated\": true); raise --max-tokens "
                         "(or use 0 = auto) to translate them whole")
        if run.segments_out is not None and ws is not None:
            write_text(run.segments_out, segment_lines(ws, kept))


def _summary_path(output: str) -> str:
    return f"{output}.partial.summary.json"


def _whole_output(earlier: dict[str, Any], stats: TranslateStats) -> dict[str, Any]:
    """The summary of every row in the output: this run's counts plus the earlier runs' (--resume)."""
    from in2x_cli.translate.config import combine_summaries

    return combine_summaries(earlier, stats.to_dict()) if earlier else stats.to_dict()


def _earlier_summary(output: str, rows: int) -> dict[str, Any]:
    """The summary of the ``rows`` rows a previous run wrote: the interrupted run's snapshot, or
    the finished output's ``.meta.json``. A summary that does not cover exactly those rows (a run
    killed with SIGKILL leaves none) is reported, and the rows are counted without their details."""
    from in2x_cli.io.jsonl import meta_path, read_json

    for path, pick in ((_summary_path(output), lambda d: d), (meta_path(output), lambda d: d.get("translate"))):
        try:
            found = pick(read_json(path))
        except Exception:  # noqa: BLE001 - absent or unreadable: try the next
            continue
        if isinstance(found, dict) and found.get("rows") == rows:
            return found
    console.warn(f"translate: no summary of the {rows} rows already in {output}.partial (killed hard?): "
                 "the .meta.json counts them as rows only, without fallbacks or truncations")
    return {"rows": rows, "rows_without_summary": rows}


def _resumed(rows: Iterable[dict[str, Any]], keys: Sequence[str], partial: str, kept: list[dict[str, Any]] | None) -> set[str]:
    """The keys of the rows a previous run wrote (``--resume``), appended to ``kept`` when given.
    Rows without ids resume by position; a row whose key is not in this input is an error."""
    done: set[str] = set()
    known = set(keys)
    for pos, row in enumerate(rows):
        key = row_key(row, -1)
        if key == "row:-1":  # rows without ids resume by position
            key = keys[pos] if pos < len(keys) else key
        if key not in known:
            raise UserError(f"--resume: the partial output has a row ({key}) that is not in this input", f"{partial}:{pos + 1}")
        done.add(key)
        if kept is not None:
            kept.append(row)
    return done


def translate_jobs(
    jobs: Iterable[Job], cfg: TranslateConfig, stats: TranslateStats, total: int | None = None
) -> Iterator[dict[str, Any]]:
    """Translate ``jobs`` round by round; yield output rows in input order. ``jobs`` is consumed
    one round (``chunk_rows`` jobs) at a time; ``total`` is its length (default ``len(jobs)``)."""
    total = len(jobs) if total is None else total  # type: ignore[arg-type]
    if not total:
        return
    utility = mbr_utility(cfg)
    models = cfg.models + ((cfg.fuse,) if cfg.fuse and cfg.fuse not in cfg.models else ())
    pool = BackendPool(cfg, stats, models)
    fuser = Fuser(cfg, pool, models.index(cfg.fuse), stats) if cfg.fuse else None
    t0 = time.perf_counter()
    size = cfg.chunk_rows if cfg.chunk_rows > 0 else total
    rounds = math.ceil(total / size)
    remaining = iter(jobs)
    stack = contextlib.ExitStack()
    try:
        # Requests are sized with the first model's tokenizer and context (its tokenizer stays
        # usable after an ensemble unloads the model).
        planner = Planner(cfg, pool.get(0))
        bar = stack.enter_context(console.progress())
        for r in range(rounds):
            batch = list(itertools.islice(remaining, size))
            label = f"{r + 1}/{rounds}" if rounds > 1 else ""
            units = [u for job in batch for u in planner.plan(job, stats)]
            document_units = Counter(id(u.job) for u in units if u.kind == "document")
            for u in units:
                stats.requests[u.kind] += 1
            cands = generate(units, pool, cfg, stats, bar, f"{label} {cfg.granularity}s".strip())
            failed = select(units, cands, cfg, utility, stats)
            failed_ids = {id(u) for u in failed}
            selected = [(u, c) for u, c in zip(units, cands, strict=True) if id(u) not in failed_ids]
            if failed:
                for u in failed:
                    u.job.fallback += 1
                retry = [v for u in failed for v in planner.fallback(u)]
                for v in retry:
                    stats.requests[f"fallback_{v.kind}"] += 1
                cands = generate(retry, pool, cfg, stats, bar, f"{label} fallback paragraphs".strip())
                select(retry, cands, cfg, utility, stats)
                selected += list(zip(retry, cands, strict=True))
            if fuser is not None:  # after both phases: one fusion-model load per round
                fuser.fuse([u for u, _ in selected], [c for _, c in selected], bar)
            for job in batch:
                # counted per row as it is handed out, so an interrupted run's counts match its rows
                stats.rows += 1
                stats.documents += int(job.is_document)
                stats.document_chunks += document_units[id(job)]
                stats.misaligned_chunks += job.fallback
                row = finish_row(job, cfg)
                stats.truncated_rows += int(bool(row.get("truncated")))
                yield row
            stats.seconds = time.perf_counter() - t0
    finally:
        stack.close()
        pool.close()
        stats.seconds = time.perf_counter() - t0
