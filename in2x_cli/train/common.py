"""Training glue shared by ``cpt``, ``sft`` and ``grpo``: output directory, callbacks, resume,
signals, precision, final export and MFU. The loop itself is always TRL / transformers ``Trainer``.

Output directory layout (one directory per run)::

    <out>/
      checkpoint-<step>/        Trainer checkpoints (model.safetensors, optimizer.pt, scheduler.pt,
                                rng_state.pth, trainer_state.json); ``--resume`` continues from the
                                newest complete one
      metrics.jsonl             one JSON object per logging step (see ``MetricsCallback``)
      runs/                     TensorBoard event files (``report_to=tensorboard``)
      config.json, model*.safetensors (+ index), tokenizer files, chat_template.jinja
                                the final model, written by ``save_final_model`` when training ends
      in2x_provenance.json      written last: its presence marks a finished run

How the trainers use this module (read top to bottom)::

    resume_from = prepare_output_dir(opts.output_dir, resume=opts.resume, overwrite=opts.overwrite)
    seed_everything(opts.seed)
    args = SFTConfig(**common_training_args(opts), learning_rate=..., ...)
    trainer = SFTTrainer(...)
    install_callbacks(trainer, opts.output_dir, flops_per_token=flops_per_token(model, seq_len))
    run_training(trainer, resume_from)          # SIGTERM/SIGINT → checkpoint at the step boundary
    save_final_model(trainer, opts.output_dir, tokenizer=tok, provenance=...)

Checkpoint safety: transformers 5.24 reads every ``*.pt``/``*.pth`` file of a checkpoint with
``torch.load(weights_only=True)`` (RNG state under ``trainer_pt_utils.safe_globals()``, which only
allow-lists numpy array reconstruction); ``training_args.bin`` is written but never loaded. The
final export contains safetensors only (no ``training_args.bin``).

Heavy imports (torch, transformers) happen inside functions; importing this module is cheap.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from in2x_cli import console
from in2x_cli.errors import UserError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
METRICS_FILE = "metrics.jsonl"
FINAL_MARKER = "in2x_provenance.json"
_FINAL_PARTIAL = ".final.partial"


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class TrainOptions:
    """Knobs every training command shares (the command builds it from its CLI options).

    ``precision``: ``auto`` (bf16 on a GPU that supports it, else fp16 on GPU, fp32 on CPU), ``fp32``,
    ``bf16`` or ``fp16`` (mixed precision: master weights stay fp32).
    ``device``: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    ``report_to``: integrations for ``TrainingArguments.report_to`` (``tensorboard``; ``none`` = off).
    """

    output_dir: Path
    seed: int = 0
    resume: bool = False
    overwrite: bool = False
    save_steps: int = 500
    save_total_limit: int | None = 3
    logging_steps: int = 10
    precision: str = "auto"
    device: str = "auto"
    report_to: tuple[str, ...] = ("tensorboard",)
    max_shard_size: str = "5GB"
    gradient_checkpointing: bool = False
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    extra_args: dict[str, Any] = field(default_factory=dict)  # passed through to TrainingArguments


# --------------------------------------------------------------------------- output directory


def checkpoint_step(path: Path) -> int | None:
    m = CHECKPOINT_RE.match(path.name)
    return int(m.group(1)) if m else None


def is_complete_checkpoint(path: Path) -> bool:
    """Trainer writes ``trainer_state.json`` last, so a checkpoint killed mid-save lacks a valid one."""
    state = path / "trainer_state.json"
    if not state.is_file():
        return False
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return False
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*")) or (path / "pytorch_model_fsdp_0").exists()
    # FSDP sharded state dicts and DeepSpeed checkpoints keep weights in sub-directories
    has_weights = has_weights or any(p.is_dir() for p in path.iterdir() if p.name.startswith(("pytorch_model_fsdp", "global_step")))
    return has_weights


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest *complete* ``checkpoint-<step>`` directory, or None."""
    out = Path(output_dir)
    if not out.is_dir():
        return None
    cands = sorted(
        (p for p in out.iterdir() if p.is_dir() and checkpoint_step(p) is not None),
        key=lambda p: checkpoint_step(p) or 0,
        reverse=True,
    )
    for p in cands:
        if is_complete_checkpoint(p):
            return p
    return None


