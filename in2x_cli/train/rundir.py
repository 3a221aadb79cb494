"""The run directory of a training command: create, check, resume from, and read back.

Layout (one directory per run)::

    <out>/
      checkpoint-<step>/        Trainer checkpoints (model.safetensors, optimizer.pt, scheduler.pt,
                                rng_state.pth, trainer_state.json); ``--resume`` continues from the
                                newest complete one
      metrics.jsonl             one JSON object per logging step (see ``callbacks.MetricsCallback``)
      runs/                     TensorBoard event files (``report_to=tensorboard``)
      config.json, model*.safetensors (+ index), tokenizer files, chat_template.jinja
                                the final model, written by ``export.save_final_model`` when training ends
      in2x_provenance.json      written last: its presence marks a finished run
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from in2x_cli import console
from in2x_cli.errors import UserError

T = TypeVar("T")

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
METRICS_FILE = "metrics.jsonl"
FINAL_MARKER = "in2x_provenance.json"
FINAL_PARTIAL = ".final.partial"  # the final export is written here, then moved into <out>


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

    In a distributed run (``WORLD_SIZE`` > 1) only the main process (global rank 0) touches the
    directory; the others wait at a barrier and receive its answer, or its error (so ``--overwrite``
    deletes once, and no rank races another's ``mkdir``). The process group is created here (gloo
    on CPU, nccl on GPU) when the Trainer's distributed state does not exist yet.

    - missing directory: created (its parent must exist);
    - ``overwrite``: an existing directory is emptied;
    - ``resume``: continue from the newest complete checkpoint; incomplete checkpoints (killed
      while saving) are removed; no checkpoint yet → start from scratch (with a note);
    - otherwise an existing non-empty directory is an error (never silently mix two runs).
    Call ``check_output_dir`` first (a bad path fails fast), this one after the data has been
    validated and before loading any model.
    """
    return on_main_process(lambda: _prepare_output_dir(output_dir, resume=resume, overwrite=overwrite))


def on_main_process(fn: Callable[[], T]) -> T:
    """Run ``fn`` once, on the main process (global rank 0), and hand its result — or its
    UserError — to every rank. The others wait at the broadcast, which is also the barrier; the
    result must pickle. Without a process group (one process) ``fn`` simply runs."""
    dist = _process_group()
    if dist is None:
        return fn()
    answer: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            answer = [("ok", fn())]
        except UserError as exc:
            answer = [("error", (exc.message, exc.where))]
            raise
        except BaseException:
            answer = [("error", ("the main process failed (its log has the reason)", None))]
            raise
        finally:
            dist.broadcast_object_list(answer, src=0)  # also the barrier the other ranks wait at
    else:
        dist.broadcast_object_list(answer, src=0)
    kind, value = answer[0]
    if kind == "error":
        raise UserError(value[0], value[1])
    return value


def _process_group() -> Any:
    """``torch.distributed`` with an initialised process group in a multi-process run, else None."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        return None
    if not dist.is_initialized():
        if torch.cuda.is_available():
            from in2x_cli.devices import pick_device

            torch.cuda.set_device(pick_device("cuda"))
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist


def _prepare_output_dir(output_dir: str | Path, *, resume: bool, overwrite: bool) -> Path | None:
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
    shutil.rmtree(out / FINAL_PARTIAL, ignore_errors=True)
    ckpt = last_checkpoint(out)
    if ckpt is None:
        console.info(f"resume: no complete checkpoint in {out}; starting from scratch")
    else:
        console.info(f"resume: continuing from {ckpt}")
    return ckpt



def read_metrics(output_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of ``<out>/metrics.jsonl`` with a ``step`` (none when the run wrote none yet); the one
    reader is ``io.documents.read_train_metrics``, which ``in2x plot`` uses too."""
    from in2x_cli.io.documents import read_train_metrics

    path = Path(output_dir) / METRICS_FILE
    return read_train_metrics(path) if path.exists() else []
