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


# --------------------------------------------------------------------------- unsafe checkpoints


class Payload:
    """Unpickling this creates ``marker``: what a hostile COMET checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


def _copy_checkpoint(tiny_comet, tmp_path):
    import shutil

    model = tmp_path / "hostile"
    shutil.copytree(tiny_comet, model)
    return model


def _eval_rows(tmp_path):
    from tests.util import write_jsonl

    return write_jsonl(tmp_path / "rows.jsonl", [{"src": "the cat", "ref": "猫", "hyp": "猫", "src_lang": "en", "tgt_lang": "ja"}])


def test_planted_pickle_checkpoint_is_refused_before_it_runs(tiny_comet, comet_python, tmp_path, monkeypatch):
    """torch's weights_only default is flipped back (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD, as in an
    older torch): only an explicit weights_only=True keeps the payload from running."""
    import torch

    from tests.util import assert_user_error, invoke

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "PAYLOAD-RAN"
    model = _copy_checkpoint(tiny_comet, tmp_path)
    ckpt = model / "checkpoints" / "model.ckpt"
    good = torch.load(ckpt, map_location="cpu", weights_only=True)
    torch.save({**good, "callbacks": Payload(marker)}, ckpt)  # real weights, one hostile entry
    res = invoke(["eval", str(_eval_rows(tmp_path)), "-m", f"chrf,comet={model}"])
    assert_user_error(res, str(ckpt), "refusing to load COMET checkpoint", "weights-only", "open")
    assert len(res.stderr.strip().splitlines()) == 1
    assert not marker.exists(), "the planted payload ran"


def test_unsafe_hparams_yaml_is_refused(tiny_comet, comet_python, tmp_path):
    model = _copy_checkpoint(tiny_comet, tmp_path)
    marker = tmp_path / "YAML-RAN"
    hparams = model / "hparams.yaml"
    hparams.write_text(hparams.read_text(encoding="utf-8") + f"extra: !!python/object/apply:builtins.open [{str(marker)!r}, 'w']\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"refusing COMET hparams .*hparams\.yaml: not plain YAML \(safe_load"):
        CometClient(str(model), python=comet_python)
    assert not marker.exists()


def test_offline_model_name_without_hf_hub_offline_says_the_hub_is_unreachable(comet_python, tmp_path, monkeypatch):
    """No network and HF_HUB_OFFLINE unset: the worker reports an unreachable hub (not a KeyError)
    within seconds, and says how to give a local checkpoint."""
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, every request is refused at once
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, closed)
    monkeypatch.setenv("NO_PROXY", "")
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="hub is unreachable") as info:
        CometClient("Unbabel/wmt22-comet-da", python=comet_python)
    assert "local checkpoint" in str(info.value) and "KeyError" not in str(info.value)
    assert time.perf_counter() - t0 < 30
