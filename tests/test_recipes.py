"""Recipes must not drift from the CLI: every ``in2x`` call in recipes/*.sh names a real
subcommand and only options that subcommand has (and every script parses)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

RECIPES = sorted((Path(__file__).resolve().parent.parent / "recipes").glob("*.sh"))
DEFAULT_SUBCOMMAND = {"eval": "score"}  # `in2x eval ARGS` is `in2x eval score ARGS`
CALL = re.compile(r'(?:"\$IN2X"|\$IN2X|\bq|\bin2x)\s+(?:-q\s+)?([a-z][a-z-]+)((?:\s+[a-z][a-z-]+)?)(.*)')


def _commands() -> dict[tuple[str, ...], set[str]]:
    """(command path) → option names, from the click command tree behind the typer app."""
    import typer

    from in2x_cli.cli import app

    out: dict[tuple[str, ...], set[str]] = {}

    def walk(cmd, path):
        out[path] = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("-")}
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return out


def _calls(script: Path | str) -> list[tuple[int, str, str, str]]:
    text = (script.read_text(encoding="utf-8") if isinstance(script, Path) else script).replace("\\\n", " ")
    calls = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        code = line.split(" #", 1)[0]
        if code.lstrip().startswith("#"):
            continue
        for part in re.split(r"\||&&|;", code):  # one command per pipeline element
            for m in CALL.finditer(part):
                calls.append((lineno, m.group(1), m.group(2).strip(), m.group(3)))
    return calls


@pytest.mark.parametrize("script", RECIPES, ids=lambda p: p.name)
def test_recipe_parses_and_uses_real_options(script):
    subprocess.run(["bash", "-n", str(script)], check=True)
    _check_calls(_calls(script), script.name)


def test_readme_commands_use_real_options():
    """Every in2x command the README shows (code blocks and the stage table) is checked the same way."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    table = "\n".join(line for line in readme.splitlines() if line.startswith("|"))
    cells = [c.replace("\\|", "|") for c in re.findall(r"`([^`]*\bin2x [^`]*)`", table)]
    calls = _calls("\n".join(blocks + cells))
    assert len(calls) >= 25
    _check_calls(calls, "README.md")


def _check_calls(calls: list[tuple[int, str, str, str]], name: str) -> None:
    commands = _commands()
    assert calls, f"no in2x calls found in {name}"
    for lineno, cmd, sub, rest in calls:
        path = (cmd, sub) if sub and (cmd, sub) in commands else (cmd,)
        assert path in commands, f"{name}:{lineno}: unknown command in2x {cmd}"
        if not sub or path == (cmd,):
            rest = f" {sub} {rest}"
            if cmd in DEFAULT_SUBCOMMAND:
                path = (cmd, DEFAULT_SUBCOMMAND[cmd])
        allowed = commands[path] | commands.get((cmd,), set()) | commands[()]
        for flag in re.findall(r"(?<![\w$-])(--?[a-zA-Z][\w-]*)", rest):
            if flag in ("-", "--", "--help"):  # every command has --help
                continue
            assert flag in allowed, f"{name}:{lineno}: in2x {' '.join(path)} has no option {flag}"
