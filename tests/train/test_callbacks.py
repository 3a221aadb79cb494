"""metrics.jsonl rows: tokens/s, MFU, and rows after a resume point."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from in2x_cli.train.callbacks import make_metrics_callback
from in2x_cli.train.rundir import read_metrics


def test_metrics_callback_writes_rows_and_drops_rows_after_resume_point(tmp_path):
    cb = make_metrics_callback(tmp_path, flops_per_token_value=1e9, peak=1e12, world_size=1)
    state = SimpleNamespace(is_world_process_zero=True, global_step=0, epoch=0.0)
    cb.on_train_begin(None, state, None)
    for step, tokens in ((1, 100), (2, 300), (3, 500)):
        state.global_step = step
        cb.on_log(None, state, None, logs={"loss": 2.0 / step, "learning_rate": 1e-3, "num_input_tokens_seen": tokens, "flag": True})
    cb.on_train_end(None, state, None)
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert "tokens_per_second" not in rows[0] and rows[1]["tokens_per_second"] > 0
    assert rows[1]["mfu"] == pytest.approx(rows[1]["tokens_per_second"] * 1e9 / 1e12)
    assert "flag" not in rows[0] and rows[2]["loss"] == pytest.approx(2 / 3)
    # resuming from step 2 drops the row logged after the checkpoint
    state.global_step = 2
    cb2 = make_metrics_callback(tmp_path)
    cb2.on_train_begin(None, state, None)
    cb2.on_train_end(None, state, None)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
