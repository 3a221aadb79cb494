"""``in2x sample-difficulty``: grade missing difficulty levels, then draw a difficulty- and
language-balanced sample, round-robin across clusters and tags, for one or more rounds.

Passes over the input (stdin is spooled): (1) validate and build compact per-row arrays;
(2) grade rows without ``difficulty`` (resumable: verdicts go to a grades JSONL as they come);
(3) one pass per round to write the picked rows. The algorithms are in ``core/sampling.py``
(quotas, shortfall, draw order) and ``core/difficulty.py`` (judge prompt, validation, pass@k).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer

from in2x_cli import console
from in2x_cli.commands.common import backend_option, seed_option, trust_remote_code_option
from in2x_cli.errors import UserError


@dataclass(frozen=True)
class SampleRun:
    """Resolved settings of one run (recorded in the provenance)."""

    input: str
    output: str
    total: int | None
    ratio: str
    lang_ratio: str
    rounds: int
    shortfall: str
    grade_only: bool
    field: str | None
    judge_model: str | None
    solve_model: str | None
    backend: str
    k: int
    batch_size: int
    judge_max_tokens: int
    solve_max_tokens: int
    solve_temperature: float
    cutoffs: tuple[float, ...]
    grades: str | None
    resume: bool
    trust_remote_code: bool
    seed: int


def _grades_writer(path: str | None, resume: bool, meta: Callable[[], dict[str, Any]]) -> Any:
    """The grades JSONL, always opened resumable (a kill keeps what was graded); without
    ``--resume`` an old file and its partial are discarded first."""
    from in2x_cli.io import JsonlWriter

    if path is None:
        if resume:
            raise UserError("--resume needs a grades file: pass --grades FILE or --output FILE")
        return None
    if not resume:
        for stale in (path, f"{path}.partial"):
            if os.path.exists(stale):
                os.unlink(stale)
    return JsonlWriter(path, resume=True, meta=meta)


def _grade(run: SampleRun, src: Any, pool: Any, pending: set[int], progress: Any, meta: Callable[[], dict[str, Any]]) -> tuple[dict[int, dict[str, Any]], dict[str, int]]:
    """Grade the pool's rows without a level; returns (grades by key hash, counts)."""
    from in2x_cli.backends import SamplingParams, load_backend
    from in2x_cli.core.difficulty import grade_stream
    from in2x_cli.core.sampling import key_hash

    grades: dict[int, dict[str, Any]] = {}
    writer = _grades_writer(run.grades, run.resume, meta)
    if writer is not None:
        for rec in writer.existing():
            grades[key_hash(rec["key"])] = _slim(rec)
    resumed = len(pending & grades.keys())
    todo = len(pending) - resumed
    advance = progress.task("grade", todo)

    def requests() -> Any:
        seen: set[int] = set()
        for i, line in enumerate(src.again()):
            kh = pool.keyhash[i]
            if kh and kh not in grades and kh not in seen:
                seen.add(kh)
                yield pool.request_for(line.data, line.where)

    def sink(records: list[dict[str, Any]]) -> None:
        if writer is not None:
            writer.write_many(records)
        for rec in records:
            grades[key_hash(rec["key"])] = _slim(rec)

    opts = {"trust_remote_code": run.trust_remote_code}
    try:
        grade_stream(
            requests(),
            backends={"judge": lambda: load_backend(run.backend, run.judge_model, **opts), "pass@k": lambda: load_backend(run.backend, run.solve_model, **opts)},
            params={
                "judge": SamplingParams(n=1, temperature=0.0, max_tokens=run.judge_max_tokens, seed=run.seed),
                "pass@k": SamplingParams(n=run.k, temperature=run.solve_temperature, top_p=0.95, max_tokens=run.solve_max_tokens, seed=run.seed),
            },
            batch_size=run.batch_size, sink=sink, cutoffs=run.cutoffs, progress=advance,
        )
    except BaseException:
        if writer is not None:
            writer.abort()  # keeps the partial grades file for --resume
            if writer.rows_written == 0 and writer.rows_resumed == 0 and writer.partial and os.path.exists(writer.partial):
                os.unlink(writer.partial)  # nothing was graded (e.g. the judge model failed to load): nothing to keep
        raise
    if writer is not None:
        writer.close()
    new = [grades[k] for k in pending if k in grades]
    counts = {
        "rows_to_grade": int(sum(1 for kh in pool.keyhash if kh)),
        "unique_prompts": len(pending),
        "resumed": resumed,
        "graded_now": todo,
        "judge": sum(r["method"] == "judge" for r in new),
        "pass@k": sum(r["method"] == "pass@k" for r in new),
        "retried": sum(r.get("attempts", 1) > 1 for r in new),
        "invalid": sum(not r.get("valid") for r in new),
    }
    return grades, counts


