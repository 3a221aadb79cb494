"""Perplexity filter for the annealing phase (paper §CPT phase 3: "perplexity/quality-filtered").

For each source file, every document is scored by a reference model::

    ppl(d) = exp( −1/(n−1) · Σ_{t=2..n} log p(x_t | x_<t) )        (first ``seq_len`` tokens of d)

and written back with ``ppl`` and ``ppl_tokens`` fields to ``<dir>/<k>-<name>.jsonl`` (all rows,
resumable: an interrupted pass continues after the last written row). The ``keep`` fraction with
the lowest perplexity (``ceil(keep · n)`` rows; documents of < 2 tokens have ``ppl: null`` and are
never kept) goes, in input order, to ``<dir>/<k>-<name>.kept.jsonl``. Selection is per source, so
the mixture weights keep their meaning. The paper does not give the fraction.

The scores are reused (``--resume``, or a second run into the same directory) only when they were
made with the same settings: the filter model (its path and the size and mtime of its weight
files), ``--seq-len``, the text field and the source path, stored in
``<dir>/<k>-<name>.settings.json`` before scoring starts. Different settings → the old scores are
removed (with a note on stderr) and computed again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from in2x_cli import console
from in2x_cli.train.data import DataSource, iter_texts


def select_lowest(ppls: list[float | None], keep: float) -> list[bool]:
    """Mask of the ``ceil(keep · n_valid)`` lowest values (ties → earlier index); None never kept."""
    valid = [i for i, p in enumerate(ppls) if p is not None and math.isfinite(p)]
    k = math.ceil(keep * len(valid))
    chosen = set(sorted(valid, key=lambda i: (ppls[i], i))[:k])
    return [i in chosen for i in range(len(ppls))]


def score_texts(model: Any, tokenizer: Any, texts: list[str], *, seq_len: int, device: str) -> list[tuple[float | None, int]]:
    """(perplexity, scored tokens) per text, one padded forward pass for the batch."""
    import torch

    ids = [tokenizer(t, add_special_tokens=False)["input_ids"][:seq_len] for t in texts]
    out: list[tuple[float | None, int]] = [(None, len(x)) for x in ids]
    live = [i for i, x in enumerate(ids) if len(x) >= 2]
    if not live:
        return out
    width = max(len(ids[i]) for i in live)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batch = torch.full((len(live), width), pad, dtype=torch.long)
    mask = torch.zeros((len(live), width), dtype=torch.long)
    for r, i in enumerate(live):
        batch[r, : len(ids[i])] = torch.tensor(ids[i])
        mask[r, : len(ids[i])] = 1
    batch, mask = batch.to(device), mask.to(device)
    with torch.no_grad():
        logits = model(input_ids=batch, attention_mask=mask, use_cache=False).logits.float()
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, batch[:, 1:, None]).squeeze(-1)
    m = mask[:, 1:].float()
    nll = -(logp * m).sum(-1) / m.sum(-1)
    for r, i in enumerate(live):
        out[i] = (float(torch.exp(nll[r]).item()), len(ids[i]) - 1)
    return out


def perplexity_filter(
    model_spec: str,
    sources: list[DataSource],
    out_dir: Path,
    *,
    keep: float,
    seq_len: int,
    batch_size: int,
    text_field: str,
    device: str,
    trust_remote_code: bool = False,
) -> tuple[list[DataSource], dict[str, Any]]:
    """Score and filter every source; returns the kept files as new sources (same weights) and a report."""
    from in2x_cli import provenance
    from in2x_cli.io import JsonlWriter, iter_jsonl
    from in2x_cli.io.checkpoint import load_causal_lm, load_tokenizer, resolve_model

    what = "--ppl-filter model"
    path = resolve_model(model_spec, what=what, trust_remote_code=trust_remote_code)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code, what=what)
    model = load_causal_lm(path, dtype="auto", device=device, trust_remote_code=trust_remote_code, what=what)
    new_sources: list[DataSource] = []
    report: dict[str, Any] = {"model": str(path), "keep": keep, "seq_len": seq_len, "sources": []}
    for k, src in enumerate(sources):
        stem = Path(src.path).name.split(".")[0] or "stdin"
        scored = out_dir / f"{k}-{stem}.jsonl"
        kept_path = out_dir / f"{k}-{stem}.kept.jsonl"
        meta = {"model": str(path), "seq_len": seq_len, "source": src.path}

        def _meta(src: DataSource = src, meta: dict[str, Any] = meta) -> dict[str, Any]:
            return provenance.collect(command="cpt --ppl-filter", config=meta, inputs=[src.path])

        _reuse_or_reset(scored, kept_path, score_settings(path, seq_len=seq_len, text_field=text_field, source=src.path))
        if not scored.exists() or scored.with_name(scored.name + ".partial").exists():
            with JsonlWriter(scored, meta=_meta, resume=True) as writer, console.progress() as bar:
                done = writer.rows_resumed
                task = bar.add_task(f"perplexity {src.path}", total=None, completed=done)
                pending: list[dict[str, Any]] = []
                texts: list[str] = []
                for n, (text, row) in enumerate(iter_texts(src.path, text_field)):
                    if n < done:
                        continue
                    pending.append(row)
                    texts.append(text)
                    if len(texts) == batch_size:
                        _flush(writer, model, tokenizer, pending, texts, seq_len, device)
                        bar.advance(task, len(texts))
                        pending, texts = [], []
                if texts:
                    _flush(writer, model, tokenizer, pending, texts, seq_len, device)
                    bar.advance(task, len(texts))
        rows = [line.data for line in iter_jsonl(str(scored))]
        mask = select_lowest([r.get("ppl") for r in rows], keep)
        with JsonlWriter(kept_path, meta=_meta) as writer:
            writer.write_many(r for r, m in zip(rows, mask, strict=True) if m)
        kept = [r["ppl"] for r, m in zip(rows, mask, strict=True) if m]
        valid = [r["ppl"] for r in rows if r.get("ppl") is not None]
        report["sources"].append(
            {
                "path": src.path,
                "scored": str(scored),
                "kept_path": str(kept_path),
                "rows": len(rows),
                "kept": len(kept),
                "max_kept_ppl": max(kept) if kept else None,
                "median_ppl": sorted(valid)[len(valid) // 2] if valid else None,
            }
        )
        console.info(f"cpt: {src.path}: kept {len(kept)}/{len(rows)} rows with ppl <= {max(kept) if kept else float('nan'):.3g} -> {kept_path}")
        if not kept:
            from in2x_cli.errors import UserError

            raise UserError("perplexity filter kept no document (all shorter than 2 tokens?)", src.path)
        new_sources.append(DataSource(str(kept_path), src.weight))
    del model
    return new_sources, report


def score_settings(model_dir: Path, *, seq_len: int, text_field: str, source: str) -> dict[str, Any]:
    """What the scores of one source depend on (the cache key of the perplexity pass)."""
    weights = sorted(p for p in Path(model_dir).glob("*.safetensors")) if Path(model_dir).is_dir() else []
    return {
        "model": str(Path(model_dir).resolve()),
        "model_weights": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in weights],
        "seq_len": seq_len,
        "text_field": text_field,
        "source": source,
    }


def _reuse_or_reset(scored: Path, kept_path: Path, settings: dict[str, Any]) -> None:
    """Keep earlier scores (complete or partial) only if they were made with these settings."""
    settings_path = scored.with_name(scored.name.removesuffix(".jsonl") + ".settings.json")
    partial = scored.with_name(scored.name + ".partial")
    previous = None
    if settings_path.exists():
        try:
            previous = json.loads(settings_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
    if (scored.exists() or partial.exists()) and previous != settings:
        changed = sorted(k for k in settings if not isinstance(previous, dict) or previous.get(k) != settings[k])
        console.warn(f"cpt: perplexity scores in {scored} were made with other settings ({', '.join(changed)}): scoring again")
        for stale in (scored, partial, kept_path, scored.with_name(scored.name + ".meta.json"), kept_path.with_name(kept_path.name + ".meta.json")):
            stale.unlink(missing_ok=True)
    if previous != settings:
        settings_path.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")


def _flush(writer: Any, model: Any, tokenizer: Any, rows: list[dict[str, Any]], texts: list[str], seq_len: int, device: str) -> None:
    for row, (ppl, n) in zip(rows, score_texts(model, tokenizer, texts, seq_len=seq_len, device=device), strict=True):
        writer.write({**row, "ppl": ppl, "ppl_tokens": n})
