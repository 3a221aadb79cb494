"""Trainer callbacks: metrics.jsonl (+ tokens/s and MFU), a rich progress bar on stderr, and the
graceful stop at a step boundary after SIGTERM/SIGINT (see ``loop.run_training``)."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from in2x_cli import console
from in2x_cli.train.flops import detect_peak_flops, mfu
from in2x_cli.train.loop import StopRequest
from in2x_cli.train.rundir import METRICS_FILE


def _trainer_callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


def _numeric(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    try:  # 0-d tensors / numpy scalars
        v = value.item()
    except (AttributeError, ValueError, RuntimeError):
        return None
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


class MetricsCallback:  # becomes a TrainerCallback subclass in make_metrics_callback
    """Writes ``<out>/metrics.jsonl``: one JSON object per logging step.

    Each row: ``step``, ``epoch``, ``time`` (seconds since this process started training), every
    numeric value the trainer logged (``loss``, ``learning_rate``, ``grad_norm``, TRL's
    ``entropy``/``mean_token_accuracy``/``num_tokens``, GRPO's ``reward*``/``clip_ratio*`` keys, ...)
    plus ``tokens_per_second`` (from the change in ``num_input_tokens_seen`` or TRL's ``num_tokens``
    between two logs) and, on a GPU of known peak, ``mfu``. The derived values are also written into
    the log dict itself, so TensorBoard gets them (this callback runs first).

    On resume, rows logged after the checkpoint's step are dropped (they are logged again).
    ``epoch_fn(state) -> float`` lets a stage report its own epoch (sft's round → epoch schedule).
    """


def make_metrics_callback(
    output_dir: str | Path,
    *,
    flops_per_token_value: float | None = None,
    peak: float | None = None,
    world_size: int = 1,
    epoch_fn: Callable[[Any], float | None] | None = None,
) -> Any:
    base = _trainer_callback_base()
    path = Path(output_dir) / METRICS_FILE

    class _Metrics(base, MetricsCallback):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.path = path
            self._fh: Any = None
            self._t0 = 0.0
            self._last: tuple[float, float] | None = None  # (time, tokens)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if not state.is_world_process_zero:
                return
            kept: list[str] = []
            if self.path.exists():
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        break  # torn last line from a kill
                    if isinstance(row, dict) and int(row.get("step", 0)) <= state.global_step:
                        kept.append(line)
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
            os.replace(tmp, self.path)
            self._fh = open(self.path, "a", encoding="utf-8")
            self._t0 = time.perf_counter()
            self._last = None

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs is None:
                return
            now = time.perf_counter()
            tokens = logs.get("num_input_tokens_seen", logs.get("num_tokens"))
            tokens = _numeric(tokens)
            if tokens is not None and "tokens_per_second" not in logs:
                if self._last is not None and tokens > self._last[1] and now > self._last[0]:
                    logs["tokens_per_second"] = (tokens - self._last[1]) / (now - self._last[0])
                if self._last is None or tokens >= self._last[1]:
                    self._last = (now, tokens)
            tps = _numeric(logs.get("tokens_per_second"))
            if tps is not None and flops_per_token_value and peak:
                logs["mfu"] = mfu(tps, flops_per_token_value, peak, world_size)
            epoch = epoch_fn(state) if epoch_fn is not None else None
            if epoch is not None:
                logs["epoch"] = epoch
            if not state.is_world_process_zero or self._fh is None:
                return
            row: dict[str, Any] = {"step": state.global_step, "epoch": logs.get("epoch", state.epoch), "time": round(now - self._t0, 3)}
            for k, v in logs.items():
                if k in row:
                    continue
                n = _numeric(v)
                if n is not None:
                    row[k] = n
            self._fh.write(json.dumps(row) + "\n")
            self._fh.flush()

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    return _Metrics()


def make_progress_callback(description: str) -> Any:
    """A rich progress bar on stderr (steps done / max steps, last loss); replaces tqdm/printing."""
    base = _trainer_callback_base()

    class _RichProgress(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self._cm: Any = None
            self._bar: Any = None
            self._task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if not state.is_world_process_zero:
                return
            self._cm = console.progress()
            self._bar = self._cm.__enter__()
            self._task = self._bar.add_task(description, total=state.max_steps or None, completed=state.global_step)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self._bar is not None:
                self._bar.update(self._task, completed=state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if self._bar is not None and logs and "loss" in logs:
                self._bar.update(self._task, description=f"{description} loss {logs['loss']:.4f}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self._cm is not None:
                self._cm.__exit__(None, None, None)
                self._cm = self._bar = None

    return _RichProgress()


def make_stop_callback(request: StopRequest) -> Any:
    """At a step boundary after SIGTERM/SIGINT: save a checkpoint and stop. In multi-process runs
    the flag is all-reduced (max) so every rank stops at the same step (the save is collective)."""
    base = _trainer_callback_base()

    class _StopOnSignal(base):  # type: ignore[misc, valid-type]
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            flag = request.signum
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                import torch

                t = torch.tensor([flag], device=args.device)
                dist.all_reduce(t, op=dist.ReduceOp.MAX)
                flag = int(t.item())
                request.signum = request.signum or flag
            if flag:
                control.should_save = True
                control.should_training_stop = True

    return _StopOnSignal()


def install_callbacks(
    trainer: Any,
    output_dir: str | Path,
    *,
    description: str = "train",
    flops_per_token_value: float | None = None,
    epoch_fn: Callable[[Any], float | None] | None = None,
) -> StopRequest:
    """Swap transformers' tqdm/print callbacks for ours: metrics.jsonl (+ MFU on a known GPU), a
    rich progress bar on stderr, and the graceful-stop callback. Returns the StopRequest that
    ``run_training`` arms."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    precision = "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32"
    detected = detect_peak_flops(precision) if not trainer.args.use_cpu else None
    peak = detected[1] if detected else None
    metrics = make_metrics_callback(
        output_dir,
        flops_per_token_value=flops_per_token_value,
        peak=peak,
        world_size=trainer.args.world_size,
        epoch_fn=epoch_fn,
    )
    # first, so TensorBoard sees tokens_per_second / mfu / our epoch
    trainer.callback_handler.callbacks.insert(0, metrics)
    trainer.add_callback(make_progress_callback(description))
    request = StopRequest()
    trainer.add_callback(make_stop_callback(request))
    trainer._in2x_stop_request = request  # noqa: SLF001 - read by run_training
    return request
