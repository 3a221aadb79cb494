import json
import os
import subprocess
import sys
import time

from tests.util import REPO, invoke, run_subprocess

HEAVY = ("torch", "transformers", "trl", "vllm", "faiss", "sklearn", "datasets", "sacrebleu", "numpy")


def test_help_imports_nothing_heavy():
    code = f"import sys; from in2x_cli import cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == ""


# Renders the real --help of the app and of every (sub)command through cli.main, in one fresh
# interpreter, then reports which heavy modules got imported on the way.
HELP_EVERY_COMMAND = """
import contextlib, io, json, sys
import typer
from in2x_cli import cli

def walk(cmd, path):
    yield path
    for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
        yield from walk(sub, [*path, name])

rendered = {}
for path in walk(typer.main.get_command(cli.app), []):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            cli.main([*path, "--help"])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    rendered[" ".join(path) or "in2x"] = [code, out.getvalue()]
print(json.dumps({"rendered": rendered, "heavy": [m for m in HEAVY if m in sys.modules]}))
"""


def test_help_of_every_command_imports_nothing_heavy():
    """``in2x --help`` and ``in2x CMD [SUB] --help`` for every command render without importing
    torch, transformers, trl, numpy and the other heavy libraries (STYLE habit 6)."""
    code = f"HEAVY = {HEAVY!r}\n{HELP_EVERY_COMMAND}"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout.splitlines()[-1])
    rendered = doc["rendered"]
    # every registered command and the subcommands of the groups were rendered
    assert {"in2x", "cluster", "sample-difficulty", "synthesize", "cpt", "sft", "grpo", "merge", "translate", "eval", "plot",
            "tiny-model", "eval autorank", "merge fisher-stats"} <= set(rendered), sorted(rendered)
    for name, (status, text) in rendered.items():
        assert status == 0 and "Usage:" in text, (name, status, text[:500])
    assert doc["heavy"] == [], doc["heavy"]


def test_console_script_help_imports_nothing_heavy():
    """The installed ``in2x`` entry point itself, traced with -X importtime."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "in2x_cli", "--help"], capture_output=True, text=True, cwd=REPO,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and "Usage:" in proc.stdout, proc.stderr[-2000:]
    imported = {ln.rsplit("|", 1)[-1].strip().split(".")[0] for ln in proc.stderr.splitlines() if ln.startswith("import time:")}
    assert "typer" in imported  # the trace is real
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_help_is_fast_and_lists_commands():
    best = 99.0
    for _ in range(3):
        t0 = time.perf_counter()
        res = run_subprocess(["--help"])
        best = min(best, time.perf_counter() - t0)
    assert res.code == 0
    assert "tiny-model" in res.stdout
    assert best < 0.5, f"in2x --help took {best:.2f}s"


def test_version_and_unknown_command():
    assert invoke(["--version"]).stdout.startswith("in2x ")
    res = invoke(["no-such-command"])
    assert res.code == 2 and "No such command" in res.stderr


SPEW = """
import typer
from in2x_cli import cli
@cli.app.command("spew")
def spew():
    for i in range(200000):
        print('{"i": %d}' % i)
cli.main(["spew"])
"""


def test_sigpipe_is_quiet(tmp_path):
    # `in2x ... | head -1` must not print a BrokenPipeError traceback.
    script = tmp_path / "spew.py"
    script.write_text(SPEW)
    proc = subprocess.run(
        f"{sys.executable} {script} | head -1", shell=True, capture_output=True, text=True, cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout == '{"i": 0}\n'
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_user_error_is_one_line_exit_2(tmp_path):
    res = invoke(["tiny-model", str(tmp_path / "missing" / "deeper")])
    assert res.code == 2 and res.stderr.startswith("in2x: error:") and "Traceback" not in res.stderr
