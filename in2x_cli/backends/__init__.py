"""Generation backends: one interface (``Backend``), two engines (transformers, vLLM).

Every stage that calls an LLM (synthesize, difficulty judging, translate, judge rewards) goes
through ``load_backend``. A backend is chosen by name or by a dotted path ``module:Class`` (how
tests plug in scripted backends and how users add their own engines).
"""

from __future__ import annotations

from typing import Any

from in2x_cli.backends.base import Backend, Completion, SamplingParams, derive_seed
from in2x_cli.errors import UserError
from in2x_cli.plugins import import_dotted

BACKENDS: dict[str, str] = {
    "transformers": "in2x_cli.backends.hf:TransformersBackend",
    "vllm": "in2x_cli.backends.vllm:VLLMBackend",
}


def _vllm_usable() -> bool:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def resolve_backend_class(name: str) -> type[Backend]:
    if name == "auto":
        name = "vllm" if _vllm_usable() else "transformers"
    target = BACKENDS.get(name, name)
    if ":" not in target:
        raise UserError(f"unknown backend {name!r} (expected {', '.join(BACKENDS)}, auto, or module:Class)")
    return import_dotted(target, what="backend")


def load_backend(name: str, model: str, **options: Any) -> Backend:
    """Instantiate a backend for ``model`` (a local directory or hub id; see io.checkpoint)."""
    cls = resolve_backend_class(name)
    return cls(model, **options)


class BackendCache:
    """Loads each (backend, model) pair once: roles that name the same model (a judge and a solver, a
    writer and its critic) share one engine, so a GPU does not hold two copies (two vLLM engines at
    0.9 of its memory each would not even start). ``close`` releases each engine once."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.loaded: dict[tuple[str, str], Backend] = {}

    def get(self, name: str, model: str) -> Backend:
        key = (name, str(model))
        if key not in self.loaded:
            self.loaded[key] = load_backend(name, model, **self.options)
        return self.loaded[key]

    def close(self) -> None:
        while self.loaded:
            self.loaded.popitem()[1].close()

    def __enter__(self) -> BackendCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["BACKENDS", "Backend", "BackendCache", "Completion", "SamplingParams", "derive_seed", "load_backend", "resolve_backend_class"]
