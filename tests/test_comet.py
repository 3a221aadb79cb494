import os

import pytest

from in2x_cli.comet import CometClient
from in2x_cli.errors import UserError


def test_worker_scores_with_tiny_checkpoint_and_serves_many_batches(tiny_comet, comet_python):
    rows = [{"src": "the cat", "mt": "猫", "ref": "猫 が"}, {"src": "dog", "mt": "犬", "ref": "犬"}]
    with CometClient(str(tiny_comet), python=comet_python) as client:
        assert client.requires_references
        a = client.score(rows)
        b = client.score(rows[::-1])
        assert len(a) == 2 and all(isinstance(x, float) for x in a)
        assert a[0] == pytest.approx(b[1], abs=1e-5) and a[1] == pytest.approx(b[0], abs=1e-5)
        with pytest.raises(UserError, match="reference-based"):
            client.score([{"src": "x", "mt": "y"}])


def test_offline_model_name_fails_fast_with_a_clear_message(comet_python, monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="HF_HUB_OFFLINE=1"):
        CometClient("Unbabel/wmt22-comet-da", python=comet_python)
    assert time.perf_counter() - t0 < 60


def test_missing_environment_is_explained(monkeypatch, tmp_path):
    monkeypatch.setenv("IN2X_COMET_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(UserError, match="IN2X_COMET_PYTHON"):
        CometClient("x")
    assert os.environ["IN2X_COMET_PYTHON"].endswith("python")
