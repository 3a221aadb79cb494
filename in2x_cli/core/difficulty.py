"""Grading instruction difficulty: an LLM judge, or the pass@k solve rate of a solver model.

The paper (In2x, arXiv 2508.14472, §SFT data) tags every instruction ("Mathematics - Quadratic
Equations") and grades it into five levels with an LLM, using the solve rate by pass@k where a
reference answer exists. The paper gives neither its prompt nor its cut-offs; ours follow.

Judge (``--judge-model``). The prompt (``JUDGE_PROMPT``) asks for one JSON object
``{"tag_l1", "tag_l2", "difficulty", "reason"}``. A reply is valid when it contains a JSON
object (code fences and text around it are tolerated) whose ``tag_l1``/``tag_l2`` are non-empty
strings of at most 80 characters, whose ``difficulty`` is a level (any spelling
``sampling.normalize_difficulty`` accepts) and whose ``reason`` is a string. An invalid reply is
retried once, in the same conversation, with the validation error quoted; a second invalid reply
is recorded as invalid — the row is reported and left out, never given a guessed level.

Solve rate (``--solve-model``, rows with an ``answer``): ``k`` samples (default 16) of the
instruction followed by ``SOLVE_SUFFIX``; a sample is correct when
``answers.extract_final_answer(sample)`` matches the answer (``answers.answers_match``);
``solve_rate = correct / k``. Levels from the cut-offs ``(0.2, 0.4, 0.6, 0.8)``:

    solve rate      level       (k = 16: correct samples)
    < 0.2           very_hard   0–3
    [0.2, 0.4)      hard        4–6
    [0.4, 0.6)      medium      7–9
    [0.6, 0.8)      easy        10–12
    ≥ 0.8           very_easy   13–16

A solve rate of 0 is ``very_hard``: a wrong reference answer looks the same, so check the rows
the report lists with ``solve_rate == 0`` if the pool is noisy.

Determinism and resume: each request's sampling seed is derived from (seed, prompt), so a row's
grade does not depend on batch composition or on which rows a resumed run skips; a grade is
keyed by ``grade_key`` (a hash of the method, text and answer), so identical prompts are graded
once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from in2x_cli.core.answers import answers_match, extract_final_answer
from in2x_cli.core.judging import VerdictError, find_json_objects, inert_markers
from in2x_cli.core.sampling import LEVELS, normalize_difficulty

Message = dict[str, str]

JUDGE_SYSTEM = "You are a careful annotator of instruction-tuning data. You reply with one JSON object and nothing else."

JUDGE_PROMPT = """Classify the instruction below and rate how hard it is for a strong AI assistant to answer it well.

Reply with only this JSON object:
{{"tag_l1": "<broad category in English, e.g. Mathematics, Programming, Writing, Science, Daily Life>",
 "tag_l2": "<specific subcategory in English, e.g. Quadratic Equations>",
 "difficulty": "<one of: very_hard, hard, medium, easy, very_easy>",
 "reason": "<one short sentence explaining the difficulty>"}}

The instruction may be in any language; write the tags in English.

Instruction:
<<<
{instruction}
>>>"""

RETRY_PROMPT = "That reply was not usable: {error}. Reply again with only the JSON object with keys tag_l1, tag_l2, difficulty, reason."

SOLVE_SUFFIX = "\n\nSolve the problem step by step, then give the final answer as \\boxed{...}."

SOLVE_CUTOFFS = (0.2, 0.4, 0.6, 0.8)
MAX_TAG_CHARS = 80
RAW_KEEP_CHARS = 500


@dataclass(frozen=True)
class Verdict:
    tag_l1: str
    tag_l2: str
    difficulty: str
    reason: str

    @property
    def tag(self) -> str:
        """The paper's tag form: ``"Mathematics - Quadratic Equations"``."""
        return f"{self.tag_l1} - {self.tag_l2}"


def grade_key(method: str, text: str, answer: Any = None) -> str:
    """Identity of a grading request: same method, text and answer → same grade."""
    payload = json.dumps([method, text, None if answer is None else str(answer)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


def judge_messages(instruction: str) -> list[Message]:
    prompt = JUDGE_PROMPT.format(instruction=inert_markers(instruction))
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}]


