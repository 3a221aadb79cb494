import subprocess
import sys
import time

from tests.util import REPO, invoke, run_subprocess

HEAVY = ("torch", "transformers", "trl", "vllm", "faiss", "sklearn", "datasets", "sacrebleu", "numpy")


def test_help_imports_nothing_heavy():
    code = f"import sys; from in2x_cli import cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == ""


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
