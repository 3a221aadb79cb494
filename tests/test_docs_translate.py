"""docs/translate.md cannot drift from the code: every built-in template, {structure} sentence,
language name, placeholder, cleaning rule (in order), MBR utility and granularity appears in it,
and its cleaning and alignment example tables are run through the real functions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from in2x_cli.core import translate as T

DOC = Path(__file__).resolve().parent.parent / "docs" / "translate.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _table_after(doc: str, marker: str) -> list[list[str]]:
    """Cells of the Markdown table following ``<!-- marker… -->`` (header and rule skipped)."""
    start = doc.index(f"<!-- {marker}")
    lines = doc[start:].splitlines()[1:]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    assert rows, f"no table after {marker}"
    return rows


def _json_cell(cell: str):
    return json.loads(cell.strip().strip("`").strip())


def test_every_built_in_template_is_in_the_doc_verbatim(doc):
    for key, template in T.TEMPLATES.items():
        assert f"`{key}`" in doc, key
        assert f"```text\n{template}\n```" in doc, f"template {key!r} differs from core/translate.py"


def test_structure_sentences_language_names_and_placeholders(doc):
    for key, sentence in T.STRUCTURE.items():
        assert f"- `{key}`: `{sentence}`" in doc, key
    for target, names in T.NAMES_IN.items():
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{target}` |"))
        header = next(line for line in doc.splitlines() if line.startswith("| target |"))
        langs = [c.strip() for c in header.strip("|").split("|")][1:]
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        assert dict(zip(langs, cells, strict=True)) == names, target
    for name in T.PLACEHOLDERS:
        assert f"`{{{name}}}`" in doc, name


def test_cleaning_rules_are_documented_in_code_order(doc):
    section = doc[doc.index("## Output cleaning") : doc.index("<!-- cleaning-examples")]
    documented = re.findall(r"^\| `(\w+)` \|", section, re.M)
    assert documented == [*T.CLEAN_RULES, "whitespace"]


def test_cleaning_examples_are_what_the_code_does(doc):
    rows = _table_after(doc, "cleaning-examples")
    fired_rules = set()
    for fired, source, output, cleaned in rows:
        expected_fired = [] if fired.startswith("—") else [r.strip() for r in fired.split(",")]
        got, got_fired = T.clean_output_rules(_json_cell(output), _json_cell(source))
        assert (got, got_fired) == (_json_cell(cleaned), expected_fired), (source, output)
        fired_rules.update(got_fired)
    assert fired_rules == set(T.CLEAN_RULES)  # an example for every rule
    assert len(rows) >= 12


def test_alignment_examples_are_what_the_code_does(doc):
    rows = _table_after(doc, "alignment-examples")
    for sources, hyp, aligned in rows:
        assert T.align_paragraphs(_json_cell(hyp), _json_cell(sources)) == _json_cell(aligned), (sources, hyp)
    assert any(_json_cell(a) is None for _, _, a in rows)


def test_options_utilities_and_granularities_are_documented(doc):
    from in2x_cli.core.mbr import UTILITIES
    from in2x_cli.translate.config import GRANULARITIES

    for name in UTILITIES:
        assert f"| `{name}`" in doc, name
    for g in GRANULARITIES:
        assert f"`--granularity {g}`" in doc, g
    for option in ("--prompt-file", "--system", "--mbr", "--mbr-utility", "--mbr-output all", "--comet-model", "--max-tokens", "--max-model-len"):
        assert option in doc, option


def test_translate_help_and_readme_point_here():
    from tests.util import invoke

    res = invoke(["translate", "--help"])
    assert res.code == 0 and "docs/translate.md" in res.stdout
    readme = (DOC.parent.parent / "README.md").read_text(encoding="utf-8")
    assert "docs/translate.md" in readme
