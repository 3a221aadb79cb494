"""The one place that picks a torch device, for every stage (training, generation backends, merge
statistics, embedders, the COMET worker).

Under ``torchrun`` / ``accelerate launch`` each process reads ``LOCAL_RANK``: ``auto`` and ``cuda``
mean *this rank's* GPU (``cuda:<LOCAL_RANK>``), so eight ranks load their judges and scorers on eight
GPUs, not all on cuda:0. A GPU the driver lists but torch cannot use (a driver older than torch's
CUDA build, a CPU-only torch) is an error rather than a silent CPU run.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from in2x_cli.errors import UserError


def local_rank() -> int:
    """This process's rank on its node (``LOCAL_RANK``, set by torchrun / accelerate); 0 alone."""
    try:
        return max(0, int(os.environ.get("LOCAL_RANK", "0") or 0))
    except ValueError:
        return 0


def _cuda_hidden() -> bool:
    """``CUDA_VISIBLE_DEVICES`` set to nothing (or -1): the user asked for no GPU."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return value is not None and value.strip() in ("", "-1")


@functools.lru_cache(maxsize=1)
def driver_gpu_count() -> int:
    """GPUs ``nvidia-smi -L`` lists (0 without the tool or when it fails)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    if out.returncode != 0:
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, failing loudly when the driver sees GPUs but torch does not."""
    import torch

    if torch.cuda.is_available():
        return True
    if not _cuda_hidden():
        n = driver_gpu_count()
        if n:
            raise UserError(
                f"nvidia-smi lists {n} GPU(s) but torch {torch.__version__} cannot use them "
                f"(torch.cuda.is_available() is False; torch built for CUDA {torch.version.cuda or 'none: a CPU build'}). "
                "Update the NVIDIA driver or install a torch build for it (constraints/gpu.txt); "
                "to run on CPU on purpose pass --device cpu or set CUDA_VISIBLE_DEVICES="
            )
    return False


def device_kind(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is usable, else ``cpu``; ``cuda[:N]`` without a GPU → error."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device.startswith("cuda") and not cuda_available():
        raise UserError(f"--device {device}, but no CUDA device is visible")
    return "cuda" if device.startswith("cuda") else device


def pick_device(device: str = "auto") -> str:
    """The concrete device for this process: ``cpu``, ``mps``, or ``cuda:<i>`` where ``i`` is
    ``LOCAL_RANK`` for ``auto``/``cuda`` (an explicit ``cuda:N`` is kept). When a launcher gave
    each rank exactly one visible GPU, that GPU is ``cuda:0``."""
    kind = device_kind(device)
    if kind != "cuda":
        return device if device not in ("auto", "cuda") else kind
    if ":" in device:
        return device
    import torch

    count = torch.cuda.device_count()
    rank = local_rank()
    if count == 1:
        return "cuda:0"
    if rank >= count:
        raise UserError(f"LOCAL_RANK={rank} but only {count} GPU(s) are visible to this process")
    return f"cuda:{rank}"


def visible_devices_for_child() -> dict[str, str]:
    """Environment for a worker process (e.g. COMET) that should use this rank's GPU as its only
    one: ``CUDA_VISIBLE_DEVICES`` narrowed to the entry at ``LOCAL_RANK``. Empty when single-process."""
    if "LOCAL_RANK" not in os.environ or _cuda_hidden():
        return {}
    rank = local_rank()
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible:
        return {"CUDA_VISIBLE_DEVICES": visible[rank] if rank < len(visible) else visible[rank % len(visible)]}
    return {"CUDA_VISIBLE_DEVICES": str(rank)}