def check_output_dir(output_dir: str | Path, *, resume: bool, overwrite: bool) -> None:
    """The checks of ``prepare_output_dir`` without its side effects (nothing is created or
    deleted): call it first, validate the data, then ``prepare_output_dir``, so that bad input
    neither leaves an empty run directory behind nor lets ``--overwrite`` delete the old run."""
    out = Path(output_dir)
    if resume and overwrite:
        raise UserError("--resume and --overwrite are mutually exclusive")
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a directory", str(out))
    parent = out.absolute().parent
    if not parent.is_dir():
        raise UserError(f"parent directory {parent} does not exist", str(out))
    if out.is_dir() and not resume and not overwrite and any(not p.name.startswith(".") for p in out.iterdir()):
        raise UserError(
            "output directory exists and is not empty: pass --resume to continue from its last checkpoint "
            "or --overwrite to start over",
            str(out),
        )


@contextmanager
def removed_if_left_empty(output_dir: str | Path) -> Iterator[None]:
    """A run directory this run created is removed when the run fails before writing anything
    into it (e.g. the model does not load); one with checkpoints or logs stays for --resume."""
    out = Path(output_dir)
    existed = out.exists()
    try:
        yield
    except BaseException:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def prepare_output_dir(output_dir: str | Path, *, resume: bool, overwrite: bool) -> Path | None:
    """Create or validate the run directory; return the checkpoint to resume from (or None).

    - missing directory: created (its parent must exist);
    - ``overwrite``: an existing directory is emptied;
    - ``resume``: continue from the newest complete checkpoint; incomplete checkpoints (killed
      while saving) are removed; no checkpoint yet → start from scratch (with a note);
    - otherwise an existing non-empty directory is an error (never silently mix two runs).
    Call ``check_output_dir`` first (a bad path fails fast), this one after the data has been
    validated and before loading any model.
    """
    out = Path(output_dir)
    check_output_dir(out, resume=resume, overwrite=overwrite)
    if out.exists() and overwrite:
        shutil.rmtree(out)
    if not out.exists():
        if resume:
            console.info(f"resume: {out} does not exist yet; starting a new run")
        out.mkdir()
        return None
    if not resume:
        return None
    for p in out.iterdir():
        if p.is_dir() and checkpoint_step(p) is not None and not is_complete_checkpoint(p):
            console.warn(f"removing incomplete checkpoint {p} (killed while saving)")
            shutil.rmtree(p, ignore_errors=True)
    shutil.rmtree(out / _FINAL_PARTIAL, ignore_errors=True)
    ckpt = last_checkpoint(out)
    if ckpt is None:
        console.info(f"resume: no complete checkpoint in {out}; starting from scratch")
    else:
        console.info(f"resume: continuing from {ckpt}")
    return ckpt


# --------------------------------------------------------------------------- device, precision, seed


def select_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"unknown --device {device!r} (expected auto, cpu or cuda)")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda, but no CUDA device is visible")
    return device


def select_precision(precision: str, device: str) -> str:
    """Resolve ``auto`` to ``bf16`` (GPU with bf16), ``fp16`` (older GPU) or ``fp32`` (CPU)."""
    import torch

    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise UserError(f"unknown --precision {precision!r} (expected auto, fp32, bf16 or fp16)")
    if precision == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision == "fp16" and device == "cpu":
        raise UserError("--precision fp16 needs a GPU (use bf16 or fp32 on CPU)")
    return precision


def seed_everything(seed: int) -> None:
    """Python, numpy and torch RNGs (all devices). The Trainer re-seeds with the same value."""
    from transformers import set_seed

    set_seed(seed)


def disable_hub_telemetry() -> None:
    """TRL's trainers report each run to huggingface.co from a background thread (huggingface_hub
    ``send_telemetry``) even when every path is local; a training job should not reach the network
    unasked. Off unless ``HF_HUB_DISABLE_TELEMETRY`` is set explicitly (then it is respected)."""
    if "HF_HUB_DISABLE_TELEMETRY" in os.environ:
        return
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"  # launched processes and a later import
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover
        return
    constants.HF_HUB_DISABLE_TELEMETRY = True  # read at import time: already imported here


