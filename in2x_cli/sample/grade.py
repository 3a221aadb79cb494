"""Grading the rows without a difficulty level: the judge or pass@k, driven in batches.

The prompts, the verdict check and the solve-rate cut-offs are ``core/difficulty.py``; this module
loads the backends, sends the batches (one judge call, then one retry call for invalid replies),
and streams every batch's grade records to the grades JSONL as soon as they exist, so a killed run
loses at most one batch and ``--resume`` grades only what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from in2x_cli.core.difficulty import (
    SOLVE_CUTOFFS,
    Request,
    invalid_record,
    judge_messages,
    judge_record,
    retry_messages,
    solve_prompt,
    solve_record,
)
from in2x_cli.core.judging import VerdictError
from in2x_cli.errors import UserError
from in2x_cli.sample.pool import Pool, key_hash


def grade_pool(run: Any, src: Any, pool: Pool, pending: set[int], progress: Any, meta: Callable[[], dict[str, Any]]) -> tuple[dict[int, dict[str, Any]], dict[str, int]]:
    """Grade the pool's rows without a level; returns (grades by key hash, counts)."""
    from in2x_cli.backends import BackendCache, SamplingParams

    grades: dict[int, dict[str, Any]] = {}
    writer = _grades_writer(run.grades, run.resume, meta)
    if writer is not None:
        for rec in writer.existing():
            grades[key_hash(rec["key"])] = slim(rec)
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
            grades[key_hash(rec["key"])] = slim(rec)

    # judge and solver share one engine when they name the same model
    cache = BackendCache(trust_remote_code=run.trust_remote_code)
    try:
        grade_stream(
            requests(),
            backends={"judge": lambda: cache.get(run.backend, run.judge_model), "pass@k": lambda: cache.get(run.backend, run.solve_model)},
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


_KEPT = ("valid", "difficulty", "tag", "solve_rate", "method", "attempts", "error")


def slim(rec: dict[str, Any]) -> dict[str, Any]:
    """What the sampling and writing passes use of a grade record (the full record is in the
    grades file): one entry per graded prompt is held in memory, so keep it small."""
    import sys

    out = {k: rec[k] for k in _KEPT if k in rec}
    if isinstance(out.get("tag"), str):
        out["tag"] = sys.intern(out["tag"])  # a few hundred distinct tags over millions of rows
    if not rec.get("valid") and "raw" in rec:
        out["raw"] = rec["raw"]  # (for the rejects file)
    return out


# --------------------------------------------------------------------------- batches


def judge_batch(backend: Any, requests: Sequence[Request], params: Any, *, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Grade ``requests`` with one judge call, then one retry call for the invalid replies.

    Returns one grade record per request (``core.difficulty.judge_record`` when valid,
    ``invalid_record`` when both attempts failed).
    """
    from in2x_cli.backends.base import derive_seed

    first = [judge_messages(r.text) for r in requests]
    replies = [c[0].text for c in backend.chat(first, params, seeds=[derive_seed(params.seed, r.key, 0) for r in requests])]
    records: list[dict[str, Any] | None] = [None] * len(requests)
    retry: list[tuple[int, str, str]] = []
    for i, (req, reply) in enumerate(zip(requests, replies, strict=True)):
        try:
            records[i] = judge_record(req.key, reply, attempts=1)
        except VerdictError as exc:
            retry.append((i, reply, str(exc)))
    if retry:
        convs = [retry_messages(first[i], reply, err) for i, reply, err in retry]
        seeds = [derive_seed(params.seed, requests[i].key, 1) for i, _, _ in retry]
        second = [c[0].text for c in backend.chat(convs, params, seeds=seeds)]
        for (i, _, _), reply in zip(retry, second, strict=True):
            try:
                records[i] = judge_record(requests[i].key, reply, attempts=2)
            except VerdictError as exc:
                records[i] = invalid_record(requests[i].key, reply, str(exc), attempts=2)
    if progress is not None:
        progress(len(requests))
    return [r for r in records if r is not None]


def solve_batch(
    backend: Any,
    requests: Sequence[Request],
    params: Any,
    *,
    cutoffs: Sequence[float] = SOLVE_CUTOFFS,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """pass@k grading: ``params.n`` samples per request; records carry ``solve_rate`` and the level."""
    from in2x_cli.backends.base import derive_seed

    outs = backend.chat([solve_prompt(r.text) for r in requests], params, seeds=[derive_seed(params.seed, r.key, 0) for r in requests])
    records = [solve_record(req, [s.text for s in samples], cutoffs) for req, samples in zip(requests, outs, strict=True)]
    if progress is not None:
        progress(len(requests))
    return records


def grade_stream(
    requests: Iterable[Request],
    *,
    backends: Mapping[str, Callable[[], Any]],
    params: Mapping[str, Any],
    batch_size: int,
    sink: Callable[[list[dict[str, Any]]], None],
    cutoffs: Sequence[float] = SOLVE_CUTOFFS,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Grade a stream of requests in batches of ``batch_size`` per method; each batch's records
    go to ``sink`` as soon as they exist (so a killed run loses at most one batch).

    ``backends[method]()`` loads the backend on first use; ``params[method]`` is its
    ``SamplingParams`` (``n`` = k for pass@k). The caller drops requests already graded.
    """
    pending: dict[str, list[Request]] = {"judge": [], "pass@k": []}
    loaded: dict[str, Any] = {}

    def flush(method: str) -> None:
        batch = pending[method]
        if not batch:
            return
        if method not in loaded:
            loaded[method] = backends[method]()
        if method == "judge":
            sink(judge_batch(loaded[method], batch, params[method], progress=progress))
        else:
            sink(solve_batch(loaded[method], batch, params[method], cutoffs=cutoffs, progress=progress))
        pending[method] = []

    try:
        for req in requests:
            if req.method not in pending:
                raise ValueError(f"unknown grading method {req.method!r}")
            pending[req.method].append(req)
            if len(pending[req.method]) >= batch_size:
                flush(req.method)
        for method in list(pending):
            flush(method)
    finally:
        for backend in {id(b): b for b in loaded.values()}.values():  # a shared engine closes once
            backend.close()
