"""The ``in2x merge`` stages, top to bottom. ``run_merge``: output dir → calibration statistics
(if any) → streaming merge → side files → provenance. ``run_stats`` (``merge fisher-stats`` /
``activation-stats``): one model's statistics into their own directory, for later merges."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from in2x_cli import console, provenance
from in2x_cli.io.checkpoint import atomic_output_dir, resolve_model, write_provenance
from in2x_cli.merge.config import MergeConfig
from in2x_cli.merge.executor import MergeSummary, merge_checkpoints
from in2x_cli.merge.stats import StatsConfig, calibrate


@dataclass(frozen=True)
class RunOptions:
    output: Path
    shard_bytes: int
    device: str = "cpu"
    overwrite: bool = False
    max_examples: int = 128
    max_length: int = 512
    calibration_device: str = "auto"
    trust_remote_code: bool = False


def _calibrate_missing(config: MergeConfig, opts: RunOptions, scratch: Path) -> list[str | None]:
    """Statistics per model: the precomputed directory, or computed now from its calibration file."""
    kind = config.spec.stats
    dirs: list[str | None] = []
    for i, m in enumerate(config.models):
        if m.stats or not m.calibration or kind is None:
            dirs.append(m.stats)
            continue
        out = scratch / f"model-{i}"
        out.mkdir()
        console.info(f"merge: computing {kind} statistics for {m.path} on {m.calibration} (loads the whole model)")
        cfg = StatsConfig(
            kind=kind, max_examples=opts.max_examples, max_length=opts.max_length,
            device=opts.calibration_device, trust_remote_code=opts.trust_remote_code,
        )
        calibrate_with_progress(m.path, m.calibration, out, cfg, shard_bytes=opts.shard_bytes, label=f"{kind} {Path(m.path).name}")
        dirs.append(str(out))
    return dirs


def calibrate_with_progress(model_dir: str, calibration: str, out: Path, cfg: StatsConfig, *, shard_bytes: int, label: str) -> dict[str, Any]:
    """``stats.calibrate`` with a progress bar (one step per calibration row) on stderr."""
    with console.progress() as bar:
        task: list[Any] = []

        def start(n: int) -> Any:
            task.append(bar.add_task(label, total=n))
            return lambda: bar.advance(task[0])

        return calibrate(model_dir, calibration, out, cfg, shard_bytes=shard_bytes, progress=start)


def run_stats(model: str, calibration: str, output: Path, cfg: StatsConfig, *, shard_bytes: int, overwrite: bool, command: str) -> dict[str, Any]:
    """One model's ``cfg.kind`` statistics into a new directory ``output`` (created atomically,
    with provenance); returns their summary (examples, tokens, tensors, files)."""
    model_dir = str(resolve_model(model, trust_remote_code=cfg.trust_remote_code))
    with atomic_output_dir(output, overwrite=overwrite) as tmp:
        meta = calibrate_with_progress(model_dir, calibration, tmp, cfg, shard_bytes=shard_bytes, label=f"{cfg.kind} statistics")
        write_provenance(tmp, provenance.collect(command=command, config=cfg, inputs=[model_dir, calibration], extra={"stats": meta}))
    return meta


def run_merge(config: MergeConfig, opts: RunOptions) -> MergeSummary:
    if config.base_model and config.spec.base != "required" and config.base_model not in {m.path for m in config.models}:
        # mergekit accepts a base for linear/fisher and does not merge it: say so rather than print "onto"
        console.warn(f"merge: {config.method} merges no base model: {config.base_model} is ignored as a weight source"
                     + (" (its config and tokenizer files are copied)" if config.copy_source() == config.base_model else ""))
    inputs = [p for p in [config.base_model, *(m.path for m in config.models)] if p]
    inputs += [p for m in config.models for p in (m.calibration, m.stats) if p]
    digests = provenance.digest_in_background(inputs)  # checksums overlap the merge
    with atomic_output_dir(opts.output, overwrite=opts.overwrite) as tmp:
        with tempfile.TemporaryDirectory(prefix=".in2x-merge-stats-", dir=Path(opts.output).absolute().parent) as scratch:
            stats_dirs = _calibrate_missing(config, opts, Path(scratch))
            with console.progress() as bar:
                task: list[Any] = []
                summary = merge_checkpoints(
                    config,
                    tmp,
                    stats_dirs=stats_dirs,
                    shard_bytes=opts.shard_bytes,
                    device=opts.device,
                    on_start=lambda n: task.append(bar.add_task(f"merge {config.method}", total=n)),
                    on_tensor=lambda _name: bar.advance(task[0]),
                )
        spec = config.spec
        record = provenance.collect(
            command="merge",
            config=config,
            inputs=inputs,
            input_digests=digests(),
            seed=config.seed if spec.random else None,
            extra={
                "merge": {
                    "method": config.method,
                    "paper": spec.paper,
                    "base_model": config.base_model,
                    "models": [{"model": m.path, "parameters": dict(m.parameters)} for m in config.models],
                    "parameters": {**spec.params, **dict(config.parameters)},
                    "defaults": {"model": dict(spec.model_params), "global": dict(spec.params)},
                    "dtype": config.dtype,
                    "out_dtype": config.output_dtype,
                    "tensors": summary.tensors,
                    "bytes": summary.bytes,
                    "files": list(summary.files),
                    "shard_bytes": opts.shard_bytes,
                }
            },
        )
        write_provenance(tmp, record)
    return summary
