"""Generate the CLI reference (docs/cli.md) from the commands' own ``--help``.

``make docs`` writes it; tests/test_docs.py fails when the committed file drifts from the code.
Help is rendered at a fixed width so the output does not depend on the terminal.
"""

from __future__ import annotations

import sys
from typing import Any

WIDTH = 100


def _walk(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    out = [(path, cmd)]
    subcommands = getattr(cmd, "commands", None)
    if subcommands:
        for name in sorted(subcommands):
            sub = subcommands[name]
            if getattr(sub, "hidden", False):
                continue
            out.extend(_walk(sub, [*path, name]))
    return out


def render() -> str:
    import typer

    from in2x_cli.cli import app

    root = typer.main.get_command(app)
    parts = [
        "# in2x CLI reference\n",
        "Generated from `--help` by `make docs` (`python -m in2x_cli.docgen > docs/cli.md`); a test keeps it in sync.\n",
    ]
    for path, cmd in _walk(root, ["in2x"]):
        ctx_parent = None
        for i in range(1, len(path) + 1):
            node = cmd if i == len(path) else _lookup(root, path[1:i])
            ctx_parent = node.make_context(
                path[i - 1], [], parent=ctx_parent, resilient_parsing=True, terminal_width=WIDTH, max_content_width=WIDTH
            )
        assert ctx_parent is not None
        title = " ".join(path)
        parts.append(f"\n## `{title}`\n\n```text\n{cmd.get_help(ctx_parent).rstrip()}\n```\n")
    return "".join(parts)


def _lookup(root: Any, names: list[str]) -> Any:
    cmd = root
    for n in names:
        cmd = cmd.commands[n]
    return cmd


if __name__ == "__main__":
    sys.stdout.write(render())
