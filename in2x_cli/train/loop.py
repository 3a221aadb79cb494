"""Running the Trainer: ``trainer.train`` with graceful SIGTERM/SIGINT handling and exact resume.

Checkpoint safety: transformers 5.24 reads every ``*.pt``/``*.pth`` file of a checkpoint with
``torch.load(weights_only=True)`` (RNG state under ``trainer_pt_utils.safe_globals()``, which only
allow-lists numpy array reconstruction); ``training_args.bin`` is written but never loaded.
"""

from __future__ import annotations

import json
import pickle
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from in2x_cli import console
from in2x_cli.errors import UserError


@dataclass
class StopRequest:
    """Set by the signal handler; read by the stop callback at the next step boundary."""

    signum: int = 0



@contextmanager
def graceful_signals(request: StopRequest) -> Iterator[None]:
    """First SIGTERM/SIGINT: ask for a checkpoint at the next step boundary. A second one: abort now
    (through the previous handler, i.e. the CLI's clean KeyboardInterrupt path)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: Any) -> None:
        if request.signum:
            _call_previous(previous[signum], signum, frame)
            return
        request.signum = signum
        console.warn(f"received {signal.Signals(signum).name}: saving a checkpoint at the end of this step (send again to abort now)")

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _call_previous(handler: Any, signum: int, frame: Any) -> None:
    if callable(handler):
        handler(signum, frame)
    raise KeyboardInterrupt


def run_training(trainer: Any, resume_from: str | Path | None) -> Any:
    """``trainer.train(resume_from_checkpoint=...)`` with graceful SIGTERM/SIGINT handling.

    When a signal arrived, the trainer has saved a checkpoint at the step boundary and stopped;
    this then re-raises the interruption through the previous handler (the CLI maps it to exit
    130/143 and prints ``in2x: interrupted``), so no final model is exported.
    """
    if resume_from and _finished_checkpoint(Path(resume_from), getattr(trainer.args, "max_steps", -1)):
        # Killed after its last step but before the export: transformers' Trainer would train one
        # more step from such a checkpoint (it checks max_steps only after a step), so the result
        # would differ from the uninterrupted run. Load the checkpoint's weights and export them.
        from transformers.trainer_callback import TrainerState

        console.info(f"resume: {resume_from} holds the last step; exporting it without further training")
        trainer._load_from_checkpoint(str(resume_from))
        trainer.state = TrainerState.load_from_json(str(Path(resume_from) / "trainer_state.json"))
        return None
    request: StopRequest = getattr(trainer, "_in2x_stop_request", None) or StopRequest()
    with graceful_signals(request):
        try:
            result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        except pickle.UnpicklingError as exc:  # torch.load(weights_only=True) refused an object
            if not resume_from:
                raise
            detail = re.search(r"Unsupported global: [^\n]*|[^\n]+", str(exc))
            raise UserError(
                "refusing to resume: a file of this checkpoint holds objects that weights-only loading does not allow "
                f"({detail.group(0)[:120] if detail else 'unpickling refused'}); it may have been tampered with — remove the "
                "checkpoint to resume from an earlier one",
                str(resume_from),
            ) from None
    if request.signum:
        console.info(f"interrupted at step {trainer.state.global_step}: checkpoint saved; rerun with --resume to continue")
        _call_previous(_previous_handler(request.signum), request.signum, None)
    return result


def _finished_checkpoint(checkpoint: Path, max_steps: int) -> bool:
    """The checkpoint holds the run's last step: ``global_step >= max_steps`` (this run's
    ``--max-steps``; for epoch-based runs the total the checkpoint's run computed)."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        target = max_steps if max_steps and max_steps > 0 else int(state.get("max_steps") or 0)
        return target > 0 and int(state["global_step"]) >= target
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _previous_handler(signum: int) -> Any:
    return signal.getsignal(signum)
