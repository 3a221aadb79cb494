"""The ``in2x`` command: one typer app, one module per subcommand under ``commands/``.

Command modules import only light things at module level (typer, stdlib, in2x config code), so
``in2x --help`` never imports torch or transformers. Each module exposes ``register(app)``.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import warnings
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click as typer._click; older typer uses click itself
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover
    from click import exceptions as _cx  # type: ignore[no-redef]

from in2x_cli import __version__, console
from in2x_cli.errors import UserError

# Plain registry: subcommand modules in the order `in2x --help` lists them.
COMMAND_MODULES: list[str] = [
    "cluster",
    "sample_difficulty",
    "synthesize",
    "cpt",
    "sft",
    "grpo",
    "merge",
    "translate",
    "eval",
    "plot",
    "tiny_model",
]

class _StageOrder(TyperGroup):
    """List subcommands in pipeline order (typer would put command groups last)."""

    def list_commands(self, ctx: Any) -> list[str]:
        order = [m.replace("_", "-") for m in COMMAND_MODULES]
        return sorted(self.commands, key=lambda n: order.index(n) if n in order else len(order))


app = typer.Typer(
    name="in2x",
    cls=_StageOrder,
    help=(
        "The In2x WMT25 recipe as composable commands. Each reads and writes JSONL ('-' is "
        "stdin/stdout) or a model directory, so a recipe is a shell pipeline.\n\n"
        "Example: in2x cluster data.jsonl | in2x sample-difficulty - --total 1000 > picked.jsonl"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"in2x {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr (no progress, no tables)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail on stderr."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    console.set_verbosity(0 if quiet else 2 if verbose else 1)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"in2x_cli.commands.{name}").register(app)


_register_all()

_terminated = {"signal": 0}


def _on_sigterm(signum: int, frame: Any) -> None:
    # Turn SIGTERM (cluster pre-emption) into the same clean unwinding as Ctrl-C: writers flush
    # or remove their partial files, trainers save a checkpoint.
    _terminated["signal"] = signum
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Console entry point: maps user errors to one line + exit 2, EPIPE to a quiet exit."""
    # Our own progress bars replace the libraries' (which would interleave on stderr).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # nothing phones home from a local run
    # Library deprecation notices (transformers/TRL FutureWarnings) are for their developers.
    warnings.filterwarnings("ignore", category=FutureWarning)
    if threading_main():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        rv = app(args=hoist_global_flags(sys.argv[1:] if argv is None else list(argv)), prog_name="in2x", standalone_mode=False)
    except UserError as exc:
        _flush_quietly()
        print(f"in2x: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except _cx.NoArgsIsHelpError as exc:  # `in2x` alone: the help, as before
        exc.show()
        sys.exit(2)
    except _cx.UsageError as exc:
        # one line like every other error, with the command whose help explains the options
        command = exc.ctx.command_path if exc.ctx is not None else "in2x"
        print(f"in2x: error: {exc.format_message()} (see '{command} -h')", file=sys.stderr)
        sys.exit(2)
    except _cx.ClickException as exc:
        print(f"in2x: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(2 if exc.exit_code == 1 else exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("in2x: interrupted", file=sys.stderr)
        sys.exit(143 if _terminated["signal"] == signal.SIGTERM else 130)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(141)
    if rv == 130:
        print("in2x: interrupted", file=sys.stderr)
        sys.exit(143 if _terminated["signal"] == signal.SIGTERM else 130)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(141)
    sys.exit(rv if isinstance(rv, int) else 0)


GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose")


def hoist_global_flags(argv: list[str]) -> list[str]:
    """``in2x eval -q ...`` means ``in2x -q eval ...``: -q/-v are accepted after the subcommand
    too (no subcommand uses them), and moved in front of it; ``--`` ends the search."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in GLOBAL_FLAGS]
    if not flags:
        return argv
    return flags + [a for a in argv[:end] if a not in GLOBAL_FLAGS] + argv[end:]


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _flush_quietly() -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        _silence_stdout()


def _silence_stdout() -> None:
    # Python would print "Exception ignored ... BrokenPipeError" at exit when flushing stdout.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
