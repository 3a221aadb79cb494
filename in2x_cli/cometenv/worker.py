"""COMET scoring worker: runs inside the separate COMET environment (``make comet-env``).

Why a separate process: unbabel-comet 2.2.7 pins transformers<5, huggingface-hub<1 and numpy<2,
which cannot share an environment with in2x's transformers 5 stack. This file therefore imports
only the standard library and ``comet``; it never imports in2x.

Protocol (one JSON object per line; the model is loaded once and serves many batches):
  start:    python worker.py --model NAME_OR_PATH [--gpus N] [--batch-size B]
  worker →  {"ready": true, "model": ..., "requires_references": bool}
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


def resolve_checkpoint(spec: str) -> str:
    """A checkpoint file, a model directory holding checkpoints/model.ckpt, or a COMET model name."""
    if os.path.isfile(spec):
        return spec
    if os.path.isdir(spec):
        ckpt = os.path.join(spec, "checkpoints", "model.ckpt")
        if os.path.isfile(ckpt):
            return ckpt
        raise FileNotFoundError(f"{spec}: no checkpoints/model.ckpt in this COMET model directory")
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise FileNotFoundError(f"{spec}: COMET checkpoint not found")
    from comet import download_model

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        return download_model(spec, local_files_only=offline)
    except Exception as exc:  # noqa: BLE001 - KeyError for unknown/offline names, network errors
        if offline:
            raise LookupError(
                f"COMET model {spec!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 "
                "forbids downloading it: pass a local checkpoint path (…/checkpoints/model.ckpt)"
            ) from None
        raise LookupError(f"cannot download COMET model {spec!r} ({type(exc).__name__}): pass a local checkpoint path") from None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--gpus", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    out = _protocol_stream()
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "comet", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from comet import load_from_checkpoint

        ckpt = resolve_checkpoint(args.model)
        model = load_from_checkpoint(ckpt, local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")
    except Exception as exc:  # noqa: BLE001 - any load failure is reported, not raised
        _emit(out, {"error": str(exc) or type(exc).__name__, "fatal": True})
        return 2
    needs_ref = bool(getattr(model, "requires_references", lambda: True)())
    _emit(out, {"ready": True, "model": args.model, "checkpoint": ckpt, "requires_references": needs_ref})
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
