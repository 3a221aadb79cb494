"""What made an artefact: tool version, command line, resolved config, seed, input checksums.

A JSONL output gets a sidecar ``<output>.meta.json``; a checkpoint directory gets
``in2x_provenance.json`` inside it. Both hold the dict built by ``collect``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import os
import platform
import sys
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from in2x_cli import __version__
from in2x_cli.io.jsonl import STDIN_DIGEST, file_sha256

# Files above this size are digested by head+tail+size (``sha256-sampled``), not in full:
# provenance must not cost minutes on a 100 GB checkpoint.
FULL_DIGEST_LIMIT = 1 << 30
_SAMPLE = 16 << 20

_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "vllm", "sacrebleu", "faiss", "sklearn", "datasets")


def jsonable(obj: Any) -> Any:
    """Configs to plain JSON: dataclasses, paths, enums, tuples, sets."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def _sampled_digest(path: Path) -> str:
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(_SAMPLE))
        fh.seek(max(0, size - _SAMPLE))
        h.update(fh.read(_SAMPLE))
    return h.hexdigest()


def digest_path(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Checksum record for one input: a file, a directory (per file), or stdin."""
    p = str(path)
    if p == "-":
        return {"path": "-", "sha256": STDIN_DIGEST.get("-")}
    fp = Path(p)
    if fp.is_file():
        size = fp.stat().st_size
        if size > FULL_DIGEST_LIMIT:
            return {"path": p, "bytes": size, "sha256-sampled": _sampled_digest(fp)}
        return {"path": p, "bytes": size, "sha256": file_sha256(fp)}
    if fp.is_dir():
        files = {}
        for f in sorted(x for x in fp.rglob("*") if x.is_file() and not x.name.startswith(".")):
            rel = str(f.relative_to(fp))
            if rel.startswith(("checkpoint-", "runs/")):
                continue
            size = f.stat().st_size
            files[rel] = _sampled_digest(f) if size > FULL_DIGEST_LIMIT else file_sha256(f)
        combined = hashlib.sha256("".join(f"{k}\0{v}\n" for k, v in files.items()).encode()).hexdigest()
        return {"path": p, "sha256": combined, "files": len(files)}
    return {"path": p, "missing": True}


def package_versions() -> dict[str, str]:
    """Versions of the heavy packages this process actually imported (cheap: no new imports)."""
    from importlib import metadata

    out = {}
    for name in _PACKAGES:
        if name in sys.modules:
            dist = {"faiss": "faiss-cpu", "sklearn": "scikit-learn"}.get(name, name)
            try:
                out[name] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                out[name] = getattr(sys.modules[name], "__version__", "unknown")
    return out


def digest_in_background(inputs: Iterable[str | os.PathLike[str]]) -> Callable[[], list[dict[str, Any]]]:
    """Start digesting files and directories (not stdin) on a thread while the stage works; the
    returned function waits for and returns the digests. hashlib releases the GIL on large
    blocks, so on a multi-core machine the checksums of a merge's inputs cost no wall time."""
    import threading

    paths = list(inputs)
    if any(str(p) == "-" for p in paths):
        raise ValueError("stdin is digested as it is read, not in the background")
    out: list[Any] = []

    def work() -> None:
        try:
            out.append([digest_path(p) for p in paths])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            out.append(exc)

    # a daemon thread: a stage that fails does not wait for checksums nobody will write
    thread = threading.Thread(target=work, name="in2x-digest", daemon=True)
    thread.start()

    def result() -> list[dict[str, Any]]:
        thread.join()
        if isinstance(out[0], BaseException):
            raise out[0]
        return out[0]

    return result


def collect(
    *,
    command: str,
    config: Any = None,
    inputs: Iterable[str | os.PathLike[str]] = (),
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
    input_digests: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The provenance record. Call it when the output is complete (stdin digests are known).
    ``input_digests``: ``digest_path`` of each input, when already computed (``digest_in_background``)."""
    record: dict[str, Any] = {
        "tool": "in2x",
        "version": __version__,
        "command": command,
        "argv": list(sys.argv),
        "config": jsonable(config),
        "seed": seed,
        "inputs": input_digests if input_digests is not None else [digest_path(p) for p in inputs],
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
    }
    if extra:
        record.update(jsonable(dict(extra)))
    return record
