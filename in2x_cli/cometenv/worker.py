"""COMET scoring worker: runs inside the separate COMET environment (``make comet-env``).

Why a separate process: unbabel-comet 2.2.7 pins transformers<5, huggingface-hub<1 and numpy<2,
which cannot share an environment with in2x's transformers 5 stack. This file therefore imports
only the standard library and the COMET environment's packages; it never imports in2x.

Loading, step by step: a model *name* is resolved with huggingface_hub (an unreachable hub is
said so at once); a checkpoint given as a *path* runs hub-offline (HF_HUB_OFFLINE=1), so the
encoder it names by hub id must be a local directory or in the local cache, checked before COMET
starts; ``hparams.yaml`` must pass ``yaml.safe_load`` and the ``.ckpt``
``torch.load(weights_only=True)``, and Lightning gets ``weights_only=True`` too: a planted pickle is refused, never run.

Protocol (one JSON object per line; the model is loaded once and serves many batches):
  start:    python worker.py --model NAME_OR_PATH [--gpus N] [--batch-size B] [--matmul-precision highest|high|medium] [--half]
  worker →  {"ready": true, "model": ..., "requires_references": bool, "comet_version": "2.2.7",
             "matmul_precision": "highest", "dtype": "float32"}
            or {"error": "...", "fatal": true} and exit status 2
  client →  {"id": 7, "data": [{"src": ..., "mt": ..., "ref": ...}, ...]}
  worker →  {"id": 7, "scores": [...], "system_score": float}   or {"id": 7, "error": "..."}
  client closes stdin → worker exits 0.
The protocol stream is a private copy of the original stdout; file descriptor 1 is pointed at
stderr so that library prints (Lightning banners) cannot corrupt it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings


def _protocol_stream():
    proto_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed by libraries now goes to stderr
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", encoding="utf-8", buffering=1)


def _emit(stream, obj) -> None:
    stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
    stream.flush()


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")


def _hub_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _network_failure(exc: BaseException) -> bool:
    """The exception (or one it was raised from) says the hub could not be reached at all:
    name resolution, refused or timed-out connection, an unreachable proxy."""
    import socket

    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError, socket.gaierror)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def resolve_checkpoint(spec: str, offline: bool) -> str:
    """A checkpoint file, a model directory holding checkpoints/model.ckpt, or a COMET model name.

    A name is looked up with huggingface_hub itself (not comet.download_model, which imports
    torch and Lightning and then tries the legacy S3 mirror before it says anything, as a KeyError),
    so an unreachable hub is reported as such within a second."""
    if os.path.isfile(spec):
        return spec
    if os.path.isdir(spec):
        ckpt = os.path.join(spec, "checkpoints", "model.ckpt")
        if os.path.isfile(ckpt):
            return ckpt
        raise FileNotFoundError(f"{spec}: no checkpoints/model.ckpt in this COMET model directory")
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise FileNotFoundError(f"{spec}: COMET checkpoint not found")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    local = "pass a local checkpoint instead (…/checkpoints/model.ckpt or the directory holding checkpoints/)"
    try:
        return os.path.join(snapshot_download(repo_id=spec, local_files_only=offline), "checkpoints", "model.ckpt")
    except Exception as exc:  # noqa: BLE001 - classified below
        if offline:
            raise LookupError(
                f"COMET model {spec!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 forbids downloading it: {local}"
            ) from None
        if isinstance(exc, LocalEntryNotFoundError) or _network_failure(exc):
            raise LookupError(
                f"the Hugging Face hub is unreachable (offline or no network) and COMET model {spec!r} is not in the local cache "
                f"({_hub_cache()}): {local}, or download it once where the hub is reachable"
            ) from None
        # the hub answered: not a hub repository, maybe one of COMET's legacy (pre-hub) names
    from comet.models.download_utils import download_model_legacy

    try:
        return download_model_legacy(spec)
    except Exception:  # noqa: BLE001
        raise LookupError(f"{spec!r} is neither a COMET model on the Hugging Face hub nor a legacy COMET model name: {local}") from None


class Refused(Exception):
    """A checkpoint we will not hand to COMET (unsafe or incomplete); the message is one line."""


def _why_unpickling_failed(exc: Exception) -> str:
    import re

    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it pickles a call to {found.group(1)}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return first[:160]


def check_checkpoint(ckpt: str) -> tuple[dict, dict]:
    """Validate a checkpoint before COMET sees it; returns the parsed hparams.yaml and the
    checkpoint's ``hyper_parameters`` (what Lightning builds the model from).

    comet.load_from_checkpoint reads ``hparams.yaml`` with ``yaml.FullLoader`` and the ``.ckpt``
    pickle through Lightning with torch's default ``weights_only``. Here: the YAML must parse with
    ``yaml.safe_load`` and the checkpoint with ``torch.load(weights_only=True)`` (memory-mapped, so
    a multi-GB checkpoint is not read twice), else ``Refused`` — before any of it can run code."""
    import pathlib

    import torch
    import yaml

    path = pathlib.Path(ckpt)
    hparams_file = path.parents[1] / "hparams.yaml"  # where COMET looks: …/checkpoints/model.ckpt → …/hparams.yaml
    if not hparams_file.is_file():
        raise Refused(f"COMET checkpoint {ckpt}: no hparams.yaml in {hparams_file.parent} (COMET needs it to pick the model class)")
    try:
        hparams = yaml.safe_load(hparams_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise Refused(f"refusing COMET hparams {hparams_file}: not plain YAML (safe_load: {reason})") from None
    if not isinstance(hparams, dict) or not isinstance(hparams.get("class_identifier"), str):
        raise Refused(f"COMET hparams {hparams_file}: expected a mapping with 'class_identifier'")
    try:
        try:
            content = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # old (non-zip) serialisation cannot be memory-mapped: read it
                raise
            content = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError for payloads; anything else is unreadable too
        raise Refused(f"refusing to load COMET checkpoint {ckpt}: not a weights-only torch checkpoint ({_why_unpickling_failed(exc)})") from None
    hyper = content.get("hyper_parameters") if isinstance(content, dict) else None
    del content
    return hparams, hyper if isinstance(hyper, dict) else {}


def check_encoder(ckpt: str, hyper: dict, offline: bool) -> None:
    """Offline, the encoder COMET builds from ``hyper_parameters.pretrained_model`` (a hub id such
    as xlm-roberta-large in every published checkpoint) must be a local directory or be in the
    local Hugging Face cache; say which, at once, instead of failing deep inside transformers."""
    if not offline:
        return
    encoder = hyper.get("pretrained_model")
    if not isinstance(encoder, str) or os.path.isdir(encoder):
        return
    cached = None
    if not encoder.startswith((".", "/", "~")):
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(encoder, "config.json")
        except Exception:  # noqa: BLE001 - not a valid repo id: not cached either
            cached = None
    if not isinstance(cached, str):
        raise Refused(
            f"COMET checkpoint {ckpt} needs its encoder {encoder!r} (hyper_parameters.pretrained_model), which is not in the local "
            f"Hugging Face cache ({_hub_cache()}); a checkpoint given as a path is loaded without the hub (HF_HUB_OFFLINE=1): "
            f"download {encoder!r} once into that cache (huggingface-cli download {encoder}) and retry"
        )


def load_model(ckpt: str, hparams: dict, offline: bool):
    """comet.load_from_checkpoint, step by step, with the hparams already read safely and
    ``weights_only=True`` passed to Lightning explicitly."""
    import torch
    from comet.models import str2model

    model_class = str2model.get(hparams["class_identifier"])
    if model_class is None:
        raise Refused(f"COMET checkpoint {ckpt}: unknown class_identifier {hparams['class_identifier']!r} (known: {', '.join(str2model)})")
    kwargs = {"load_pretrained_weights": False, "local_files_only": offline}
    if hparams.get("layer_transformation") == "sparsemax_patch":
        kwargs["layer_transformation"] = "softmax"  # comet>=2.2.4's own workaround (COMET issue #244)
    return model_class.load_from_checkpoint(ckpt, map_location=torch.device("cpu"), strict=False, weights_only=True, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--gpus", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    # torch's float32 matmul precision: "highest" (torch's default, full float32) here; the
    # comet-score command sets "high" at import (TF32 / bf16 passes where the hardware has them),
    # which moves scores by up to ~3e-4. "high" reproduces comet-score's numbers.
    parser.add_argument("--matmul-precision", choices=("highest", "high", "medium"), default="highest")
    # comet-score (unbabel-comet 2.2.7) also calls model.half(): float16 weights. That, not the matmul
    # precision, is what moves its CPU scores (measured: docs/eval.md). --half does the same.
    parser.add_argument("--half", action="store_true")
    args = parser.parse_args()
    out = _protocol_stream()
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "comet", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if os.path.exists(args.model):
        # a checkpoint given as a path never waits on a hub: its encoder (named by hub id in the
        # checkpoint) must then come from the local cache. Set before huggingface_hub is imported.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
    offline = _flag("HF_HUB_OFFLINE")
    try:
        import torch

        torch.set_float32_matmul_precision(args.matmul_precision)
        ckpt = resolve_checkpoint(args.model, offline)
        hparams, hyper = check_checkpoint(ckpt)
        check_encoder(ckpt, hyper, offline)
        model = load_model(ckpt, hparams, offline)
        if args.half:
            model.eval()
            model.half()
    except Exception as exc:  # noqa: BLE001 - any load failure is reported, not raised
        message = " ".join((str(exc) or type(exc).__name__).split())  # one line
        if not isinstance(exc, (Refused, LookupError, FileNotFoundError)):
            message = f"loading COMET checkpoint {args.model} failed: {type(exc).__name__}: {message[:300]}"
        _emit(out, {"error": message, "fatal": True})
        return 2
    needs_ref = bool(getattr(model, "requires_references", lambda: True)())
    from importlib.metadata import PackageNotFoundError, version

    try:
        comet_version = version("unbabel-comet")
    except PackageNotFoundError:
        comet_version = "unknown"
    _emit(out, {"ready": True, "model": args.model, "checkpoint": ckpt, "requires_references": needs_ref,
                "comet_version": comet_version, "matmul_precision": torch.get_float32_matmul_precision(),
                "dtype": "float16" if args.half else "float32"})
    for raw in sys.stdin:
        if not raw.strip():
            continue
        req_id = None
        try:
            req = json.loads(raw)
            req_id = req.get("id")
            data = req["data"]
            if not data:
                _emit(out, {"id": req_id, "scores": [], "system_score": None})
                continue
            pred = model.predict(data, batch_size=args.batch_size, gpus=args.gpus, progress_bar=False)
            scores = [float(s) for s in pred.scores]
            _emit(out, {"id": req_id, "scores": scores, "system_score": float(pred.system_score)})
        except Exception as exc:  # noqa: BLE001 - one bad batch must not kill the worker
            _emit(out, {"id": req_id, "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
