"""The streaming merge: one tensor name at a time, bounded memory, sharded safetensors out.

For every tensor name the executor maps that tensor from each input (``safe_open`` via
``CheckpointReader``: memory-mapped, paged in as read), hands them to the method's pure
function, which works through them in row chunks (core/sparsify.py) and returns the output
tensor, passes that to ``ShardedWriter``, then drops everything — file handles included, since
pages of a mapped file stay resident while it is open. Peak memory is therefore about one tensor
per input (mapped pages) + the output tensor + a few chunks, whatever the model size (shards are
written as the tensors come: ``StreamingShardWriter`` knows every header from the inputs'), so models larger than RAM merge fine. Fisher /
activation statistics are streamed the same way.

Before any tensor is read the inputs are checked against the reference model (the one whose
config/tokenizer the output gets): same architecture and model type, same vocabulary size, same
tensor names, same shapes. Any mismatch is a one-line error (exit 2) naming the model and the
tensor. With ``resize_vocab`` a vocabulary-axis (first dimension) mismatch is accepted instead:
every input is cut or padded to the reference's row count, the missing rows being copied from
the reference, so tokens a model lacks get the reference's embedding. This assumes shared token
ids for the common rows (tokens appended at the end), as mergekit's --unsafe-truncate-embeddings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from in2x_cli.core.merge import TensorJob, tensor_seed
from in2x_cli.errors import UserError
from in2x_cli.io.checkpoint import (
    CheckpointReader,
    StreamingShardWriter,
    copy_model_files,
    resolve_model,
    torch_dtype_name,
)
from in2x_cli.merge.config import MergeConfig, resolve_parameters
from in2x_cli.merge.stats import read_stats_meta

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class MergeSummary:
    tensors: int
    merged: int
    copied: int
    bytes: int
    files: tuple[str, ...]
    seconds: float
    copied_files: tuple[str, ...]


def text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The language-model part of a config (top level, or ``text_config`` for multimodal ones)."""
    inner = cfg.get("text_config")
    return inner if isinstance(inner, dict) and "vocab_size" not in cfg else cfg


