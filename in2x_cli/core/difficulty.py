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

This module is pure (prompts, verdict check, grade records); ``sample/grade.py`` sends the
batches to the backends.

Determinism and resume: each request's sampling seed is derived from (seed, prompt), so a row's
grade does not depend on batch composition or on which rows a resumed run skips; a grade is
keyed by ``grade_key`` (a hash of the method, text and answer), so identical prompts are graded
once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
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


# --------------------------------------------------------------------------- grade records


@dataclass(frozen=True)
class Request:
    key: str
    text: str
    method: str = "judge"  # "judge" or "pass@k"
    answer: Any = None


def judge_record(key: str, reply: str, *, attempts: int) -> dict[str, Any]:
    """The grade record of a judge reply: ``{key, method: "judge", valid: true, attempts,
    difficulty, tag, tag_l1, tag_l2, reason}``, or ``VerdictError`` when the reply holds no valid
    verdict."""
    v = parse_verdict(reply)
    return {
        "key": key, "method": "judge", "valid": True, "attempts": attempts, "difficulty": v.difficulty,
        "tag": v.tag, "tag_l1": v.tag_l1, "tag_l2": v.tag_l2, "reason": v.reason,
    }


def invalid_record(key: str, reply: str, error: str, *, attempts: int) -> dict[str, Any]:
    """The grade record of a judge whose last reply was invalid (the start of the reply is kept)."""
    return {"key": key, "method": "judge", "valid": False, "attempts": attempts, "error": error, "raw": reply[:RAW_KEEP_CHARS]}


def solve_prompt(text: str) -> list[Message]:
    """The pass@k conversation for one instruction."""
    return [{"role": "user", "content": text + SOLVE_SUFFIX}]


def solve_record(request: Request, samples: Sequence[str], cutoffs: Sequence[float] = SOLVE_CUTOFFS) -> dict[str, Any]:
    """The pass@k grade record: ``solve_rate`` = samples whose final answer matches / k, and the
    level it falls in (``level_from_solve_rate``)."""
    correct = sum(answers_match(extract_final_answer(s), request.answer) for s in samples)
    rate = correct / len(samples)
    return {
        "key": request.key, "method": "pass@k", "valid": True, "attempts": 1, "k": len(samples),
        "correct": correct, "solve_rate": rate, "difficulty": level_from_solve_rate(rate, cutoffs),
    }
