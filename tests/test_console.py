"""console.progress on a stderr that is not a terminal: periodic one-line progress."""

from in2x_cli import console
from in2x_cli.console import LineProgress, format_progress_line


def test_progress_line_format():
    assert format_progress_line("embed", 250_000, 1_000_000, 80) == "embed: 250,000/1,000,000 (25.0%) 3,125/s elapsed 1m20s eta 4m00s"
    assert format_progress_line("read", 10, None, 5) == "read: 10 2/s elapsed 5s"


def test_line_progress_prints_at_most_once_per_interval(capsys, monkeypatch):
    clock = iter([0.0, 1.0, 31.0, 40.0, 62.0])
    bar = LineProgress(30)
    monkeypatch.setattr(bar, "_clock", lambda: next(clock))
    task = bar.add_task("embed", total=100)  # t=0
    bar.advance(task, 10)  # t=1: too soon
    bar.advance(task, 20)  # t=31: a line
    bar.update(task, advance=10, description="embed!")  # t=40: too soon
    bar.update(task, completed=100)  # t=62: a line
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["embed: 30/100 (30.0%) 1/s elapsed 31s eta 1m12s", "embed!: 100/100 (100.0%) 2/s elapsed 1m02s"]


def test_progress_is_a_line_progress_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.delenv("IN2X_NO_PROGRESS", raising=False)
    with console.progress() as bar:  # pytest captures stderr: not a terminal
        assert isinstance(bar, LineProgress)
    monkeypatch.setenv("IN2X_NO_PROGRESS", "1")
    with console.progress() as bar:
        assert not isinstance(bar, LineProgress)
