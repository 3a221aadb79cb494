"""What ``in2x plot`` draws: the files in2x stages write, found in a run directory.

``metrics.jsonl`` (cpt / sft / grpo, see train/callbacks.py), ``in2x.eval/1`` JSON (``in2x eval``)
and ``in2x.autorank/1`` JSON (``in2x eval autorank``), recognised by their schema
(``io.documents``); hidden directories, ``checkpoint-*`` and ``plots`` are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from in2x_cli.io.documents import AUTORANK_SCHEMA, EVAL_SCHEMA, sniff_schema

MAX_WALK_DEPTH = 4


@dataclass(frozen=True)
class Artefact:
    kind: str  # "train" | "eval" | "autorank"
    path: Path
    name: str


def _name(path: Path, root: Path) -> str:
    rel = path.relative_to(root)
    parts = list(rel.parts[:-1]) if path.name == "metrics.jsonl" else [*rel.parts[:-1], path.stem]
    return "-".join(parts) or path.stem


def find_artefacts(root: Path) -> list[Artefact]:
    found: list[Artefact] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if len(rel.parts) > MAX_WALK_DEPTH or any(p.startswith((".", "checkpoint-")) or p == "plots" for p in rel.parts):
            continue
        if path.name == "metrics.jsonl" and path.is_file():
            found.append(Artefact("train", path, _name(path, root)))
        elif path.suffix == ".json" and path.is_file() and not path.name.endswith(".meta.json"):
            schema = sniff_schema(path)
            if schema == EVAL_SCHEMA:
                found.append(Artefact("eval", path, _name(path, root)))
            elif schema == AUTORANK_SCHEMA:
                found.append(Artefact("autorank", path, _name(path, root)))
    return found
