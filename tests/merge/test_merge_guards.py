"""issue 20: merge says when --base is unused (linear, fisher) and calibration rows longer than
--max-length never abort fisher/obim statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.merge.helpers import variant
from tests.util import invoke, write_jsonl


@pytest.fixture(scope="module")
def pair(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge_guards")
    return {"base": tiny_model, "a": variant(tiny_model, root / "a", seed=21), "b": variant(tiny_model, root / "b", seed=22)}


def test_linear_with_a_base_says_the_base_is_not_merged(pair: dict[str, Path], tmp_path: Path) -> None:
    res = invoke(["merge", "--method", "linear", "--base", str(pair["base"]), "-m", str(pair["a"]), "-m", str(pair["b"]), "-o", str(tmp_path / "m")])
    assert res.code == 0, res.stderr
    assert f"linear merges no base model: {pair['base']} is ignored as a weight source" in res.stderr
    assert " onto " not in res.stderr


LONG_PROMPT = {"messages": [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "short answer"}]}
SHORT = {"text": "The city council approved a new budget."}


@pytest.mark.parametrize(("command", "kept"), [("fisher-stats", 1), ("activation-stats", 2)])
def test_calibration_rows_beyond_max_length_do_not_abort(pair: dict[str, Path], tmp_path: Path, command: str, kept: int) -> None:
    calib = write_jsonl(tmp_path / "calib.jsonl", [LONG_PROMPT, SHORT])
    out = tmp_path / "stats"
    res = invoke(["merge", command, str(pair["a"]), "--calibration", str(calib), "--max-length", "32", "-o", str(out), "--device", "cpu"])
    assert res.code == 0, res.stderr
    meta = json.loads((out / "in2x_stats.json").read_text())
    assert meta["examples"] == kept  # obim's forward passes use the cut row; Fisher needs its response
    if command == "fisher-stats":
        assert meta["skipped_examples"] == 1 and f"{calib}:1" in res.stderr and "skipped 1 calibration row" in res.stderr
