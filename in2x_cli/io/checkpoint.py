"""Safetensors and Hugging Face model directories: resolve, read lazily, write sharded.

Only safetensors weights are ever read: a directory holding only pickle weights
(``pytorch_model.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``) is refused with a clear message, because
unpickling executes code. Heavy imports (torch, safetensors) happen inside functions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from in2x_cli.errors import InputError, UserError

if TYPE_CHECKING:
    import torch

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFE_INDEX = "model.safetensors.index.json"
SAFE_SINGLE = "model.safetensors"
PROVENANCE_FILE = "in2x_provenance.json"

# Files copied next to merged / converted weights so the directory loads with from_pretrained.
MODEL_SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "sentencepiece.bpe.model",
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def _looks_like_path(spec: str) -> bool:
    """Anything but ``name`` or ``org/name`` is a filesystem path."""
    return spec.startswith((".", "~")) or not _HUB_ID.match(spec)


def resolve_model(spec: str, *, what: str = "model", trust_remote_code: bool | None = None) -> Path:
    """A local model directory, or a hub id already in the local cache, as a path.

    A path that does not exist is an error at once (never a hub lookup). A hub id is looked up
    in the local cache first; with ``HF_HUB_OFFLINE=1`` a missing id is an error; otherwise it is
    downloaded (safetensors and config/tokenizer files only). ``trust_remote_code=False`` (the
    callers that run the model pass their ``--trust-remote-code``) refuses, with a clear message,
    a directory whose model or tokenizer exists only as custom code; None skips that check
    (merging reads tensors and runs no model code).
    """
    p = Path(os.path.expanduser(spec))
    if p.exists():
        if not p.is_dir():
            raise UserError(f"{what} must be a model directory, got a file", spec)
        check_safe_weights(p, what=what)
    elif _looks_like_path(spec):
        raise UserError(f"{what} directory not found", spec)
    else:
        p = _resolve_hub_id(spec, what=what)
    if trust_remote_code is False:
        custom = custom_code(p)
        if custom:
            raise UserError(
                f"{what} needs custom code from its directory ({custom}); it is not run unless you pass --trust-remote-code",
                str(p),
            )
    return p


@contextmanager
def loading_errors(path: str | Path, what: str = "model") -> Iterator[None]:
    """What transformers raises on a broken model directory — a missing config, weights or
    tokenizer file, an unreadable tokenizer or chat template — as one UserError naming the
    directory (``resolve_model`` catches corrupt files before; this catches the rest)."""
    try:
        yield
    except UserError:
        raise
    except (OSError, ValueError) as exc:
        missing = missing_model_files(path)
        if missing:  # say what a model directory needs, not the library's first line about it
            raise UserError(f"cannot load the {what}: not a complete model directory, missing {'; '.join(missing)}", str(path)) from None
        raise UserError(f"cannot load the {what}: {(str(exc).splitlines() or [type(exc).__name__])[0][:200]}", str(path)) from None
    except Exception as exc:
        if type(exc).__module__.split(".")[0] != "jinja2":
            raise
        raise UserError(f"cannot load the {what}: its chat template is invalid ({exc})", str(path)) from None


TOKENIZER_FILE_SETS = (("tokenizer.json",), ("tokenizer.model",), ("sentencepiece.bpe.model",), ("vocab.json", "merges.txt"), ("vocab.txt",))


def missing_model_files(path: str | Path) -> list[str]:
    """What a local directory lacks to be a Hugging Face model: config.json, tokenizer files,
    safetensors weights ([] for a complete directory, or a path that is not a local directory)."""
    p = Path(path)
    if not p.is_dir():
        return []
    names = {f.name for f in p.iterdir() if f.is_file()}
    missing = []
    if "config.json" not in names:
        missing.append("config.json")
    if not any(all(n in names for n in group) for group in TOKENIZER_FILE_SETS):
        missing.append("tokenizer files (tokenizer.json, or tokenizer.model, or vocab.json + merges.txt)")
    if not any(n.endswith(".safetensors") for n in names):
        missing.append("weights (*.safetensors)")
    return missing


def check_tokenizer(tokenizer: Any, path: str | Path) -> Any:
    """transformers builds an empty tokenizer (special tokens only) when a directory's tokenizer
    files are missing; refuse it rather than train or score on zero-token texts. Returns it."""
    try:
        ids = tokenizer("Hello world. こんにちは。", add_special_tokens=False)["input_ids"]
    except Exception:  # noqa: BLE001 - any failure here means the same: unusable
        ids = []
    if not ids:
        raise UserError("the tokenizer encodes text to no tokens: its files (tokenizer.json, vocab/merges or tokenizer.model) are missing or empty", str(path))
    return tokenizer


def load_tokenizer(path: str | Path, *, trust_remote_code: bool = False, what: str = "model") -> Any:
    """The tokenizer of a model directory (``resolve_model``'s result): ``AutoTokenizer`` checked by
    ``check_tokenizer``, any loading failure one UserError naming the directory (``loading_errors``)."""
    from transformers import AutoTokenizer

    with loading_errors(path, what):
        return check_tokenizer(AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code), path)


def load_causal_lm(
    path: str | Path,
    *,
    dtype: Any = "float32",
    device: str | None = None,
    trust_remote_code: bool = False,
    what: str = "model",
    **kwargs: Any,
) -> Any:
    """``AutoModelForCausalLM`` from a model directory (``resolve_model``'s result), safetensors only.

    ``dtype``: a torch dtype or its name; ``auto`` = bfloat16 on a CUDA ``device``, else float32.
    With ``device`` the model is moved there in eval mode (inference, calibration); without, it
    stays on the CPU for the Trainer to place. ``kwargs`` go to ``from_pretrained`` (``config``,
    ``attn_implementation``). A loading failure is one UserError naming the directory.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if isinstance(dtype, str):
        on_cuda = device is not None and device.startswith("cuda")
        dtype = (torch.bfloat16 if on_cuda else torch.float32) if dtype == "auto" else getattr(torch, dtype)
    with loading_errors(path, what):
        model = AutoModelForCausalLM.from_pretrained(
            str(path), dtype=dtype, trust_remote_code=trust_remote_code, use_safetensors=True, **kwargs
        )
    if device is not None:
        model = model.to(device).eval()
    return model


def custom_code(path: Path) -> str | None:
    """What in a model directory exists only as custom code (``auto_map`` for an architecture or
    tokenizer class transformers does not ship), or None."""
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    def read(name: str) -> dict[str, Any]:
        try:
            doc = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    config = read("config.json")
    if config.get("auto_map") and config.get("model_type") not in CONFIG_MAPPING_NAMES:
        return f"model_type {config.get('model_type')!r} via auto_map"
    tok = read("tokenizer_config.json")
    auto = tok.get("auto_map")
    tok_class = str(tok.get("tokenizer_class") or "")
    if auto and not (tok_class and hasattr(transformers, tok_class)):
        return f"tokenizer_class {tok_class or '?'!r} via auto_map"
    return None


def _resolve_hub_id(repo_id: str, *, what: str) -> Path:
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken", "*.py"]
    try:
        path = Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
        if (path / "config.json").exists():
            check_safe_weights(path, what=what)
            return path
    except Exception:  # noqa: BLE001 - not in the cache: fall through to the explicit checks
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise UserError(
            f"{what} {repo_id!r}: no such local directory, and not in the Hugging Face cache "
            "(HF_HUB_OFFLINE=1 forbids downloading it): pass a local model directory"
        )
    try:
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
        path = Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:  # noqa: BLE001 - network, auth, unknown repo: all user-facing
        raise UserError(f"cannot fetch {what} {repo_id!r} from the hub ({type(exc).__name__}): pass a local directory") from None
    check_safe_weights(path, what=what)
    return path


def check_safe_weights(path: Path, *, what: str = "model") -> None:
    """Refuse directories whose weights exist only in pickle formats; refuse (with the file's name)
    a ``*.json`` file (config, tokenizer, index) that is not a JSON object and a ``*.safetensors``
    file whose header is unreadable or whose tensors do not match its size (an interrupted copy or
    download), before any library gets to fail on them with a traceback. Reads the JSON files and
    the safetensors headers only."""
    files = [f.name for f in path.iterdir() if f.is_file()]
    has_safe = any(f.endswith(".safetensors") for f in files)
    pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES) and f != "training_args.bin")
    if not has_safe and pickles:
        raise UserError(
            f"refusing to load pickle weights ({', '.join(pickles[:3])}): unpickling can run arbitrary "
            "code; convert the checkpoint to safetensors first",
            str(path),
        )
    for name in sorted(f for f in files if f.endswith(".json")):  # config, tokenizer, generation config, index
        try:
            doc = json.loads((path / name).read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise InputError(f"{what} file is not valid JSON ({type(exc).__name__}: {str(exc)[:80]})", str(path / name)) from None
        if name == "config.json" and not isinstance(doc, dict):  # (others may be lists: sentence-transformers' modules.json)
            raise InputError(f"{what} config must be a JSON object", str(path / name))
    for name in sorted(f for f in files if f.endswith(".safetensors")):
        check_safetensors_file(path / name)


def check_safetensors_file(path: Path) -> None:
    """Header readable and the tensors' byte ranges ending exactly at the end of the file (reads
    only the header; safetensors refuses anything else when it loads)."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n < 2 or n > size - 8:
                raise ValueError(f"header length {n} does not fit a file of {size} bytes")
            header = json.loads(fh.read(n).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"corrupt safetensors file ({str(exc)[:100]})", str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read safetensors file ({exc.strerror or exc})", str(path)) from None
    if 8 + n + end != size:  # safetensors itself refuses a file its tensors do not cover exactly
        problem = "truncated" if 8 + n + end > size else "corrupt"
        raise InputError(f"{problem} safetensors file: header and tensors take {8 + n + end} bytes, the file has {size}", str(path))


def weight_files(path: Path) -> dict[str, Path]:
    """Map tensor name → safetensors file for a model directory (sharded or not)."""
    index = path / SAFE_INDEX
    if index.exists():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as exc:
            raise InputError(f"invalid safetensors index ({exc})", str(index)) from None
        return {name: path / fname for name, fname in weight_map.items()}
    files = sorted(path.glob("*.safetensors"))
    if not files:
        check_safe_weights(path)
        raise InputError("no *.safetensors weights in model directory", str(path))
    from safetensors import safe_open

    out: dict[str, Path] = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as fh:
                for name in fh.keys():
                    out[name] = f
        except Exception as exc:  # noqa: BLE001 - corrupt header
            raise InputError(f"unreadable safetensors file ({exc})", str(f)) from None
    return out


class CheckpointReader:
    """Lazy tensor access: headers are read once, each tensor only when asked for."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError("model directory not found", str(path))
        self._files = weight_files(self.path)
        self._handles: dict[Path, Any] = {}

    def names(self) -> list[str]:
        return list(self._files)

    def __contains__(self, name: str) -> bool:
        return name in self._files

    def _handle(self, name: str) -> Any:
        from safetensors import safe_open

        f = self._files[name]
        if f not in self._handles:
            try:
                self._handles[f] = safe_open(str(f), framework="pt")
            except Exception as exc:  # noqa: BLE001
                raise InputError(f"unreadable safetensors file ({exc})", str(f)) from None
        return self._handles[f]

    def get(self, name: str) -> torch.Tensor:
        try:
            return self._handle(name).get_tensor(name)
        except KeyError:
            raise InputError(f"tensor {name!r} listed in the index but missing", str(self._files[name])) from None

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._handle(name).get_slice(name).get_shape())

    def dtype(self, name: str) -> str:
        return str(self._handle(name).get_slice(name).get_dtype())

    def config(self) -> dict[str, Any]:
        cfg = self.path / "config.json"
        if not cfg.exists():
            return {}
        try:
            return json.loads(cfg.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"invalid JSON ({exc})", str(cfg)) from None

    def close(self) -> None:
        self._handles.clear()

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """``5GB`` / ``500MB`` / ``2GiB`` / ``1000000`` → bytes (decimal for GB, binary for GiB)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(text)
    if not m:
        raise UserError(f"invalid size {text!r} (expected e.g. 5GB, 500MB, 2GiB)")
    value = float(m.group(1))
    unit = (m.group(2) or "").upper()
    binary = "I" in unit
    power = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}[unit[:1] if unit[:1] in "KMGT" and unit else ""]
    return int(value * (1024 if binary else 1000) ** power)


class ShardedWriter:
    """Write tensors into safetensors shards of at most ``max_shard_bytes`` plus an HF index.

    Holds at most one shard in memory. Shards are named like Hugging Face's
    (``model-00001-of-00003.safetensors``); a single shard is written as ``model.safetensors``.
    """

    def __init__(self, out_dir: str | Path, *, max_shard_bytes: int = 5 * 1000**3, metadata: dict[str, str] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.max_shard_bytes = max_shard_bytes
        self.metadata = {"format": "pt", **(metadata or {})}
        self._pending: dict[str, Any] = {}
        self._pending_bytes = 0
        self._shards: list[tuple[str, list[str]]] = []  # (temp file name, tensor names)
        self.total_bytes = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        nbytes = tensor.numel() * tensor.element_size()
        if self._pending and self._pending_bytes + nbytes > self.max_shard_bytes:
            self._flush()
        self._pending[name] = tensor.contiguous()
        self._pending_bytes += nbytes
        self.total_bytes += nbytes

    def _flush(self) -> None:
        from safetensors.torch import save_file

        if not self._pending:
            return
        tmp_name = f"shard-{len(self._shards):05d}.tmp.safetensors"
        save_file(self._pending, str(self.out_dir / tmp_name), metadata=self.metadata)
        self._shards.append((tmp_name, list(self._pending)))
        self._pending = {}
        self._pending_bytes = 0

    def close(self) -> list[str]:
        """Finish: rename shards to their final names, write the index; return file names."""
        self._flush()
        n = len(self._shards)
        if n == 0:
            raise UserError("no tensors to write")
        if n == 1:
            os.replace(self.out_dir / self._shards[0][0], self.out_dir / SAFE_SINGLE)
            return [SAFE_SINGLE]
        names = []
        weight_map: dict[str, str] = {}
        for i, (tmp_name, tensors) in enumerate(self._shards, start=1):
            final = f"model-{i:05d}-of-{n:05d}.safetensors"
            os.replace(self.out_dir / tmp_name, self.out_dir / final)
            names.append(final)
            for t in tensors:
                weight_map[t] = final
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map}
        (self.out_dir / SAFE_INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        return names


# safetensors dtype names (the header's "dtype") of the torch dtypes a checkpoint may hold
_SAFE_DTYPES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2", "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
}
_SAFE_TO_TORCH = {v: k for k, v in _SAFE_DTYPES.items()}


def torch_dtype_name(safe_dtype: str) -> str:
    """``F32`` → ``float32``: the torch dtype name of a safetensors header dtype."""
    try:
        return _SAFE_TO_TORCH[safe_dtype]
    except KeyError:
        raise UserError(f"unsupported safetensors dtype {safe_dtype!r}") from None


class StreamingShardWriter:
    """``ShardedWriter``'s output, written as the tensors arrive: nothing is held in memory.

    The caller announces every tensor up front (``plan``: name, torch dtype name, shape, in the
    order they will be added), so each shard's safetensors header, and with it every tensor's byte
    offset, is known before the first tensor exists; ``add`` then appends the tensor's bytes to
    its shard file at once. Shards are cut exactly where ``ShardedWriter`` cuts them (a new shard
    when the next tensor would take the current one past ``max_shard_bytes``), named the same,
    and load the same (the header lists tensors in arrival order rather than sorted).
    """

    def __init__(
        self, out_dir: str | Path, plan: list[tuple[str, str, tuple[int, ...]]], *,
        max_shard_bytes: int = 5 * 1000**3, metadata: dict[str, str] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.metadata = {"format": "pt", **(metadata or {})}
        self._shards: list[list[tuple[str, str, tuple[int, ...], int]]] = []
        size = 0
        for name, dtype, shape in plan:
            nbytes = _numel(shape) * _ITEMSIZE[dtype]
            if not self._shards or (self._shards[-1] and size + nbytes > max_shard_bytes):
                self._shards.append([])
                size = 0
            self._shards[-1].append((name, dtype, tuple(shape), nbytes))
            size += nbytes
        self._queue = [(i, entry) for i, shard in enumerate(self._shards) for entry in shard]
        self._next = 0
        self._open_shard = -1
        self._fh: Any = None
        self.total_bytes = 0

    def _tmp_name(self, i: int) -> str:
        return f"shard-{i:05d}.tmp.safetensors"

    def _start_shard(self, i: int) -> None:
        if self._fh is not None:
            self._fh.close()
        header: dict[str, Any] = {"__metadata__": self.metadata}
        offset = 0
        for name, dtype, shape, nbytes in self._shards[i]:
            header[name] = {"dtype": _SAFE_DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as safetensors writes it
        self._fh = open(self.out_dir / self._tmp_name(i), "wb")  # noqa: SIM115 - closed in _start_shard / close
        self._fh.write(len(raw).to_bytes(8, "little") + raw)
        self._open_shard = i

    def add(self, name: str, tensor: torch.Tensor) -> None:
        if self._next >= len(self._queue):
            raise RuntimeError(f"tensor {name!r} was not in the writer's plan")
        shard, (want, dtype, shape, nbytes) = self._queue[self._next]
        got = str(tensor.dtype).removeprefix("torch.")
        if name != want or got != dtype or tuple(tensor.shape) != shape:
            raise RuntimeError(f"tensor {name!r} {got} {list(tensor.shape)} arrived where the plan has {want!r} {dtype} {list(shape)}")
        if shard != self._open_shard:
            self._start_shard(shard)
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        self._fh.write(memoryview(flat.view(torch_module().uint8).numpy()) if flat.numel() else b"")
        self._next += 1
        self.total_bytes += nbytes

    def close(self) -> list[str]:
        """Finish: check every planned tensor came, rename shards, write the index; return file names."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._next != len(self._queue):
            raise RuntimeError(f"{len(self._queue) - self._next} planned tensors were never written")
        n = len(self._shards)
        if n == 0:
            raise UserError("no tensors to write")
        if n == 1:
            os.replace(self.out_dir / self._tmp_name(0), self.out_dir / SAFE_SINGLE)
            return [SAFE_SINGLE]
        names, weight_map = [], {}
        for i, shard in enumerate(self._shards):
            final = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
            os.replace(self.out_dir / self._tmp_name(i), self.out_dir / final)
            names.append(final)
            weight_map.update({name: final for name, *_ in shard})
        index = {"metadata": {"total_size": self.total_bytes}, "weight_map": weight_map}
        (self.out_dir / SAFE_INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        return names


_ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1,
             "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1}


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def torch_module() -> Any:
    import torch

    return torch


def copy_model_files(src: str | Path, dst: str | Path, names: tuple[str, ...] = MODEL_SIDE_FILES) -> list[str]:
    """Copy config/tokenizer/chat-template files (not weights) from one model dir to another."""
    copied = []
    for name in names:
        f = Path(src) / name
        if f.is_file():
            shutil.copy2(f, Path(dst) / name)
            copied.append(name)
    return copied


@contextmanager
def atomic_output_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name and move it into place only on success."""
    final = Path(path)
    if final.exists() and not overwrite:
        raise UserError("output directory already exists (pass --overwrite to replace it)", str(final))
    parent = final.absolute().parent
    if not parent.is_dir():
        raise UserError(f"parent directory {parent} does not exist", str(final))
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def write_provenance(model_dir: str | Path, provenance: dict[str, Any]) -> None:
    """Provenance of a checkpoint lives inside it as ``in2x_provenance.json``."""
    (Path(model_dir) / PROVENANCE_FILE).write_text(
        json.dumps(provenance, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def read_provenance(model_dir: str | Path) -> dict[str, Any] | None:
    f = Path(model_dir) / PROVENANCE_FILE
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
