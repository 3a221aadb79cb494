"""issue 20: `in2x translate` refuses contradicting inputs, counts truncated outputs, keeps
UTF-8 whole, describes the whole output after --resume and records which model made each row."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes import ScriptedBackend
from tests.translate.test_translate_cmd import (
    SCRIPTED,
    collapse,
    mirror,
    register,
    source_of,
    summary,
    wmt25_rows,
)
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


# ------------------------------------------------------------------ item 8: truncated outputs


class TruncatingBackend(ScriptedBackend):
    """Stops every output whose source contains 'long' at max_tokens, mid-character (U+FFFD)."""

    def generate_from_text(self, prompts, params, *, seeds=None, progress=None):
        outs = super().generate_from_text(prompts, params, seeds=seeds, progress=progress)
        for prompt, comps in zip(prompts, outs, strict=True):
            if "long" in source_of(prompt):
                for c in comps:
                    c.text, c.finish_reason = c.text + "\ufffd", "length"
        return outs


def test_truncated_outputs_are_counted_and_never_end_in_a_broken_character(tmp_path):
    model = register("tr-guard-trunc", lambda prompt, j: "翻訳" + source_of(prompt))
    rows = [{"id": "a", "src": "a long one", "src_lang": "en", "tgt_lang": "ja"}, {"id": "b", "src": "short", "src_lang": "en", "tgt_lang": "ja"}]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    res = invoke(["translate", str(inp), "-m", model, "--backend", "tests.translate.test_translate_guards:TruncatingBackend", "-o", str(out)])
    assert res.code == 0, res.stderr
    a, b = (json.loads(x) for x in out.read_text(encoding="utf-8").splitlines())
    assert a["hyp"] == "翻訳a long one" and "\ufffd" not in a["hyp"] and a["truncated"] is True
    assert "truncated" not in b
    s = summary(res.stderr)
    assert s["truncated_rows"] == 1 and s["truncated_outputs"] == {model: 1}
    assert "1 row(s) stopped at --max-tokens" in res.stderr
    assert json.loads(Path(f"{out}.meta.json").read_text())["translate"]["truncated_rows"] == 1
    # re-translating an output replaces what was said about the old translation
    res = invoke(["translate", str(out), "-m", model, *SCRIPTED])
    assert [r.get("truncated") for r in res.rows()] == [None, None]


def test_eval_reports_truncated_outputs_per_system(tmp_path):
    from tests.evaluate.test_eval_cmd import rows_for

    rows = rows_for()
    rows[1]["truncated"] = True  # the 'good' system's second segment was cut at --max-tokens
    res = invoke(["eval", str(write_jsonl(tmp_path / "rows.jsonl", rows))])
    assert res.code == 0, res.stderr
    systems = {s["system"]: s for s in json.loads(res.stdout)["results"][0]["systems"]}
    assert systems["good"]["truncated"] == 1 and systems["bad"].get("truncated", 0) == 0
    assert "good: 1 of 3 hypotheses were truncated" in res.stderr


# ------------------------------------------------------------------ item 6: --resume summaries


class InterruptingScripted(ScriptedBackend):
    calls = 0
    fail_at = 0

    def generate_from_text(self, prompts, params, *, seeds=None, progress=None):
        type(self).calls += 1
        if type(self).calls == type(self).fail_at:
            raise KeyboardInterrupt
        return super().generate_from_text(prompts, params, seeds=seeds, progress=progress)


def test_meta_summary_after_resume_describes_the_whole_output(tmp_path):
    model = register("tr-guard-resume", collapse)  # every document falls back: fallback_rate 1.0
    docs = [{**r, "id": f"{r['doc_id']}-{k}"} for k in range(4) for r in wmt25_rows()[:2]]  # 8 two/three-paragraph documents
    inp = write_jsonl(tmp_path / "in.jsonl", docs)
    common = ["translate", str(inp), "-m", model, "--chunk-rows", "1"]
    full = tmp_path / "full.jsonl"
    assert invoke([*common, *SCRIPTED, "-o", str(full)]).code == 0
    whole = json.loads(Path(f"{full}.meta.json").read_text())["translate"]
    out = tmp_path / "out.jsonl"
    InterruptingScripted.calls, InterruptingScripted.fail_at = 0, 7  # two calls per row: dies in row 4, 3 rows written
    res = invoke([*common, "-o", str(out), "--resume", "--backend", "tests.translate.test_translate_guards:InterruptingScripted"])
    assert res.code == 130 and len(Path(f"{out}.partial").read_text().splitlines()) == 3
    res = invoke([*common, *SCRIPTED, "-o", str(out), "--resume"])
    assert res.code == 0, res.stderr
    assert out.read_text() == full.read_text()
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    summary_ = meta["translate"]
    for key in ("rows", "documents", "document_chunks", "paragraph_fallbacks", "fallback_rate", "truncated_rows"):
        assert summary_[key] == whole[key], key
    assert summary_["rows"] == 8 and summary_["runs"] == 2 and meta["last_run"]["rows"] == 5
    assert not Path(f"{out}.partial.summary.json").exists()
    # resuming a finished output: still the whole output's summary
    assert invoke([*common, *SCRIPTED, "-o", str(out), "--resume"]).code == 0
    again = json.loads(Path(f"{out}.meta.json").read_text())["translate"]
    assert again["rows"] == 8 and again["paragraph_fallbacks"] == whole["paragraph_fallbacks"] and again["runs"] == 3


# ------------------------------------------------------------------ item 9: a directory that is not a model


def test_a_directory_that_is_not_a_model_names_what_is_missing(tmp_path, tiny_model):
    import shutil

    inp = write_jsonl(tmp_path / "in.jsonl", wmt25_rows()[:1])
    empty = tmp_path / "empty"
    empty.mkdir()
    res = invoke(["translate", str(inp), "-m", str(empty), "--backend", "transformers"])
    assert_user_error(res, str(empty), "missing config.json", "tokenizer files", "weights (*.safetensors)")
    assert "Couldn't instantiate" not in res.stderr
    no_tok = tmp_path / "no_tok"
    shutil.copytree(tiny_model, no_tok)
    for name in ("tokenizer.json", "tokenizer.model", "vocab.json"):
        (no_tok / name).unlink(missing_ok=True)
    res = invoke(["translate", str(inp), "-m", str(no_tok), "--backend", "transformers"])
    assert_user_error(res, str(no_tok), "tokenizer.json")
    assert "config.json;" not in res.stderr and "safetensors" not in res.stderr


# ------------------------------------------------------------------ item 13: compare two translate runs


def test_eval_compares_two_translate_runs_named_by_file_or_model(tmp_path):
    good = register("tr-guard-good", lambda prompt, j: {"One.": "一。", "Two.": "二。"}[source_of(prompt)])
    poor = register("tr-guard-poor", lambda prompt, j: "何か。")
    rows = [{"id": "s1", "src": "One.", "ref": "一。", "src_lang": "en", "tgt_lang": "ja"},
            {"id": "s2", "src": "Two.", "ref": "二。", "src_lang": "en", "tgt_lang": "ja"}]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    for model, folder in ((good, "a"), (poor, "b")):
        (tmp_path / folder).mkdir()
        res = invoke(["translate", str(inp), "-m", model, *SCRIPTED, "-o", str(tmp_path / folder / "out.jsonl")])
        assert res.code == 0, res.stderr
        assert all(json.loads(x)["model"] == model for x in (tmp_path / folder / "out.jsonl").read_text().splitlines())
    a, b = tmp_path / "a" / "out.jsonl", tmp_path / "b" / "out.jsonl"
    # same file name in two folders: the systems are named by the model in the provenance
    r = json.loads(invoke(["eval", str(a), str(b), "-m", "chrf"]).stdout)["results"][0]
    assert [(s["system"], s["model"]) for s in r["systems"]] == [(good, good), (poor, poor)]
    assert r["systems"][0]["scores"]["chrf"] == 100.0 > r["systems"][1]["scores"]["chrf"]
    # NAME=path names them; a paired test runs across the files
    res = invoke(["eval", f"greedy={a}", f"other={b}", "-m", "chrf", "--paired", "bs", "--paired-n", "50"])
    r = json.loads(res.stdout)["results"][0]
    assert [s["system"] for s in r["systems"]] == ["greedy", "other"] and "p_value" in r["systems"][1]["significance"]["chrf"]
    # the same system name in two files is refused
    assert_user_error(invoke(["eval", f"x={a}", f"x={b}"]), "system 'x' is also in")


def test_a_truncated_fusion_reply_is_counted_and_marked(tmp_path):
    cand = register("tr-guard-fcand", lambda prompt, j: f"候補{j}")
    fuser = register("tr-guard-fuser", lambda prompt, j: "融合")
    rows = [{"id": "a", "src": "a long one", "src_lang": "en", "tgt_lang": "ja"}]
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    res = invoke(["translate", str(inp), "-m", cand, "--mbr", "2", "--fuse", fuser,
                  "--backend", "tests.translate.test_translate_guards:TruncatingBackend"])
    assert res.code == 0, res.stderr
    (row,) = res.rows()
    assert row["hyp"] == "融合" and row["truncated"] is True and row["fused_by"] == fuser and row["model"] == cand
    assert summary(res.stderr)["truncated_outputs"][fuser] == 1
