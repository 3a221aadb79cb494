"""The layout rules of docs/architecture.md, checked from the source itself.

One home per stage: thin command modules, stage packages that do not reach into each other's
private names, a pure core/ that imports no stage, backend or command, and no import cycles
among module-level imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "in2x_cli"
STAGES = ("cluster", "sample", "synth", "train", "merge", "translate", "evaluate", "plot")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _resolve(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path, name: str, *, lazy: bool) -> list[tuple[str, list[str]]]:
    """(module, imported names) of a file: every import (``lazy``), or only those executed at
    import time (module level, inside if/try, not under ``TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []

    def add(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((_resolve(node, package), [a.name for a in node.names]))

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            add(node)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))

    if lazy:
        for node in ast.walk(tree):
            add(node)
    else:
        visit(tree.body)
    return found


def test_command_modules_are_thin() -> None:
    long = {p.name: n for p in (PKG / "commands").glob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 150}
    assert not long, f"command modules over 150 lines: {long}"


def test_every_stage_has_a_package_with_its_entry_module() -> None:
    entries = {stage: [f"{stage}/run.py"] for stage in STAGES}
    entries["train"] = ["train/cpt.py", "train/sft.py", "train/grpo.py"]  # three stages, one package
    for stage, files in entries.items():
        for rel in files:
            text = (PKG / rel).read_text(encoding="utf-8")
            name = "run_" + {"train": Path(rel).stem, "evaluate": "eval"}.get(stage, stage)
            assert f"def {name}(" in text, f"{rel} has no {name}()"


def test_no_import_cycles_at_import_time() -> None:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = set()
        for mod, names in _imports(path, name, lazy=False):
            for candidate in [f"{mod}.{n}" for n in names] + [mod]:
                if candidate in mods and candidate != name:
                    deps.add(candidate)
                    break
        graph[name] = deps

    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := dfs(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def _stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "in2x_cli" and parts[1] in STAGES else None


def test_no_stage_imports_another_stages_private_names() -> None:
    bad = []
    for name, path in _modules().items():
        for mod, names in _imports(path, name, lazy=True):
            target = _stage_of(mod)
            if target is None or target == _stage_of(name):
                continue
            private = [n for n in names if n.startswith("_")]
            if private or any(part.startswith("_") for part in mod.split(".")[2:]):
                bad.append(f"{name} imports {mod}:{private}")
    assert not bad, bad


def test_core_is_pure() -> None:
    forbidden = tuple(f"in2x_cli.{x}" for x in (*STAGES, "commands", "backends", "cli", "cometenv"))
    bad = []
    for name, path in _modules().items():
        if not name.startswith("in2x_cli.core"):
            continue
        for mod, _ in _imports(path, name, lazy=True):
            if mod.startswith(forbidden):
                bad.append(f"{name} imports {mod}")
    assert not bad, bad


def test_architecture_doc_names_every_stage_package() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for stage in STAGES:
        assert f"`{stage}/" in doc, stage
        assert (PKG / stage).is_dir()
