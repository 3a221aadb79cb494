"""Shared fixtures: the tiny model is built once per session, offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("IN2X_NO_PROGRESS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def _find_shared_data() -> Path | None:
    """../shared/data next to the checkout (or IN2X_SHARED_DATA, or /work/shared/data)."""
    repo = Path(__file__).resolve().parent.parent
    for cand in (os.environ.get("IN2X_SHARED_DATA"), repo.parent / "shared" / "data", Path("/work/shared/data")):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


SHARED_DATA = _find_shared_data()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny Qwen2 chat model (seed 0): the fixture most tests use."""
    from in2x_cli.tiny import TinyConfig, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", TinyConfig(seed=0))


@pytest.fixture(scope="session")
def tiny_model_warm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model after 60 warm-up steps on the corpus (emits corpus-like text and EOS)."""
    from in2x_cli.tiny import TinyConfig, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_warm") / "model", TinyConfig(seed=0, train_steps=60))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if SHARED_DATA is None:
        pytest.skip("shared WMT data (../shared/data) not found; set IN2X_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def comet_python() -> str:
    from in2x_cli.comet import comet_available, comet_python

    if not comet_available():
        pytest.skip("no COMET environment (make comet-env creates it; make test does so first)")
    return comet_python()


@pytest.fixture(scope="session")
def tiny_comet(tmp_path_factory: pytest.TempPathFactory, comet_python: str) -> Path:
    """A tiny random COMET regression checkpoint directory (…/checkpoints/model.ckpt inside)."""
    from in2x_cli.comet import build_tiny_checkpoint

    out = tmp_path_factory.mktemp("tiny_comet")
    build_tiny_checkpoint(out, python=comet_python)
    return out