def retry_messages(first: list[Message], reply: str, error: str) -> list[Message]:
    return [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": RETRY_PROMPT.format(error=error)}]




def parse_verdict(text: str) -> Verdict:
    """The verdict in a judge reply, or ``VerdictError`` saying what is wrong. Prose and code
    fences around the JSON object are fine; several verdict-like objects (one of them possibly
    echoed from the graded text) are ambiguous and fail closed."""
    objs = find_json_objects(text)
    if not objs:
        raise VerdictError("no JSON object found")
    verdicts = {json.dumps(o, sort_keys=True): o for o in objs if "difficulty" in o}
    if len(verdicts) > 1:
        raise VerdictError(f"{len(verdicts)} different verdict objects in the reply (expected exactly one)")
    obj = next(iter(verdicts.values())) if verdicts else objs[0]
    missing = [k for k in ("tag_l1", "tag_l2", "difficulty", "reason") if k not in obj]
    if missing:
        raise VerdictError(f"missing key(s) {', '.join(missing)}")
    tags = {}
    for key in ("tag_l1", "tag_l2"):
        value = obj[key]
        if not isinstance(value, str) or not value.strip():
            raise VerdictError(f"{key} must be a non-empty string")
        if len(value.strip()) > MAX_TAG_CHARS:
            raise VerdictError(f"{key} is longer than {MAX_TAG_CHARS} characters")
        tags[key] = " ".join(value.split())
    level = normalize_difficulty(obj["difficulty"])
    if level is None:
        raise VerdictError(f"difficulty {obj['difficulty']!r} is not one of {', '.join(LEVELS)}")
    if not isinstance(obj["reason"], str):
        raise VerdictError("reason must be a string")
    return Verdict(tags["tag_l1"], tags["tag_l2"], level, obj["reason"].strip())


def level_from_solve_rate(rate: float, cutoffs: Sequence[float] = SOLVE_CUTOFFS) -> str:
    """Solve rate → level by the cut-offs table in the module docstring (hardest first)."""
    if len(cutoffs) != 4 or list(cutoffs) != sorted(cutoffs):
        raise ValueError("cutoffs must be four increasing numbers")
    for level, cut in zip(LEVELS, cutoffs, strict=False):
        if rate < cut:
            return level
    return LEVELS[-1]


# --------------------------------------------------------------------------- batched grading

@dataclass(frozen=True)
class Request:
    key: str
    text: str
    method: str = "judge"  # "judge" or "pass@k"
    answer: Any = None


def judge_batch(backend: Any, requests: Sequence[Request], params: Any, *, progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Grade ``requests`` with one judge call, then one retry call for the invalid replies.

    Returns one grade record per request: ``{key, method: "judge", valid, attempts, difficulty,
    tag, tag_l1, tag_l2, reason}`` when valid, ``{key, method, valid: false, attempts, error,
    raw}`` when both attempts failed.
    """
    from in2x_cli.backends.base import derive_seed

    first = [judge_messages(r.text) for r in requests]
    replies = [c[0].text for c in backend.chat(first, params, seeds=[derive_seed(params.seed, r.key, 0) for r in requests])]
    records: list[dict[str, Any] | None] = [None] * len(requests)
    retry: list[tuple[int, str, str]] = []
    for i, (req, reply) in enumerate(zip(requests, replies, strict=True)):
        try:
            records[i] = _valid_record(req.key, parse_verdict(reply), attempts=1)
        except VerdictError as exc:
            retry.append((i, reply, str(exc)))
    if retry:
        convs = [retry_messages(first[i], reply, err) for i, reply, err in retry]
        seeds = [derive_seed(params.seed, requests[i].key, 1) for i, _, _ in retry]
        second = [c[0].text for c in backend.chat(convs, params, seeds=seeds)]
        for (i, _, _), reply in zip(retry, second, strict=True):
            try:
                records[i] = _valid_record(requests[i].key, parse_verdict(reply), attempts=2)
            except VerdictError as exc:
                records[i] = {"key": requests[i].key, "method": "judge", "valid": False, "attempts": 2, "error": str(exc), "raw": reply[:RAW_KEEP_CHARS]}
    if progress is not None:
        progress(len(requests))
    return [r for r in records if r is not None]


def _valid_record(key: str, v: Verdict, *, attempts: int) -> dict[str, Any]:
    return {
        "key": key, "method": "judge", "valid": True, "attempts": attempts, "difficulty": v.difficulty,
        "tag": v.tag, "tag_l1": v.tag_l1, "tag_l2": v.tag_l2, "reason": v.reason,
    }


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

    convs = [[{"role": "user", "content": r.text + SOLVE_SUFFIX}] for r in requests]
    outs = backend.chat(convs, params, seeds=[derive_seed(params.seed, r.key, 0) for r in requests])
    records = []
    for req, samples in zip(requests, outs, strict=True):
        correct = sum(answers_match(extract_final_answer(s.text), req.answer) for s in samples)
        rate = correct / len(samples)
        records.append({
            "key": req.key, "method": "pass@k", "valid": True, "attempts": 1, "k": len(samples),
            "correct": correct, "solve_rate": rate, "difficulty": level_from_solve_rate(rate, cutoffs),
        })
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
        for backend in loaded.values():
            backend.close()
