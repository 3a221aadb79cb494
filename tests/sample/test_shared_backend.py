"""sample-difficulty with the same model as judge and solver loads it once (issue 15, item 5)."""

from __future__ import annotations

from typing import Any

from tests.fakes import SCRIPTS, ScriptedBackend
from tests.sample.test_sample_difficulty_cmd import _judge
from tests.util import invoke, write_jsonl

EVENTS: list[str] = []


class CountingBackend(ScriptedBackend):
    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        EVENTS.append(f"load {model}")

    def close(self) -> None:
        EVENTS.append(f"close {self.model_path}")


def _both(prompt: str, j: int) -> str:
    return _judge(prompt, j) if "<<<" in prompt else "\\boxed{4}"


def test_same_judge_and_solver_model_share_one_engine(tmp_path):
    SCRIPTS["both-e2e"] = _both
    SCRIPTS["other-e2e"] = _both
    src = write_jsonl(tmp_path / "p.jsonl", [
        {"id": 1, "lang": "en", "instruction": "2+2?", "answer": "4"},
        {"id": 2, "lang": "en", "instruction": "an open question hard"},
    ])  # fmt: skip
    common = ["sample-difficulty", str(src), "--grade-only", "--backend", f"{__name__}:CountingBackend", "--k", "4"]
    EVENTS.clear()
    res = invoke([*common, "--judge-model", "both-e2e", "--solve-model", "both-e2e"])
    assert res.code == 0, res.stderr
    assert {r["id"]: r["difficulty"] for r in res.rows()} == {1: "very_easy", 2: "very_hard"}
    assert EVENTS == ["load both-e2e", "close both-e2e"]
    EVENTS.clear()
    res = invoke([*common, "--judge-model", "both-e2e", "--solve-model", "other-e2e"])
    assert res.code == 0, res.stderr
    assert sorted(EVENTS) == ["close both-e2e", "close other-e2e", "load both-e2e", "load other-e2e"]
