"""``in2x grpo`` command surface: bad input exits 2 with file:line before any model is loaded,
launcher command, help. Training itself is tested in tests/train/test_grpo_train.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.util import assert_user_error, invoke, write_jsonl

SMALL = ["-G", "2", "--rollout-batch", "2", "--minibatch", "1", "--batch-size", "2", "--report-to", "none"]


@pytest.fixture()
def good_prompts(tmp_path) -> Path:
    return write_jsonl(tmp_path / "p.jsonl", [{"instruction": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(4)])


@pytest.mark.parametrize(
    ("lines", "where", "message"),
    [
        (['{"instruction": "ok", "answer": "1"}', "{bad"], ":2", "invalid JSON"),
        (['{"text": "no prompt"}'], ":1", "row has no prompt"),
        (['{"messages": [{"role": "assistant", "content": "x"}]}'], ":1", "end with a user turn"),
        (['{"src": "Hello", "ref": "こんにちは"}'], ":1", "tgt_lang"),
        (['{"instruction": ["not", "a", "string"]}'], ":1", "must be a string"),
        ([], "", "empty input"),
    ],
)
def test_bad_prompt_file_exits_2_before_loading_the_model(tmp_path, lines, where, message) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    # the model does not exist: the prompt file must be checked first
    res = invoke(["grpo", str(f), "--model", str(tmp_path / "no-model"), "-o", str(tmp_path / "o"), "--reward", "math_exact", *SMALL])
    assert_user_error(res, f"{f}{where}", message)
    assert not (tmp_path / "o").exists()


def test_missing_prompt_file(tmp_path) -> None:
    res = invoke(["grpo", str(tmp_path / "nope.jsonl"), "--model", "x", "-o", str(tmp_path / "o"), "--reward", "math_exact"])
    assert_user_error(res, "nope.jsonl", "no such file")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--reward", "no_such_reward"], "unknown reward 'no_such_reward'"),
        (["--reward", "math_exact", "--rollout-batch", "3", "--minibatch", "2"], "multiple of --minibatch"),
        (["--reward", "math_exact", "--ratio-level", "sentence"], "--ratio-level"),
        (["--reward", "math_exact", "--length-penalty", "20:10"], "TARGET < CAP"),
        (["--reward", "math_exact", "--length-penalty", "abc"], "TARGET:CAP"),
        (["--reward", "math_exact", "--dual-clip", "0.5"], "--dual-clip"),
        (["--reward", "math_exact", "--clip-scale", "log"], "--clip-scale"),
        (["--reward", "math_exact", "--advantage", "tic"], "--advantage"),
        (["--reward", "math_exact", "--temperature-end", "0"], "temperature"),
        (["--reward", "translation_comet"], "--comet-model"),
        (["--reward", "generative_judge"], "--judge-model"),
        (["--reward", "math_exact", "--rollout-batch", "8", "--minibatch", "2"], "fewer than one rollout batch"),
        (["--reward", "math_exact", "--eval-steps", "2"], "--eval-steps evaluates held-out prompts"),
        (["--reward", "math_exact", "--glossary", "g.jsonl"], "--glossary is read only by the terminology reward"),
        (["--reward", "math_exact", "--round-trip-model", "m"], "--round-trip-model is read only by the round_trip reward"),
    ],
)
def test_bad_options_exit_2(tmp_path, good_prompts, extra, message) -> None:
    res = invoke(["grpo", str(good_prompts), "--model", str(tmp_path / "no-model"), "-o", str(tmp_path / "o"), *SMALL, *extra])
    assert_user_error(res, message)


def test_missing_model_and_occupied_output(tmp_path, good_prompts, tiny_model) -> None:
    res = invoke(["grpo", str(good_prompts), "--model", str(tmp_path / "no-model"), "-o", str(tmp_path / "o"), "--reward", "math_exact", *SMALL])
    assert_user_error(res, "no-model")
    out = tmp_path / "busy"
    out.mkdir()
    (out / "metrics.jsonl").write_text("{}\n")
    res = invoke(["grpo", str(good_prompts), "--model", str(tiny_model), "-o", str(out), "--reward", "math_exact", *SMALL])
    assert_user_error(res, str(out), "--resume")


def test_principles_file_must_not_be_empty(tmp_path, good_prompts) -> None:
    empty = tmp_path / "principles.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    res = invoke(["grpo", str(good_prompts), "--model", "m", "-o", str(tmp_path / "o"), "--reward", "generative_judge", "--judge-model", "j", "--principles", str(empty), *SMALL])
    assert_user_error(res, "principles.txt", "no principles")


def test_print_launch(tmp_path, good_prompts, tiny_model) -> None:
    res = invoke(
        ["grpo", str(good_prompts), "--model", str(tiny_model), "-o", str(tmp_path / "x"), "--reward", "math_exact", "--reward", "format:0.2",
         "--launcher", "accelerate", "--launch-config", "fsdp2", "--num-processes", "4", "--print-launch"]
    )  # fmt: skip
    assert res.code == 0, res.stderr
    cmd = res.stdout.strip()
    assert "-m accelerate.commands.launch --config_file" in cmd and "launch/accelerate/fsdp2.yaml --num_processes 4" in cmd
    assert "-m in2x_cli grpo" in cmd and "--reward math_exact --reward format:0.2" in cmd
    assert cmd.endswith("--launcher none --launch-config fsdp2")
    assert not (tmp_path / "x").exists()


def test_stdin_prompts_need_an_in_process_run(tmp_path) -> None:
    res = invoke(["grpo", "-", "--model", "m", "-o", str(tmp_path / "o"), "--reward", "math_exact", "--launcher", "torchrun", "--print-launch"], stdin="{}\n")
    assert_user_error(res, "--launcher none")


def test_help_documents_the_paper_knobs() -> None:
    res = invoke(["grpo", "--help"])
    assert res.code == 0
    text = " ".join(res.stdout.split())
    for flag in ("--num-generations", "--rollout-batch", "--minibatch", "--entropy-coef", "--length-penalty", "--reward-clip-high",
                 "--temperature-start", "--temperature-end", "--ratio-level", "--dual-clip", "Example:"):  # fmt: skip
        assert flag in text, flag


def test_dense_reward_with_length_corrected_advantage_warns_once(tmp_path, good_prompts) -> None:
    """One stderr line names the dense reward; the default (auto) and 0/1 rewards stay silent. The
    model is missing, so the run stops right after the warning (exit 2)."""
    base = ["grpo", str(good_prompts), "--model", str(tmp_path / "no-model"), "-o", str(tmp_path / "o"), *SMALL]
    res = invoke([*base, "--reward", "translation_chrf", "--reward", "math_exact", "--advantage", "length-corrected"])
    lines = [line for line in res.stderr.splitlines() if "--advantage length-corrected with a dense reward" in line]
    assert len(lines) == 1 and "translation_chrf" in lines[0] and "math_exact" not in lines[0].split("(")[1].split(")")[0]
    for extra in (["--reward", "translation_chrf"], ["--reward", "math_exact", "--advantage", "length-corrected"]):
        res = invoke([*base, *extra])
        assert "dense reward" not in res.stderr


def test_eval_prompts_report_held_out_reward_and_length_before_and_after(tmp_path, tiny_model) -> None:
    """--eval-prompts: the held-out set is scored at step 0 (the baseline) and after the last update
    (--eval-steps 0), with reward and completion length in metrics.jsonl."""
    train = write_jsonl(tmp_path / "t.jsonl", [{"instruction": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(4)])
    held = write_jsonl(tmp_path / "h.jsonl", [{"instruction": f"What is {i}*2?", "answer": str(2 * i)} for i in range(10, 12)])
    out = tmp_path / "run"
    res = invoke(["grpo", str(train), "--model", str(tiny_model), "-o", str(out), "--reward", "math_exact", "--eval-prompts", str(held),
                  "--max-steps", "2", "--max-completion-tokens", "6", *SMALL])  # fmt: skip
    assert res.code == 0, res.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    evals = [r for r in rows if "eval_reward" in r]
    assert [r["step"] for r in evals] == [0, 2]
    assert all(0 <= r["eval_reward"] <= 1 and 1 <= r["eval_completions/mean_length"] <= 6 for r in evals)
    bad = invoke(["grpo", str(train), "--model", str(tiny_model), "-o", str(tmp_path / "x"), "--reward", "math_exact",
                  "--eval-prompts", str(tmp_path / "missing.jsonl"), *SMALL])  # fmt: skip
    assert_user_error(bad, "missing.jsonl")