def common_training_args(opts: TrainOptions) -> dict[str, Any]:
    """Keyword arguments for ``TrainingArguments`` / ``SFTConfig`` / ``GRPOConfig`` shared by all stages.

    Logging goes to ``metrics.jsonl`` (our callback) and TensorBoard under ``<out>/runs``;
    transformers' own tqdm/print logging is off (stdout is data). Checkpoints every
    ``save_steps`` steps keep optimizer, scheduler and RNG state so ``--resume`` is exact.
    """
    disable_hub_telemetry()
    device = select_device(opts.device)
    precision = select_precision(opts.precision, device)
    report = [r for r in opts.report_to if r and r != "none"]
    args: dict[str, Any] = {
        "output_dir": str(opts.output_dir),
        "seed": opts.seed,
        "data_seed": opts.seed,
        "per_device_train_batch_size": opts.per_device_batch_size,
        "gradient_accumulation_steps": opts.gradient_accumulation_steps,
        "logging_steps": opts.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": opts.save_steps,
        "save_total_limit": opts.save_total_limit,
        "report_to": report or "none",
        "disable_tqdm": True,
        "use_cpu": device == "cpu",
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "activation_checkpointing": opts.gradient_checkpointing,  # TRL configs default it to True
        "dataloader_num_workers": 0,
        "include_num_input_tokens_seen": "non_padding",
        "remove_unused_columns": False,
        "push_to_hub": False,
    }
    args.update(opts.extra_args)
    return args


# --------------------------------------------------------------------------- MFU


# Dense (no sparsity) peak tensor throughput in FLOP/s by precision. Sources: NVIDIA data sheets
# (H100 SXM5: 989.4 TFLOPS bf16/fp16, 67 fp32; H100 PCIe: 756 / 51; H200 as H100 SXM; A100: 312 / 19.5;
# L40S: 362 / 91.6; L4: 121 / 30.3; A10/A10G: 125 / 31.2; RTX 4090: 165.2 (fp32 accumulate) / 82.6;
# B200: 2250 / 80). ``IN2X_PEAK_TFLOPS`` overrides the table.
PEAK_FLOPS: list[tuple[str, dict[str, float]]] = [
    ("H100 PCIe", {"bf16": 756e12, "fp16": 756e12, "fp32": 51e12}),
    ("H100", {"bf16": 989.4e12, "fp16": 989.4e12, "fp32": 67e12}),
    ("H200", {"bf16": 989.4e12, "fp16": 989.4e12, "fp32": 67e12}),
    ("GH200", {"bf16": 989.4e12, "fp16": 989.4e12, "fp32": 67e12}),
    ("B200", {"bf16": 2250e12, "fp16": 2250e12, "fp32": 80e12}),
    ("A100", {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12}),
    ("L40S", {"bf16": 362e12, "fp16": 362e12, "fp32": 91.6e12}),
    ("L4", {"bf16": 121e12, "fp16": 121e12, "fp32": 30.3e12}),
    ("A10", {"bf16": 125e12, "fp16": 125e12, "fp32": 31.2e12}),
    ("RTX 4090", {"bf16": 165.2e12, "fp16": 165.2e12, "fp32": 82.6e12}),
]


def peak_flops(device_name: str, precision: str) -> float | None:
    """Peak FLOP/s of one device for a precision, or None when the device is unknown (no MFU then)."""
    env = os.environ.get("IN2X_PEAK_TFLOPS")
    if env:
        try:
            return float(env) * 1e12
        except ValueError:
            raise UserError(f"IN2X_PEAK_TFLOPS must be a number, got {env!r}") from None
    name = device_name.upper()
    for key, table in PEAK_FLOPS:
        if key.upper() in name:
            return table.get(precision, table["fp32"])
    return None


def matmul_params(model: Any) -> int:
    """Parameters that take part in matrix multiplies: all parameters minus the input embedding
    table (a lookup), plus the LM head when it is tied to that table (it is still a d×V matmul)."""
    total = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings()
    emb_n = emb.weight.numel() if emb is not None else 0
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = head is not None and emb is not None and head.weight.data_ptr() == emb.weight.data_ptr()
    return total - emb_n + (emb_n if tied else 0)


