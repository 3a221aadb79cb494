"""issue 20: `in2x translate` refuses contradicting inputs, counts truncated outputs, keeps
UTF-8 whole, describes the whole output after --resume and records which model made each row."""

from __future__ import annotations

from tests.translate.test_translate_cmd import SCRIPTED, mirror, register, wmt25_rows
from tests.util import assert_user_error, invoke, write_jsonl

# ------------------------------------------------------------------ items 1, 15: one input, no ignored options


def test_input_file_and_wmt24_together_are_refused(tmp_path, shared_data):
    inp = write_jsonl(tmp_path / "in.jsonl", wmt25_rows())
    wmt = str(shared_data / "wmt24" / "en-ja")
    assert_user_error(invoke(["translate", str(inp), "--wmt24", wmt, "--prepare"]), "exactly one input", str(inp), wmt)
    assert_user_error(invoke(["translate", "--wmt24", wmt, "--tgt-lang", "zh", "--prepare"]), "--tgt-lang", "--wmt24")


def test_mbr_output_all_without_mbr_is_refused(tmp_path):
    model = register("tr-guard-mbr", mirror)
    inp = write_jsonl(tmp_path / "in.jsonl", wmt25_rows()[:1])
    assert_user_error(invoke(["translate", str(inp), "-m", model, *SCRIPTED, "--mbr-output", "all"]), "--mbr-output all", "--mbr N")
