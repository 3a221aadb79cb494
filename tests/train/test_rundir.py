"""The run directory: creation, resume and overwrite rules."""

from __future__ import annotations

import json

import pytest

from in2x_cli.errors import UserError
from in2x_cli.train.rundir import prepare_output_dir


def _checkpoint(path, step, complete=True):
    d = path / f"checkpoint-{step}"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"x")
    if complete:
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return d


def test_prepare_output_dir_rules(tmp_path):
    out = tmp_path / "run"
    assert prepare_output_dir(out, resume=False, overwrite=False) is None and out.is_dir()
    (out / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(UserError, match="--resume .* or --overwrite"):
        prepare_output_dir(out, resume=False, overwrite=False)
    _checkpoint(out, 2)
    _checkpoint(out, 10)
    torn = _checkpoint(out, 12, complete=False)  # killed while saving
    assert prepare_output_dir(out, resume=True, overwrite=False) == out / "checkpoint-10"
    assert not torn.exists()
    assert prepare_output_dir(out, resume=False, overwrite=True) is None and list(out.iterdir()) == []
    with pytest.raises(UserError, match="parent directory"):
        prepare_output_dir(tmp_path / "missing" / "run", resume=False, overwrite=False)
    with pytest.raises(UserError, match="mutually exclusive"):
        prepare_output_dir(out, resume=True, overwrite=True)