def flops_per_token(model: Any, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward) in the PaLM convention (Chowdhery et al. 2022,
    appendix B; nanoGPT's ``estimate_mfu``)::

        F = 6·N + 12·L·d·T

    N = ``matmul_params(model)``, L = layers, d = hidden size (= heads × head dim), T = the sequence
    length attended over. 6N counts the parameter matmuls (2 forward + 4 backward); 12·L·d·T the
    attention score and value products. With document-masked packing the true attention cost is
    lower (Σ lenᵢ² instead of T²), so this slightly overstates MFU for short documents, as the
    convention does everywhere; gradient checkpointing's recomputation is not counted (MFU, not HFU).
    """
    cfg = getattr(model, "config", None)
    cfg = cfg.get_text_config() if cfg is not None and hasattr(cfg, "get_text_config") else cfg
    layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
    hidden = int(getattr(cfg, "hidden_size", 0) or 0)
    heads = int(getattr(cfg, "num_attention_heads", 0) or 0)
    head_dim = int(getattr(cfg, "head_dim", 0) or 0) or (hidden // heads if heads else 0)
    attn_width = heads * head_dim if heads and head_dim else hidden
    return 6.0 * matmul_params(model) + 12.0 * layers * attn_width * seq_len


def mfu(tokens_per_second: float, flops_per_token_value: float, peak: float, world_size: int = 1) -> float:
    """Model FLOPs utilisation: ``tokens/s · F / (peak FLOP/s · devices)`` (tokens/s over all devices)."""
    return tokens_per_second * flops_per_token_value / (peak * max(1, world_size))


def detect_peak_flops(precision: str) -> tuple[str, float] | None:
    """(device name, peak FLOP/s) of the current CUDA device, or None on CPU / unknown GPUs."""
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(torch.cuda.current_device())
    peak = peak_flops(name, precision)
    return (name, peak) if peak else None


# --------------------------------------------------------------------------- callbacks


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


@dataclass
class StopRequest:
    """Set by the signal handler; read by the stop callback at the next step boundary."""

    signum: int = 0


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


# --------------------------------------------------------------------------- running


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


# --------------------------------------------------------------------------- final export


def save_final_model(
    trainer: Any,
    output_dir: str | Path,
    *,
    tokenizer: Any,
    provenance: dict[str, Any],
    max_shard_size: str = "5GB",
    save_dtype: Any = None,
    chat_template: str | None = None,
    merge_lora_base: str | Path | None = None,
) -> None:
    """Export the trained model as an HF directory: sharded safetensors (+ index), config,
    generation config, tokenizer, chat template, and ``in2x_provenance.json`` (written last).

    The state dict is gathered with ``accelerator.get_state_dict`` (full weights under FSDP2 and
    DeepSpeed ZeRO-3). Files are written to ``<out>/.final.partial`` and moved into ``<out>``, the
    provenance file last, so a killed export never looks finished. ``save_dtype`` casts floating
    weights (e.g. back to the base checkpoint's bf16). ``chat_template`` restores the inference
    template when training used a patched one. For a LoRA model, ``merge_lora_base`` merges the
    adapter into that base model (reloaded from disk, so it works under sharding too); without it
    the adapter is saved (``adapter_model.safetensors`` + ``adapter_config.json``).
    """
    import torch

    acc = trainer.accelerator
    out = Path(output_dir)
    tmp = out / _FINAL_PARTIAL
    state_dict = acc.get_state_dict(trainer.model)
    model = acc.unwrap_model(trainer.model)
    is_peft = hasattr(model, "peft_config")
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if save_dtype is not None and state_dict is not None:
            state_dict = {k: (v.to(save_dtype) if torch.is_floating_point(v) else v) for k, v in state_dict.items()}
        if is_peft and merge_lora_base is not None:
            adapter_dir = tmp / "adapter"
            model.save_pretrained(str(adapter_dir), state_dict=state_dict)
            _merge_adapter(merge_lora_base, adapter_dir, tmp, max_shard_size=max_shard_size, dtype=save_dtype)
            shutil.rmtree(adapter_dir)
        else:
            model.save_pretrained(str(tmp), state_dict=state_dict, max_shard_size=max_shard_size)
        if chat_template is not None:
            tokenizer.chat_template = chat_template
        tokenizer.save_pretrained(str(tmp))
        (tmp / "training_args.bin").unlink(missing_ok=True)
        files = sorted(tmp.iterdir(), key=lambda p: (p.name == "config.json", p.name))
        for stale in list(out.glob("model*.safetensors")) + list(out.glob("adapter_model*.safetensors")):
            stale.unlink()
        (out / "model.safetensors.index.json").unlink(missing_ok=True)
        for f in files:
            os.replace(f, out / f.name)
        tmp.rmdir()
        from in2x_cli.io.checkpoint import write_provenance

        write_provenance(out, provenance)
    acc.wait_for_everyone()


def _merge_adapter(base: str | Path, adapter_dir: Path, out: Path, *, max_shard_size: str, dtype: Any) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32, use_safetensors=True)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    if dtype is not None:
        merged = merged.to(dtype)
    merged.save_pretrained(str(out), max_shard_size=max_shard_size)


def read_metrics(output_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of ``<out>/metrics.jsonl`` (for ``in2x plot`` and tests)."""
    path = Path(output_dir) / METRICS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows
