"""``in2x tiny-model``: the bundled model builds offline, atomically, and loads."""

from __future__ import annotations

import json

from in2x_cli.io.checkpoint import PROVENANCE_FILE, load_causal_lm, load_tokenizer
from tests.util import assert_user_error, invoke


def test_tiny_model_builds_a_loadable_chat_model(tmp_path):
    out = tmp_path / "tiny"
    res = invoke(["tiny-model", str(out), "--seed", "3"])
    assert res.code == 0, res.stderr
    assert "tiny-model: wrote" in res.stderr and res.stdout == ""
    assert load_causal_lm(out).config.num_hidden_layers == 2
    assert "{% generation %}" in load_tokenizer(out).chat_template
    assert json.loads((out / PROVENANCE_FILE).read_text())["config"]["seed"] == 3
    assert_user_error(invoke(["tiny-model", str(out)]), str(out))  # exists: needs --overwrite
    assert invoke(["tiny-model", str(out), "--overwrite"]).code == 0


def test_negative_warm_up_is_refused(tmp_path):
    assert_user_error(invoke(["tiny-model", str(tmp_path / "t"), "--train-steps", "-1"]), "--train-steps must be >= 0")
    assert not (tmp_path / "t").exists()
