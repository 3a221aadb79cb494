"""The final export of a training run: an HF model directory (safetensors only, no
``training_args.bin``), optionally with a LoRA adapter merged into its base model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from in2x_cli.train.options import TrainOptions
from in2x_cli.train.rundir import FINAL_PARTIAL


def export_dtype(dtype: Any) -> Any:
    """A base model's dtype (its config's, a torch dtype or a name) when it is a floating dtype
    other than float32, else None: the stages train in float32 and cast the export back to it."""
    import torch

    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return dtype if isinstance(dtype, torch.dtype) and dtype.is_floating_point and dtype != torch.float32 else None


def finish_run(
    trainer: Any,
    opts: TrainOptions,
    *,
    command: str,
    config: Any,
    base_model: Path,
    inputs: list[str],
    extra: dict[str, Any],
    tokenizer: Any,
    base_dtype: Any,
    chat_template: str | None = None,
    merge_lora_base: str | Path | None = None,
) -> None:
    """The end of every training stage: the provenance record (command, resolved config, inputs,
    seed, base model and ``extra``) and the final export (``save_final_model``), cast back to
    ``base_dtype`` (``export_dtype``)."""
    from in2x_cli import provenance

    record = provenance.collect(command=command, config=config, inputs=inputs, seed=opts.seed, extra={"base_model": str(base_model), **extra})
    save_final_model(
        trainer,
        opts.output_dir,
        tokenizer=tokenizer,
        provenance=record,
        max_shard_size=opts.max_shard_size,
        save_dtype=export_dtype(base_dtype),
        chat_template=chat_template,
        merge_lora_base=merge_lora_base,
    )


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
    tmp = out / FINAL_PARTIAL
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
    from peft import PeftModel

    from in2x_cli.io.checkpoint import load_causal_lm

    model = load_causal_lm(base)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    if dtype is not None:
        merged = merged.to(dtype)
    merged.save_pretrained(str(out), max_shard_size=max_shard_size)