_KEPT = ("valid", "difficulty", "tag", "solve_rate", "method", "attempts", "error")


def _slim(rec: dict[str, Any]) -> dict[str, Any]:
    """What the sampling and writing passes use of a grade record (the full record is in the
    grades file): one entry per graded prompt is held in memory, so keep it small."""
    import sys

    out = {k: rec[k] for k in _KEPT if k in rec}
    if isinstance(out.get("tag"), str):
        out["tag"] = sys.intern(out["tag"])  # a few hundred distinct tags over millions of rows
    if not rec.get("valid") and "raw" in rec:
        out["raw"] = rec["raw"]  # (for the rejects file)
    return out


class _Progress:
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def task(self, description: str, total: int) -> Callable[[int], None]:
        task = self.bar.add_task(description, total=total)
        return lambda n: self.bar.advance(task, n)


def sample_difficulty(
    input: str = typer.Argument("-", help="Input JSONL ('-' = stdin): rows with lang, difficulty (or something to grade it), optional cluster and tag."),
    output: str = typer.Option("-", "--output", "-o", help="Output JSONL ('-' = stdout): the picked rows with canonical difficulty, tag and round."),
    total: int = typer.Option(None, "--total", "-n", help="Rows per round (the paper: 1.5M)."),
    ratio: str = typer.Option("3:3:3:1:0", "--ratio", help="very_hard:hard:medium:easy:very_easy weights (the paper's 3:3:3:1:0)."),
    lang_ratio: str = typer.Option("zh=1,en=1,ja=1", "--lang-ratio", help="Language weights (the paper's zh:en:ja = 1:1:1); other languages are left out."),
    rounds: int = typer.Option(1, "--rounds", help="Sampling rounds (the paper: one per epoch). Disjoint when the pool allows: a stratum of n rows gives at most n//R per round and short strata follow --shortfall; rows are reused only when the pool is too small, with a warning."),
    shortfall: str = typer.Option("redistribute", "--shortfall", help="Short strata: redistribute (to other levels of the language, then other languages), none (leave missing), or shrink (lower the total, keep the ratio exactly)."),
    report: str = typer.Option(None, "--report", help="Write the JSON report here (default: stderr)."),
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
    import tempfile

    import numpy as np

    from in2x_cli import provenance
    from in2x_cli.core import sampling
    from in2x_cli.io import JsonlWriter, check_output_path
    from in2x_cli.io.multipass import MultiPassInput

    for path in (output, report, rejects, grades):
        if path is not None:
            check_output_path(path)
    if not grade_only and total is None:
        raise UserError("--total is required (or --grade-only to grade without sampling)")
    if (total is not None and total < 0) or rounds < 1 or k < 1 or batch_size < 1:
        raise UserError("--total must be >= 0, and --rounds, --k and --batch-size >= 1")
    if shortfall not in sampling.SHORTFALL_RULES:
        raise UserError(f"--shortfall must be one of {', '.join(sampling.SHORTFALL_RULES)}")
    try:
        cuts = tuple(float(c) for c in cutoffs.split(","))
        if len(cuts) != 4 or list(cuts) != sorted(cuts):
            raise ValueError
    except ValueError:
        raise UserError(f"--cutoffs needs four increasing numbers, got {cutoffs!r}") from None
    level_weights = sampling.parse_ratio(ratio)
    lang_weights = sampling.parse_lang_ratio(lang_ratio)
    grades_path = grades or (f"{output}.grades.jsonl" if output != "-" else None)
    run = SampleRun(input, output, total, ratio, lang_ratio, rounds, shortfall, grade_only, field, judge_model, solve_model, backend, k,
                    batch_size, judge_max_tokens, solve_max_tokens, solve_temperature, cuts, grades_path, resume, trust_remote_code, seed)

    def meta(**extra: Any) -> Callable[[], dict[str, Any]]:
        return lambda: provenance.collect(command="sample-difficulty", config=run, inputs=[input], seed=seed, extra=extra)

    with tempfile.TemporaryDirectory(prefix="in2x-sample-") as tmp, MultiPassInput(input, tmp_dir=tmp) as src, console.progress() as bar:
        progress = _Progress(bar)
        pool = sampling.Pool(None if grade_only else list(lang_weights), field=field, can_judge=judge_model is not None, can_solve=solve_model is not None)
        pending: set[int] = set()
        for line in src.first():
            request = pool.add(line.data, line.where)
            if request is not None:
                pending.add(sampling.key_hash(request.key))
        grade_map: dict[int, dict[str, Any]] = {}
        grading: dict[str, Any] = {}
        if pending:
            grade_map, grading = _grade(run, src, pool, pending, progress, meta(kind="grades"))
        failed = set(pool.apply_grades(grade_map))
        arrays = pool.arrays()
        n = len(pool)
        if grade_only:
            passes = [np.flatnonzero(arrays["level_idx"] >= 0)]
            rep: dict[str, Any] = {"grade_only": True, "rows_written": int(len(passes[0]))}
        else:
            selection = sampling.select(
                arrays["lang_idx"], arrays["level_idx"], arrays["cluster"], arrays["tag"], langs=pool.langs,
                lang_weights=list(lang_weights.values()), level_weights=level_weights, total=total, rounds=rounds, rule=shortfall, seed=seed,
            )
            passes = selection.rounds
            rep = sampling.selection_report(selection, rounds=rounds)
        rep["pool"] = {"rows": n, "lang_detected": pool.lang_detected, "excluded_languages": pool.excluded_lang, "grading_failed": len(failed)}
        if grading:
            rep["grading"] = grading
        invalid_rows: list[dict[str, Any]] = []
        with JsonlWriter(output, meta=meta(report=rep)) as out, (JsonlWriter(rejects, meta=meta(kind="rejects")) if rejects else _Null()) as rej:
            for r, rows in enumerate(passes):
                member = np.zeros(n, dtype=bool)
                member[rows] = True
                if not member.any() and (r > 0 or not failed):
                    continue
                for i, line in enumerate(src.again()):
                    if r == 0 and i in failed:
                        rec = grade_map[pool.keyhash[i]]
                        if len(invalid_rows) < 50:
                            invalid_rows.append({"where": line.where, "error": rec.get("error")})
                        rej.write({**line.data, "grade_error": rec.get("error"), "grade_raw": rec.get("raw")})
                    if member[i]:
                        out.write(_decorate(line.data, i, None if grade_only else r, pool, arrays, grade_map))
            if invalid_rows:
                rep["grading"]["invalid_rows"] = invalid_rows  # before the writers close: the provenance holds the report
    _emit_report(rep, report)


def _decorate(data: dict[str, Any], i: int, round_: int | None, pool: Any, arrays: dict[str, Any], grade_map: dict[int, dict[str, Any]]) -> dict[str, Any]:
    from in2x_cli.core.sampling import LEVELS

    row = dict(data)
    row["difficulty"] = LEVELS[int(arrays["level_idx"][i])]
    rec = grade_map.get(pool.keyhash[i]) if pool.keyhash[i] else None
    if rec is not None:
        if row.get("tag") is None and rec.get("tag"):
            row["tag"] = rec["tag"]
        if "solve_rate" in rec:
            row["solve_rate"] = rec["solve_rate"]
    if round_ is not None:
        row["round"] = round_
    return row


class _Null:
    def write(self, row: Any) -> None:
        return None

    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def _emit_report(rep: dict[str, Any], path: str | None) -> None:
    from in2x_cli.io import write_json

    rounds = rep.get("rounds", 1)
    for s in (s for s in rep.get("strata", []) if s["shortfall"]):
        held = f"only {s['available']} rows" if rounds == 1 else f"only {s['available']} rows for {rounds} rounds ({s['disjoint_per_round']} per round without reuse)"
        console.warn(f"stratum {s['lang']}/{s['difficulty']}: quota {s['quota']}, {held} (shortfall {s['shortfall']}; rule: {rep['shortfall_rule']})")
    if rep.get("reused_draws"):
        where = ", ".join(f"{s['lang']}/{s['difficulty']} {s['reused_across_rounds']}" for s in rep["strata"] if s["reused_across_rounds"])
        console.warn(f"rounds are not disjoint: {rep['reused_draws']} draws repeat a row of another round ({where}); the pool is too small for {rounds} disjoint rounds of {rep['requested_per_round']}")
    invalid = rep.get("grading", {}).get("invalid", 0)
    if invalid:
        console.warn(f"{invalid} prompts could not be graded (invalid judge output after one retry); their rows are left out")
    if path is not None:
        write_json(path, rep)
        if "selected_per_round" in rep:
            console.info(f"sample-difficulty: {rep['selected_per_round']} rows per round × {rep['rounds']} (requested {rep['requested_per_round']}); report in {path}")
    elif console.verbosity() >= 1:
        console.stderr_console().print(json.dumps(rep, ensure_ascii=False, indent=2), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("sample-difficulty")(sample_difficulty)
