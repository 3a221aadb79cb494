"""Kill and resume, every long stage (scenarios in tests/reliability/scenarios.py).

The real command runs in a subprocess and is stopped at a seeded random point — SIGKILL (nothing
can be flushed), SIGTERM (cluster pre-emption) or SIGINT (Ctrl-C) — then resumed with --resume;
the result must equal an uninterrupted run: the same JSONL bytes (no row lost or repeated, torn
last lines dropped) and bit-identical weights on CPU. Two kill points per JSONL stage (SIGKILL and a
graceful signal) and per training stage (two seeded SIGKILL/SIGINT points; grpo also SIGTERM)
here, within the suite's time budget; bench/reliability.py runs more per stage and signal.

Already covered elsewhere, not repeated: sft SIGKILL after a checkpoint, with weights_only loads
recorded (tests/train/test_sft_cmd.py); cpt SIGTERM → checkpoint → bit-identical resume
(tests/train/test_cpt_cmd.py); grpo resume from mid-rollout and boundary checkpoints
(tests/train/test_grpo_train.py); in-process interruptions of translate, synthesize and
sample-difficulty with torn partial lines (tests/commands/test_*_cmd.py).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.reliability.scenarios import run_jsonl, run_training


@pytest.mark.parametrize(
    ("stage", "sig"),
    [
        ("translate", signal.SIGKILL),
        ("translate", signal.SIGTERM),
        ("synthesize", signal.SIGKILL),
        ("synthesize", signal.SIGINT),
        ("sample-difficulty", signal.SIGKILL),
        ("sample-difficulty", signal.SIGTERM),
    ],
)
def test_jsonl_stage_resumes_to_the_uninterrupted_output(stage: str, sig: int, tmp_path: Path) -> None:
    outcome = run_jsonl(stage, tmp_path, seed=0, sig=sig)
    assert outcome.interrupted, outcome  # the kill point is mid-run, or this test proves nothing
    assert outcome.identical


# The uninterrupted run of each training stage, made once (alongside its first kill) and shared
# by that stage's other kill points.
_REFERENCES: dict[str, Path] = {}


TRAINING_KILLS = [
    ("cpt", signal.SIGKILL, 0),
    ("cpt", signal.SIGKILL, 1),
    ("sft", signal.SIGINT, 0),
    ("sft", signal.SIGKILL, 1),
    ("grpo", signal.SIGKILL, 0),
    ("grpo", signal.SIGKILL, 1),
    ("grpo", signal.SIGTERM, 100),  # pre-emption: checkpoint at the step it stopped on, then exit 143
]


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "sig", "seed"), TRAINING_KILLS, ids=[f"{st}-{signal.Signals(sg).name}-{sd}" for st, sg, sd in TRAINING_KILLS])
def test_training_resumes_bit_identically(stage: str, sig: int, seed: int, tiny_model: Path, tmp_path: Path) -> None:
    ref = _REFERENCES.get(stage)
    outcome = run_training(stage, tiny_model, tmp_path, seed=seed, sig=sig, ref=ref)
    if ref is None:
        _REFERENCES[stage] = tmp_path / "reference" / "ref"  # where run_training had reference_run put it
    assert outcome.interrupted, outcome
    assert outcome.identical


def test_resume_from_the_last_checkpoint_trains_no_extra_step(tiny_model: Path, tmp_path: Path) -> None:
    """Killed after the last checkpoint but before the export: --resume exports that checkpoint.
    (transformers' Trainer trains one more step from such a checkpoint; with a constant LR that
    step would change the weights, so this compares against the uninterrupted run.)"""
    import shutil

    from in2x_cli.train.rundir import read_metrics
    from tests.reliability.helpers import safetensors_equal
    from tests.reliability.scenarios import TRAIN_STAGES
    from tests.util import invoke

    stage = TRAIN_STAGES["cpt"]
    args = [a if a not in ("12", "linear") else {"12": "4", "linear": "constant"}[a] for a in stage.argv(stage.make_input(tmp_path), str(tiny_model), tmp_path / "x")]
    args = args[: args.index("-o")] + args[args.index("-o") + 2 :]
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert invoke([*args, "-o", str(ref)]).code == 0
    run.mkdir()
    shutil.copytree(ref / "checkpoint-4", run / "checkpoint-4")
    shutil.copy(ref / "metrics.jsonl", run / "metrics.jsonl")
    res = invoke([*args, "-o", str(run), "--resume"])
    assert res.code == 0, res.stderr[-2000:]
    assert "holds the last step" in res.stderr
    assert safetensors_equal(ref, run) == []
    assert [r["step"] for r in read_metrics(run) if "loss" in r] == [1, 2, 3, 4]
