"""``in2x sample-difficulty``, read top to bottom: grade missing difficulty levels, then draw a
difficulty- and language-balanced sample, round-robin across clusters and tags, for one or more
rounds.

Passes over the input (stdin is spooled): (1) validate and build compact per-row arrays
(``pool.py``); (2) grade rows without ``difficulty`` (``grade.py``; resumable: verdicts go to a
grades JSONL as they come); (3) one pass per round to write the picked rows. Then the report
(``report.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from in2x_cli import console
from in2x_cli.sample.config import SampleRun


def run_sample(
    run: SampleRun,
    *,
    level_weights: Sequence[Fraction],
    lang_weights: dict[str, Fraction],
    report: str | None = None,
    rejects: str | None = None,
) -> None:
    """Grade, select and write ``run``'s sample; ``level_weights``/``lang_weights`` are its parsed
    ``--ratio``/``--lang-ratio``; the JSON report goes to ``report`` (default: stderr with -v),
    rows whose grading failed to ``rejects``."""
    import tempfile

    import numpy as np

    from in2x_cli import provenance
    from in2x_cli.core import sampling
    from in2x_cli.io import JsonlWriter
    from in2x_cli.io.multipass import MultiPassInput
    from in2x_cli.sample.grade import grade_pool
    from in2x_cli.sample.pool import Pool, key_hash
    from in2x_cli.sample.report import emit_report

    def meta(**extra: Any) -> Callable[[], dict[str, Any]]:
        return lambda: provenance.collect(command="sample-difficulty", config=run, inputs=[run.input], seed=run.seed, extra=extra)

    with tempfile.TemporaryDirectory(prefix="in2x-sample-") as tmp, MultiPassInput(run.input, tmp_dir=tmp) as src, console.progress() as bar:
        # pass 1. the pool
        progress = _Progress(bar)
        pool = Pool(None if run.grade_only else list(lang_weights), field=run.field, can_judge=run.judge_model is not None, can_solve=run.solve_model is not None)
        pending: set[int] = set()
        for line in src.first():
            request = pool.add(line.data, line.where)
            if request is not None:
                pending.add(key_hash(request.key))
        # pass 2. grading
        grade_map: dict[int, dict[str, Any]] = {}
        grading: dict[str, Any] = {}
        if pending:
            grade_map, grading = grade_pool(run, src, pool, pending, progress, meta(kind="grades"))
        failed = set(pool.apply_grades(grade_map))
        arrays = pool.arrays()
        n = len(pool)
        # the selection
        if run.grade_only:
            passes = [np.flatnonzero(arrays["level_idx"] >= 0)]
            rep: dict[str, Any] = {"grade_only": True, "rows_written": int(len(passes[0]))}
        else:
            assert run.total is not None
            selection = sampling.select(
                arrays["lang_idx"], arrays["level_idx"], arrays["cluster"], arrays["tag"], langs=pool.langs,
                lang_weights=list(lang_weights.values()), level_weights=level_weights, total=run.total, rounds=run.rounds, rule=run.shortfall, seed=run.seed,
            )
            passes = selection.rounds
            rep = sampling.selection_report(selection, rounds=run.rounds)
        rep["pool"] = {"rows": n, "lang_detected": pool.lang_detected, "excluded_languages": pool.excluded_lang, "grading_failed": len(failed)}
        if grading:
            rep["grading"] = grading
        # pass 3. one pass per round writes its rows (the first also the rejects)
        invalid_rows: list[dict[str, Any]] = []
        with JsonlWriter(run.output, meta=meta(report=rep)) as out, (JsonlWriter(rejects, meta=meta(kind="rejects")) if rejects else _Null()) as rej:
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
                        out.write(_decorate(line.data, i, None if run.grade_only else r, pool, arrays, grade_map))
            if invalid_rows:
                rep["grading"]["invalid_rows"] = invalid_rows  # before the writers close: the provenance holds the report
    emit_report(rep, report)


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


class _Progress:
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def task(self, description: str, total: int) -> Callable[[int], None]:
        task = self.bar.add_task(description, total=total)
        return lambda n: self.bar.advance(task, n)


class _Null:
    def write(self, row: Any) -> None:
        return None

    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None
