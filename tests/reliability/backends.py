"""Scripted backends that need no registration by test code, so a subprocess (``python -m
in2x_cli ... --backend tests.reliability.backends:ReliableBackend --model rel-...``) can use them.

Replies depend only on the prompt text and the sample index (deterministic, batch-independent),
so an interrupted and resumed run must reproduce an uninterrupted one row for row.
``IN2X_TEST_DELAY`` (seconds per prompt) slows generation down so a kill lands mid-run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from in2x_cli.backends.base import Completion, ProgressFn, SamplingParams
from tests import fakes


def _user(prompt: str) -> str:
    """The last user turn of a ChatML prompt rendered by tests.fakes' tokenizer."""
    part = prompt.rsplit("<|im_start|>user\n", 1)[-1]
    return part.split("<|im_end|>", 1)[0]


def _digest(text: str, j: int = 0) -> int:
    return int(hashlib.sha256(f"{j}\x1f{text}".encode()).hexdigest()[:8], 16)


def translate_mirror(prompt: str, j: int) -> str:
    """Paragraph-aligned 'translation' of the built-in translate prompt (source after the first blank line)."""
    user = _user(prompt)
    src = user.split("\n\n", 1)[1] if "\n\n" in user else user
    return "\n\n".join(f"[{_digest(p, j) % 1000}] {p}" for p in src.split("\n\n"))


def synth_answer(prompt: str, j: int) -> str:
    """Answers, critic verdicts and ReReading verdicts for ``synthesize answer --critic-model --reread``."""
    user = _user(prompt)
    low = user.lower()
    h = _digest(user, j)
    if "contradiction" in low and "hallucination" in low:
        flagged = h % 5 == 0  # a fifth of the rows are flagged: the rejects file gets rows too
        return json.dumps({"contradiction": flagged, "hallucination": False, "invalid": False, "reason": "scripted"})
    if '"keep"' in low or "keep" in low and "rewrite" in low and "reject" in low:
        return json.dumps({"verdict": "keep", "reason": "scripted"})
    return f"Answer {h % 997}: " + " ".join(user.split()[:12])


def difficulty_judge(prompt: str, j: int) -> str:
    """A valid difficulty verdict for most prompts, garbage for a few (their grade is 'invalid')."""
    text = prompt.split("<<<\n", 1)[-1].split("\n>>>", 1)[0]
    h = _digest(text)
    if h % 11 == 0 and "not usable" not in prompt:
        return "no verdict here"
    levels = ["very_hard", "hard", "medium", "easy", "very_easy"]
    return json.dumps({"tag_l1": "Topic", "tag_l2": f"Sub{h % 7}", "difficulty": levels[h % 5], "reason": "scripted"})


def grpo_judge(prompt: str, j: int) -> str:
    """The generative judge of ``grpo``: guidelines, then a verdict that depends on the candidate."""
    if "You write grading guidelines" in prompt:
        return "Answer briefly."
    principles = prompt.split("Principles:\n", 1)[1].split("\n\nGuidelines", 1)[0]
    n = len(principles.splitlines())
    h = _digest(prompt.rsplit("CANDIDATE", 2)[-2] if prompt.count("CANDIDATE") >= 2 else prompt)
    return json.dumps({"verdicts": [{"id": i, "satisfied": bool((h >> i) & 1)} for i in range(1, n + 1)]})


SCRIPTS = {"rel-translate": translate_mirror, "rel-synth": synth_answer, "rel-judge": difficulty_judge, "rel-grpo-judge": grpo_judge}
fakes.SCRIPTS.update(SCRIPTS)


class ReliableBackend(fakes.ScriptedBackend):
    """tests.fakes' scripted backend, with the scripts above and an optional per-prompt delay."""

    name = "reliable-scripted"

    def __init__(self, model: str, **opts: Any) -> None:
        super().__init__(model, **opts)
        self._delay = float(os.environ.get("IN2X_TEST_DELAY", "0") or 0)

    def generate_from_text(
        self, prompts: Sequence[str], params: SamplingParams, *, seeds: Sequence[int] | None = None, progress: ProgressFn | None = None
    ) -> list[list[Completion]]:
        if self._delay:
            time.sleep(self._delay * len(prompts))
        # unlike tests.fakes, no record of the prompts: memory measurements see the stage's own
        out = [[Completion(text=self._fn(p, j), token_ids=[], logprobs=None, finish_reason="stop") for j in range(params.n)] for p in prompts]
        if progress is not None:
            progress(len(prompts))
        return out


class ExplodingBackend(ReliableBackend):
    """A backend that must never be constructed: commands validate their input before loading a
    model, so a bad row anywhere in the input fails before this raises."""

    def __init__(self, model: str, **opts: Any) -> None:
        raise RuntimeError("a model was loaded before the input was validated")


def tiny_embed(texts: Sequence[str]) -> Any:
    """A 16-d deterministic embedder (``cluster --embedder tests.reliability.backends:tiny_embed``)
    with no fitted state, so cluster's memory can be measured without the hashing embedder's
    10,000-row fit sample."""
    import numpy as np

    out = np.empty((len(texts), 16), dtype=np.float32)
    for i, t in enumerate(texts):
        out[i] = np.random.default_rng(_digest(t[:64])).standard_normal(16)
    return out