class Inputs:
    """Open readers for base + models (+ statistics) and the reference model, validated."""

    def __init__(self, config: MergeConfig, stats_dirs: list[str | None]) -> None:
        self.config = config
        self.model_paths = [str(resolve_model(m.path, what="model")) for m in config.models]
        self.base_path = str(resolve_model(config.base_model, what="base model")) if config.base_model else None
        self.models = [CheckpointReader(p) for p in self.model_paths]
        self.base = CheckpointReader(self.base_path) if self.base_path else None
        src = config.copy_source()
        readers = ([self.base] if self.base else []) + self.models
        src_path = resolve_model(src, what="tokenizer_source").resolve()
        matching = [r for r in readers if r.path.resolve() == src_path]
        if not matching:
            raise UserError("tokenizer_source must be the base model or one of the merged models", src)
        self.reference = matching[0]
        self.stats = [CheckpointReader(str(resolve_model(d, what="statistics"))) if d else None for d in stats_dirs]
        ref_cfg = text_config(self.reference.config())
        self.num_layers = ref_cfg.get("num_hidden_layers")
        self.names = self.reference.names()
        self._check()
        self.release()

    def all_readers(self) -> list[CheckpointReader]:
        return ([self.base] if self.base else []) + self.models

    def _check(self) -> None:
        ref = self.reference
        ref_cfg = ref.config()
        ref_text = text_config(ref_cfg)
        ref_names = set(self.names)
        for r in self.all_readers():
            if r is ref:
                continue
            cfg = r.config()
            where = str(r.path)
            for key in ("architectures", "model_type"):
                a, b = ref_cfg.get(key), cfg.get(key)
                if a is not None and b is not None and a != b:
                    raise UserError(f"{key} differ: {b} here, {a} in {ref.path}; models of different architectures cannot be merged", where)
            va, vb = ref_text.get("vocab_size"), text_config(cfg).get("vocab_size")
            if va is not None and vb is not None and va != vb and not self.config.resize_vocab:
                raise UserError(
                    f"vocabulary size {vb} here, {va} in {ref.path}: pass --resize-vocab (YAML resize_vocab: true) to cut or "
                    "pad the embeddings to the reference's vocabulary",
                    where,
                )
            names = set(r.names())
            missing, extra = sorted(ref_names - names), sorted(names - ref_names)
            if missing or extra:
                what = f"lacks tensor {missing[0]!r}" if missing else f"has tensor {extra[0]!r}"
                more = len(missing) + len(extra) - 1
                raise UserError(
                    f"{what}{f' (and {more} more differences)' if more else ''} that {ref.path} "
                    f"{'has' if missing else 'lacks'}: the models do not share an architecture",
                    where,
                )
            for name in self.names:
                a, b = ref.shape(name), r.shape(name)
                if a != b and not (self.config.resize_vocab and self._vocab_axis_only(a, b)):
                    raise UserError(f"tensor {name!r} has shape {list(b)} here, {list(a)} in {ref.path}", where)
        for st in self.stats:
            if st is None:
                continue
            kind = (read_stats_meta(st.path) or {}).get("in2x_stats")
            if kind is not None and kind != self.config.spec.stats:
                raise UserError(f"these are {kind} statistics; {self.config.method} needs {self.config.spec.stats}", str(st.path))
            if self.config.spec.stats == "fisher":
                missing = [n for n in self.names if n not in st and self.reference.dtype(n).startswith(("F", "BF"))]
                if missing:
                    raise UserError(f"Fisher statistics lack tensor {missing[0]!r} (computed for another model?)", str(st.path))

    @staticmethod
    def _vocab_axis_only(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        return len(a) == len(b) and len(a) >= 1 and a[1:] == b[1:] and a[0] != b[0]

    def release(self) -> None:
        """Drop every open file handle (and with it the mapped pages); readers reopen lazily."""
        for r in self.all_readers() + [s for s in self.stats if s is not None]:
            r.close()


@dataclass
class _Fetched:
    """The inputs of one tensor name, read ahead by the reader thread."""

    name: str
    ref: torch.Tensor
    tensors: list[torch.Tensor]
    base: torch.Tensor | None
    stats: list[torch.Tensor | None] = field(default_factory=list)
    copy: torch.Tensor | None = None  # a non-float tensor, copied rather than merged


def _set_bytes(inputs: Inputs, name: str) -> int:
    """Bytes of one tensor name across the readers (headers only: nothing is read)."""
    return _numel(inputs.reference.shape(name)) * 4 * (len(inputs.all_readers()) + sum(s is not None for s in inputs.stats))


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _return_freed_memory() -> None:
    """Give freed heap memory back to the OS (glibc keeps large freed blocks otherwise, so RSS
    would creep up to the sum of past working sets instead of the largest one)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def _torch_dtype(name: str | None) -> torch.dtype | None:
    import torch

    return None if name is None else getattr(torch, name)


def _conform_rows(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Cut or pad the first axis of ``t`` to ``ref``'s length (padding rows come from ``ref``)."""
    import torch

    n = ref.shape[0]
    if t.shape[0] == n:
        return t
    if t.shape[0] > n:
        return t[:n]
    return torch.cat([t, ref[t.shape[0]:].to(t.dtype)], dim=0)


def _output_plan(inputs: Inputs, output_dtype: str | None) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, dtype, shape) of every output tensor, in merge order, read from the headers alone:
    float tensors get ``output_dtype`` (default: the reference's dtype) and the reference's shape;
    integer buffers are copied from the base (or the reference)."""
    plan = []
    for name in inputs.names:
        ref_dtype = torch_dtype_name(inputs.reference.dtype(name))
        if ref_dtype.startswith(("float", "bfloat")):
            plan.append((name, output_dtype or ref_dtype, inputs.reference.shape(name)))
        else:
            src = inputs.base if inputs.base is not None else inputs.reference
            plan.append((name, torch_dtype_name(src.dtype(name)), src.shape(name)))
    inputs.release()
    return plan


def merge_checkpoints(
    config: MergeConfig,
    out_dir: Path,
    *,
    stats_dirs: list[str | None] | None = None,
    shard_bytes: int = 2 * 1000**3,
    device: str = "cpu",
    on_tensor: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> MergeSummary:
    """Merge into ``out_dir`` (an existing, empty directory): shards + index + side files."""
    import torch

    t0 = time.perf_counter()
    inputs = Inputs(config, stats_dirs or [None] * len(config.models))
    spec = config.spec
    in_dtype = _torch_dtype(config.dtype)
    out_dtype = _torch_dtype(config.output_dtype)
    writer = StreamingShardWriter(out_dir, _output_plan(inputs, config.output_dtype), max_shard_bytes=shard_bytes)
    merged = copied = 0
    if on_start:
        on_start(len(inputs.names))
    set_bytes = {n: _set_bytes(inputs, n) for n in inputs.names}  # headers only, before the reader starts
    inputs.release()
    max_set = max(set_bytes.values(), default=0)

    def fetch(name: str) -> _Fetched:
        """Every input of one tensor name, read (then the file handles dropped) in one thread."""
        ref_t = inputs.reference.get(name)
        if not ref_t.is_floating_point():
            # integer buffers (rare in checkpoints) are not merged: the base's / reference's copy
            src = inputs.base.get(name) if inputs.base is not None else ref_t
            inputs.release()
            return _Fetched(name, ref_t, [], None, [], copy=src)

        def load(reader: CheckpointReader) -> torch.Tensor:
            t = reader.get(name)
            if config.resize_vocab and t.shape != ref_t.shape:
                t = _conform_rows(t, ref_t)
            if in_dtype is not None:
                t = t.to(in_dtype)
            return t.to(device)

        tensors = [load(r) for r in inputs.models]
        base = load(inputs.base) if inputs.base is not None and spec.base == "required" else None
        stats: list[torch.Tensor | None] = []
        for st in inputs.stats:
            if st is None or name not in st:
                stats.append(None)
                continue
            s = st.get(name)
            if spec.stats == "fisher" and config.resize_vocab and s.shape != ref_t.shape:
                s = _conform_rows(s, torch.zeros_like(ref_t, dtype=s.dtype))
            stats.append(s.to(device))
        # safetensors maps whole files: pages read stay resident while a handle is open, so drop
        # the handles after every tensor (reopening only re-reads the header); memory then holds
        # just the tensors still alive, not every page read so far.
        inputs.release()
        return _Fetched(name, ref_t, tensors, base, stats)

    # Reading overlaps merging: one reader thread fetches the next tensor's inputs while this
    # thread merges the current one, when both sets together are no larger than the largest
    # single set (so peak memory stays that of the largest tensor). All reads, and the handle
    # drops, happen in the reader thread; this thread never touches a reader.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="in2x-merge-read")
    pending: Future[_Fetched] | None = None
    try:
        names = inputs.names
        pending = pool.submit(fetch, names[0]) if names else None
        for i, name in enumerate(names):
            assert pending is not None
            item = pending.result()
            pending = None
            nxt = names[i + 1] if i + 1 < len(names) else None
            if nxt is not None and set_bytes[name] + set_bytes[nxt] <= max_set:
                pending = pool.submit(fetch, nxt)
            if item.copy is not None:
                writer.add(name, item.copy)
                copied += 1
            else:
                global_params, per_model = resolve_parameters(config, name, inputs.num_layers)
                generator = None
                if spec.random:
                    generator = torch.Generator(device=device)
                    generator.manual_seed(tensor_seed(config.seed, name))
                target = out_dtype or item.ref.dtype
                job = TensorJob(
                    name=name, tensors=item.tensors, base=item.base, model_params=per_model, params=global_params,
                    stats=item.stats, generator=generator, out_dtype=target,
                )
                try:
                    result = spec.apply(job)
                except ValueError as exc:  # a parameter the method cannot use for this tensor
                    raise UserError(f"{config.method}: tensor {name!r}: {exc}") from None
                writer.add(name, result.to(dtype=target, device="cpu"))
                merged += 1
                del result, job
            del item
            _return_freed_memory()
            if on_tensor:
                on_tensor(name)
            if pending is None and nxt is not None:
                pending = pool.submit(fetch, nxt)
        files = writer.close()
    finally:
        if pending is not None:
            pending.cancel()
        pool.shutdown(wait=True)
        inputs.release()
    copied_files = copy_model_files(inputs.reference.path, out_dir)
    if config.output_dtype and (out_dir / "config.json").exists():
        _set_config_dtype(out_dir / "config.json", config.output_dtype)
    return MergeSummary(
        tensors=len(inputs.names),
        merged=merged,
        copied=copied,
        bytes=writer.total_bytes,
        files=tuple(files),
        seconds=time.perf_counter() - t0,
        copied_files=tuple(copied_files),
    )


def _set_config_dtype(path: Path, dtype: str) -> None:
    from in2x_cli.io.jsonl import read_json, write_json

    cfg = read_json(path)
    cfg["dtype"] = dtype
    if "torch_dtype" in cfg:
        cfg["torch_dtype"] = dtype
    write_json(path, cfg)
