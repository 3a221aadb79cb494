"""issue 20: `in2x eval` refuses or warns instead of giving a wrong number with exit 0 —
contradicting language pairs, edited hypotheses, canary lines, mixed AutoRank inputs, usage
errors. Real WMT24/WMT25 data where the bug showed on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.evaluate.test_eval_cmd import doc, rows_for
from tests.util import assert_user_error, invoke, write_jsonl

# ------------------------------------------------------------------ item 2: -l contradicts the data


def test_lang_pair_contradicting_a_wmt24_directory_is_an_error(shared_data):
    res = invoke(["eval", "--wmt24", str(shared_data / "wmt24" / "en-ja"), "--systems", "GPT-4", "-l", "ja-en"])
    assert_user_error(res, "-l/--lang-pair ja-en", "en-ja")


def test_lang_pair_contradicting_the_rows_is_an_error_naming_the_row(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", rows_for())
    assert_user_error(invoke(["eval", str(path), "-l", "en-zh"]), f"{path}:1", "en-zh", "en-ja", "'ja'")
    # agreeing with the data (or filling in missing languages) is fine
    assert doc(invoke(["eval", str(path), "-l", "en-ja"]))["results"][0]["pair"] == "en-ja"
    bare = write_jsonl(tmp_path / "bare.jsonl", rows_for(langs=False))
    r = doc(invoke(["eval", str(bare), "-l", "en-ja"]))["results"][0]
    assert r["pair"] == "en-ja" and "tok:ja-mecab" in r["metrics"]["bleu"]["signature"]


# ------------------------------------------------------------------ item 3: edited hyp vs hyp_paragraphs

DOC_ROW = {"id": "d1", "src": "One.\n\nTwo.", "ref": "一。\n\n二。", "src_lang": "en", "tgt_lang": "ja"}


def test_split_paragraphs_scores_an_edited_hyp_not_the_stale_paragraphs(tmp_path):
    unedited = {**DOC_ROW, "system": "mt", "hyp": "一つ。\n\n二つ。", "hyp_paragraphs": ["一つ。", "二つ。"]}
    edited = {**unedited, "system": "post-edit", "hyp": "一。\n\n二。"}  # hyp fixed, hyp_paragraphs stale
    path = write_jsonl(tmp_path / "docs.jsonl", [unedited, edited])
    res = invoke(["eval", str(path), "--split-paragraphs", "-m", "chrf"])
    r = doc(res)["results"][0]
    scores = {s["system"]: s["scores"]["chrf"] for s in r["systems"]}
    assert scores["post-edit"] == 100.0 and scores["mt"] < 100.0
    assert "1 row(s) have a 'hyp' that differs from their joined 'hyp_paragraphs'" in res.stderr
    # an edit that breaks the paragraph structure is refused, naming the row
    broken = {**edited, "hyp": "一。二。"}
    path = write_jsonl(tmp_path / "broken.jsonl", [broken])
    assert_user_error(invoke(["eval", str(path), "--split-paragraphs"]), f"{path}:1", "differs from the joined 'hyp_paragraphs'")


# ------------------------------------------------------------------ item 5: the WMT24 canary line


def _wmt24_files(shared_data: Path, tmp_path: Path, system: str = "GPT-4") -> tuple[Path, Path, Path]:
    d = shared_data / "wmt24" / "en-ja"
    return d / "en-ja.txt", d / "en-ja.refA.txt", d / "system-outputs" / f"{system}.txt"


def test_text_mode_drops_the_canary_line_and_says_so_once(shared_data, tmp_path):
    src, ref, hyp = _wmt24_files(shared_data, tmp_path)
    res = invoke(["eval", "--src", str(src), "--ref", str(ref), "--hyp", f"GPT-4={hyp}", "-l", "en-ja", "-m", "bleu"])
    text = doc(res)["results"][0]
    wmt = doc(invoke(["eval", "--wmt24", str(shared_data / "wmt24" / "en-ja"), "--systems", "GPT-4", "-m", "bleu"]))["results"][0]
    assert text["segments"] == 997 and text["systems"][0]["scores"]["bleu"] == wmt["systems"][0]["scores"]["bleu"]
    assert res.stderr.count("canary line") == 1
    # a system file with the canary already stripped (997 lines) lines up with the same segments
    stripped = tmp_path / "stripped.txt"
    stripped.write_text("\n".join(hyp.read_text(encoding="utf-8").split("\n")[1:]), encoding="utf-8")
    again = doc(invoke(["eval", "--src", str(src), "--ref", str(ref), "--hyp", f"GPT-4={stripped}", "-m", "bleu"]))["results"][0]
    assert again["systems"][0]["scores"]["bleu"] == text["systems"][0]["scores"]["bleu"]


def test_wmt24_hyp_without_the_canary_line_is_accepted(shared_data, tmp_path):
    d = shared_data / "wmt24" / "en-ja"
    lines = (d / "system-outputs" / "Aya23.txt").read_text(encoding="utf-8").split("\n")
    mine = tmp_path / "mine.txt"
    mine.write_text("\n".join(lines[1:998]) + "\n", encoding="utf-8")  # 997 lines, canary stripped
    res = invoke(["eval", "--wmt24", str(d), "--systems", "Aya23", "--hyp", f"mine={mine}", "-m", "bleu"])
    r = doc(res)["results"][0]
    scores = {s["system"]: s["scores"]["bleu"] for s in r["systems"]}
    assert scores["mine"] == scores["Aya23"]
    assert res.stderr.count("canary line") == 1
    short = tmp_path / "short.txt"
    short.write_text("\n".join(lines[1:900]) + "\n", encoding="utf-8")
    assert_user_error(invoke(["eval", "--wmt24", str(d), "--hyp", str(short)]), "899 lines", "997 without the canary line")


# ------------------------------------------------------------------ item 12: usage errors, -q/-v anywhere


def test_usage_errors_are_one_line_and_global_flags_work_after_the_subcommand(tmp_path):
    for args, fragment in (
        (["eval", "--bogus"], "No such option: --bogus"),
        (["eval", "--paired-n", "abc", "x.jsonl"], "'--paired-n'"),
        (["eval", "autorank"], "Missing argument 'INPUTS'"),
        (["translate", "x", "--model"], "requires an argument"),
    ):
        res = invoke(args)
        assert_user_error(res, fragment)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    path = write_jsonl(tmp_path / "rows.jsonl", rows_for())
    quiet = invoke(["eval", str(path), "-q"])
    assert quiet.code == 0 and quiet.stderr == ""
    assert json.loads(quiet.stdout)["results"][0]["pair"] == "en-ja"
    assert "bleu:" in invoke(["eval", "-v", str(path)]).stderr


# ------------------------------------------------------------------ item 15: help defaults


def test_help_shows_no_contradicting_zero_defaults():
    for args, option in ((["eval", "score", "--help"], "--paired-n"), (["eval", "autorank", "--help"], "--top")):
        res = invoke(args)
        text = res.stdout.split(option, 1)[1].split("\n  -", 1)[0]
        assert "[default: 0]" not in text, text
    assert_user_error(invoke(["eval", "autorank", "x", "--top", "0"]), "--top")


# ------------------------------------------------------------------ item 4: AutoRank ranks like with like


def _rows(shared_data: Path, system: str, start: int, n: int) -> list[dict]:
    d = shared_data / "wmt24" / "en-ja"
    def lines(path: Path) -> list[str]:
        return path.read_text(encoding="utf-8").split("\n")[1 + start : 1 + start + n]
    src, ref, hyp = lines(d / "en-ja.txt"), lines(d / "en-ja.refA.txt"), lines(d / "system-outputs" / f"{system}.txt")
    return [{"id": start + i, "src": s, "ref": r, "hyp": h, "system": system, "src_lang": "en", "tgt_lang": "ja"}
            for i, (s, r, h) in enumerate(zip(src, ref, hyp, strict=True))]


def test_autorank_refuses_different_segment_sets_and_metric_signatures(shared_data, tmp_path):
    def score(name: str, rows: list[dict], *extra: str) -> Path:
        out = tmp_path / f"{name}.json"
        assert invoke(["eval", str(write_jsonl(tmp_path / f"{name}.jsonl", rows)), "-m", "bleu,chrf", "-o", str(out), *extra]).code == 0
        return out

    a = score("a", _rows(shared_data, "GPT-4", 0, 50))
    b = score("b", _rows(shared_data, "Aya23", 0, 60))  # ten more segments: not the same test set
    assert_user_error(invoke(["eval", "autorank", str(a), str(b)]), "different segment sets", "50 segments", "60 segments", "--allow-mixed")
    res = invoke(["eval", "autorank", str(a), str(b), "--allow-mixed"])
    assert doc(res)["pairs"][0]["mixed"] and "--allow-mixed: the systems were scored on different segment sets" in res.stderr
    # the same 50 segments, but BLEU with another tokenizer: a different metric
    c = score("c", _rows(shared_data, "Aya23", 0, 50), "--tokenize", "char")
    assert_user_error(invoke(["eval", "autorank", str(a), str(c)]), "metric 'bleu' was computed differently", "tok:char", "tok:ja-mecab")
    # like with like ranks, from eval JSON and from --segments files alike
    d = score("d", _rows(shared_data, "Aya23", 0, 50))
    assert [s["system"] for s in doc(invoke(["eval", "autorank", str(a), str(d)]))["pairs"][0]["systems"]] == ["GPT-4", "Aya23"]
    seg_a, seg_d = tmp_path / "a.seg.jsonl", tmp_path / "d.seg.jsonl"
    for rows, seg in ((_rows(shared_data, "GPT-4", 0, 50), seg_a), (_rows(shared_data, "Aya23", 0, 50), seg_d)):
        assert invoke(["eval", str(write_jsonl(tmp_path / "x.jsonl", rows)), "--segments", str(seg), "-o", str(tmp_path / "x.json")]).code == 0
    assert len(doc(invoke(["eval", "autorank", str(seg_a), str(seg_d)]))["pairs"][0]["systems"]) == 2
    assert_user_error(invoke(["eval", "autorank", str(seg_a), str(b)]), "different segment sets")


# ------------------------------------------------------------------ item 10: an unknown AutoRank domain


def test_autorank_unknown_domain_lists_the_domains(shared_data, tmp_path):
    wmt25 = str(shared_data / "wmt25" / "automatic-scores")
    res = invoke(["eval", "autorank", wmt25, "--pair", "en-ja_JP", "--domain", "nosuch"])
    assert_user_error(res, "no scores for domain 'nosuch'", "literary", "news", "speech")
    assert "language pair" not in res.stderr
    scores = tmp_path / "scores.json"
    assert invoke(["eval", str(write_jsonl(tmp_path / "rows.jsonl", rows_for())), "--by", "domain", "-o", str(scores)]).code == 0
    assert_user_error(invoke(["eval", "autorank", str(scores), "--domain", "nosuch"]), "domain 'nosuch'", "news, speech")


# ------------------------------------------------------------------ item 16: tables, COMET signature


def _table_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("│")]


def test_autorank_table_is_sorted_by_rank_with_aligned_decimals(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", rows_for(("bad", "good")))  # the baseline is the worse system
    res = invoke(["eval", str(path), "--autorank", "--paired", "bs", "--paired-n", "100", "-m", "bleu,chrf"])
    out = doc(res)["results"][0]
    assert [s["system"] for s in out["systems"]] == ["bad", "good"]  # the JSON keeps the input order
    lines = _table_lines(res.stderr)
    assert "good" in lines[0] and "Baseline: bad" in lines[1], res.stderr
    for column in range(1, 7):  # bleu, ±, p, chrf, ±, p: the decimal points line up
        cells = [c for c in (ln.split("│")[column + 1] for ln in lines) if c.strip()]
        assert len({c.index(".") for c in cells}) == 1, cells


def test_autorank_command_table_uses_fixed_decimals(shared_data):
    res = invoke(["eval", "autorank", str(shared_data / "wmt25" / "automatic-scores"), "--pair", "en-ja_JP", "--top", "43"])
    assert res.code == 0
    for line in _table_lines(res.stderr):
        for cell in line.split("│")[4:-1]:  # the metric columns
            assert "e" not in cell and len(cell.strip().split(".")[1]) in (2, 4), line


def test_comet_signature_carries_the_comet_version_and_numerics(tiny_comet, comet_python, tmp_path, monkeypatch):
    """The COMET signature names unbabel-comet's version and how the worker computed; --comet-numerics
    comet-score reproduces the comet-score command (float16 weights, matmul precision high) exactly."""
    import os
    import subprocess

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src, ref, hyp = (tmp_path / f"{n}.txt" for n in ("src", "ref", "hyp"))
    rows = rows_for(("good",))
    for path, key in ((src, "src"), (ref, "ref"), (hyp, "hyp")):
        path.write_text("\n".join(r[key] for r in rows) + "\n", encoding="utf-8")
    args = ["eval", "--src", str(src), "--ref", str(ref), "--hyp", str(hyp), "-l", "en-ja", "-m", f"comet={tiny_comet}"]
    seg32, seg16 = tmp_path / "s32.jsonl", tmp_path / "s16.jsonl"
    r = doc(invoke([*args, "--segments", str(seg32)]))["results"][0]
    assert "|comet:2.2.7|matmul:highest|dtype:float32|" in r["metrics"]["comet"]["signature"], r["metrics"]["comet"]["signature"]
    r16 = doc(invoke([*args, "--comet-numerics", "comet-score", "--segments", str(seg16)]))["results"][0]
    assert "|matmul:high|dtype:float16|" in r16["metrics"]["comet"]["signature"]
    out = tmp_path / "cs.json"
    cli = Path(comet_python).with_name("comet-score")
    subprocess.run([str(cli), "-s", str(src), "-r", str(ref), "-t", str(hyp), "--model", str(tiny_comet / "checkpoints" / "model.ckpt"),
                    "--gpus", "0", "--quiet", "--to_json", str(out)], check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    theirs = [row["COMET"] for row in next(iter(json.loads(out.read_text()).values()))]
    ours32 = [json.loads(x)["scores"]["comet"] for x in seg32.read_text().splitlines()]
    ours16 = [json.loads(x)["scores"]["comet"] for x in seg16.read_text().splitlines()]
    assert ours16 == pytest.approx(theirs, abs=1e-6)  # the same numbers as comet-score
    assert max(abs(a - b) for a, b in zip(ours32, theirs, strict=True)) <= 1e-3  # full float32: close, not equal
    assert_user_error(invoke([*args, "--comet-numerics", "low"]), "--comet-numerics")


# ------------------------------------------------------------------ item 17: the official repositories' layouts


def test_importers_read_the_official_repository_layouts(shared_data, tmp_path):
    """wmt24-news-systems keeps txt/{sources,references,documents}/<pair>.* and
    txt/system-outputs/<pair>/<System>.txt; wmt25-general-mt keeps data/automatic_scores/. Built here
    from links to the shared copy (nothing is copied)."""
    flat = shared_data / "wmt24" / "en-ja"
    txt = tmp_path / "wmt24-news-systems" / "txt"
    for folder, name in (("sources", "en-ja.txt"), ("references", "en-ja.refA.txt"), ("documents", "en-ja.docs")):
        (txt / folder).mkdir(parents=True)
        (txt / folder / name).symlink_to(flat / name)
    (txt / "system-outputs" / "en-ja").mkdir(parents=True)
    for system in ("GPT-4", "Team-J"):
        (txt / "system-outputs" / "en-ja" / f"{system}.txt").symlink_to(flat / "system-outputs" / f"{system}.txt")
    want = doc(invoke(["eval", "--wmt24", str(flat), "--systems", "GPT-4,Team-J", "-m", "bleu"]))["results"][0]
    got = doc(invoke(["eval", "--wmt24", str(txt / "en-ja"), "-m", "bleu"]))["results"][0]
    assert (got["pair"], got["segments"]) == ("en-ja", 997)
    assert [s["scores"] for s in got["systems"]] == [s["scores"] for s in want["systems"]]
    res = invoke(["translate", "--wmt24", str(txt / "en-ja"), "--prepare"])
    assert res.code == 0 and len(res.rows()) == len(invoke(["translate", "--wmt24", str(flat), "--prepare"]).rows())
    repo25 = tmp_path / "wmt25-general-mt"
    (repo25 / "data").mkdir(parents=True)
    (repo25 / "data" / "automatic_scores").symlink_to(shared_data / "wmt25" / "automatic-scores")
    entry = doc(invoke(["eval", "autorank", str(repo25), "--pair", "en-ja_JP"]))["pairs"][0]
    assert len(entry["systems"]) == 43 and entry["systems"][1]["system"] == "In2x"


def test_readme_says_where_the_shared_data_comes_from():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "../shared/data" in readme
    section = readme.split("### Where `../shared/data` comes from", 1)[1]
    for repo in ("wmt-conference/wmt24-news-systems", "wmt-conference/wmt25-general-mt"):
        assert repo in section
    assert "--wmt24 wmt24-news-systems/txt/en-ja" in section  # an importer for the repository as cloned


def test_options_of_metrics_not_asked_for_are_errors(tmp_path):
    """--judge-* without gemba-esa and --comet-numerics without a COMET metric would change nothing."""
    path = write_jsonl(tmp_path / "docs.jsonl", [{**DOC_ROW, "system": "mt", "hyp": DOC_ROW["ref"]}])
    assert_user_error(invoke(["eval", str(path), "-m", "chrf", "--judge-model", "m"]), "--judge-model applies only to -m gemba-esa")
    assert_user_error(invoke(["eval", str(path), "-m", "chrf", "--judge-retries", "0", "--judge-backend", "vllm"]),
                      "--judge-backend, --judge-retries apply only to -m gemba-esa")
    assert_user_error(invoke(["eval", str(path), "-m", "bleu", "--comet-numerics", "comet-score"]), "--comet-numerics only applies to COMET")
    assert doc(invoke(["eval", str(path), "-m", "chrf"]))["results"][0]["systems"][0]["scores"]["chrf"] == 100.0
