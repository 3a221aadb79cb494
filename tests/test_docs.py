from pathlib import Path

from in2x_cli.docgen import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_cli_reference_is_up_to_date():
    """docs/cli.md is generated from --help; regenerate with `make docs` when this fails."""
    assert DOC.read_text(encoding="utf-8") == render()
