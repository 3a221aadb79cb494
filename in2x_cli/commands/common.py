"""Option helpers shared by command modules (light: no heavy imports)."""

from __future__ import annotations

import typer

# Reusable option declarations, so every command spells them the same way.
SEED_HELP = "Random seed; the same seed and inputs give the same outputs."
BACKEND_HELP = "Generation engine: transformers (CPU/GPU), vllm (GPU, pip install 'in2x[gpu]'), auto, or module:Class."


def seed_option(default: int = 0) -> int:
    return typer.Option(default, "--seed", help=SEED_HELP)


def backend_option(default: str = "transformers") -> str:
    return typer.Option(default, "--backend", help=BACKEND_HELP)


def trust_remote_code_option() -> bool:
    return typer.Option(
        False, "--trust-remote-code", help="Allow model code from the model directory to run (off: only built-in architectures)."
    )
