"""Metric-overfit guard: flag systems that were trained (GRPO) on a reward that is also one of the
evaluation metrics, and name the held-out metrics beside it.

WMT25's lesson (findings of the General MT task): a system optimised for a metric leads on that
metric by more than humans confirm, so its score there is not evidence of quality. ``in2x eval``
follows each system's provenance back to its training:

  hypothesis file → ``<file>.meta.json`` (``in2x translate``: ``config.models``)
    → ``<model>/in2x_provenance.json`` (``grpo`` records ``rewards``; ``sft``/``cpt`` record
      ``base_model``; ``merge`` records its input models) → … (up to ``MAX_DEPTH`` hops)

and compares the GRPO rewards found with the evaluation metrics (``REWARD_METRICS``). A system
read from a JSONL input takes that file's sidecar; ``--hyp NAME=FILE`` systems their own file's.
Systems without provenance (WMT24 published outputs, hand-made files) are not flagged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from in2x_cli import console
from in2x_cli.evaluate.config import EvalConfig

# GRPO reward (registry name) → the eval metrics (names of core.metrics.METRICS) it optimises.
REWARD_METRICS: dict[str, tuple[str, ...]] = {
    "translation_chrf": ("chrf",),
    "translation_bleu": ("bleu",),
    "translation_comet": ("comet", "cometkiwi", "xcomet"),
    "gemba": ("gemba-esa",),
}
MAX_DEPTH = 6
MARKER = "†"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _models_of(meta: dict[str, Any]) -> list[str]:
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    models = config.get("models") or ([config["model"]] if isinstance(config.get("model"), str) else [])
    return [m for m in models if isinstance(m, str)]


def trained_rewards(output_file: str) -> list[dict[str, Any]]:
    """The GRPO runs behind ``output_file``: ``[{"model": DIR, "rewards": [{"name", "weight"}]}]``."""
    if not output_file or output_file == "-":
        return []
    meta = _read_json(Path(f"{output_file}.meta.json"))
    if meta is None:
        return []
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    todo = [(m, 0) for m in _models_of(meta)]
    while todo:
        model, depth = todo.pop(0)
        key = str(Path(model).resolve()) if Path(model).exists() else model
        if key in seen or depth > MAX_DEPTH:
            continue
        seen.add(key)
        prov = _read_json(Path(model) / "in2x_provenance.json")
        if prov is None:
            continue
        rewards = prov.get("rewards")
        if isinstance(rewards, list) and rewards:
            found.append({"model": model, "command": prov.get("command"), "rewards": [r for r in rewards if isinstance(r, dict)]})
        upstream = [prov.get("base_model")] + [i.get("path") for i in prov.get("inputs", []) if isinstance(i, dict)]
        todo.extend((u, depth + 1) for u in upstream if isinstance(u, str) and u != model and Path(u).is_dir())
    return found


def _system_files(result: dict[str, Any], cfg: EvalConfig) -> dict[str, str]:
    from in2x_cli.evaluate.inputs import split_named

    named = dict(split_named(h) for h in cfg.hyps)
    out = {}
    for entry in result["systems"]:
        name = entry["system"]
        path = named.get(name) or (cfg.input if cfg.input and not cfg.hyps else None)
        if path:
            out[name] = path
    return out


def flag_reward_overlap(result: dict[str, Any], cfg: EvalConfig) -> None:
    """Add ``reward_overlap`` to each system trained on an evaluated metric; one stderr line each."""
    metric_names = {key: info.get("name", key) for key, info in result["metrics"].items()}
    for name, path in _system_files(result, cfg).items():
        runs = trained_rewards(path)
        if not runs:
            continue
        entry = next(e for e in result["systems"] if e["system"] == name)
        rewards = sorted({r["name"] for run in runs for r in run["rewards"] if isinstance(r.get("name"), str)})
        optimised = {m for r in rewards for m in REWARD_METRICS.get(r, ())}
        overlap = [k for k, base in metric_names.items() if base in optimised]
        if not overlap:
            continue
        held_out = [k for k in metric_names if k not in overlap]
        entry["reward_overlap"] = {"rewards": rewards, "metrics": overlap, "held_out": held_out, "models": [run["model"] for run in runs]}
        beside = f"held-out: {', '.join(held_out)}" if held_out else "no held-out metric here: add one (e.g. -m comet,gemba-esa)"
        console.warn(
            f"{name}: trained with reward {', '.join(rewards)} ({', '.join(run['model'] for run in runs)}), so {', '.join(overlap)} "
            f"(marked {MARKER}) is not held out for it; {beside}"
        )
