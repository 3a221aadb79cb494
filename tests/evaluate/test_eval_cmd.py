"""`in2x eval` end to end through the real CLI: WMT24, text and JSONL inputs, significance,
segments, COMET via the worker, AutoRank, and every bad-input path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.util import assert_user_error, invoke, write_jsonl

EN_JA_ROWS = [
    {"id": "s1", "src": "The cat sat on the mat.", "ref": "猫がマットの上に座った。", "domain": "news", "doc_id": "d1"},
    {"id": "s2", "src": "The dog ran to the park.", "ref": "犬は公園へ走った。", "domain": "news", "doc_id": "d1"},
    {"id": "s3", "src": "Good morning.", "ref": "おはようございます。", "domain": "speech", "doc_id": "d2"},
]
HYPS = {
    "good": ["猫がマットの上に座った。", "犬は公園に走った。", "おはようございます。"],
    "bad": ["猫。", "", "こんにちは。"],  # an empty hypothesis is a valid, bad translation
}


def rows_for(systems=("good", "bad"), langs=True):
    out = []
    for name in systems:
        for seg, hyp in zip(EN_JA_ROWS, HYPS[name], strict=True):
            row = {**seg, "hyp": hyp, "system": name}
            if langs:
                row.update(src_lang="en", tgt_lang="ja")
            out.append(row)
    return out


def doc(res):
    assert res.code == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def wmt_text_files(shared_data, tmp_path, n=80, systems=("GPT-4", "Aya23")):
    d = shared_data / "wmt24" / "en-ja"
    def cut(src: Path, name: str) -> Path:
        lines = src.read_text(encoding="utf-8").split("\n")[1 : n + 1]  # skip the canary line
        out = tmp_path / name
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return out
    return (
        cut(d / "en-ja.txt", "src.txt"),
        cut(d / "en-ja.refA.txt", "ref.txt"),
        [cut(d / "system-outputs" / f"{s}.txt", f"{s}.txt") for s in systems],
    )


# --------------------------------------------------------------------------- WMT24 / text


def test_wmt24_mode_scores_equal_sacrebleu_with_breakdowns_segments_and_bootstrap(shared_data, tmp_path):
    from sacrebleu.metrics import BLEU, CHRF

    seg_path = tmp_path / "segments.jsonl"
    args = ["eval", "--wmt24", str(shared_data / "wmt24" / "en-ja"), "--systems", "GPT-4,Team-J", "--by", "domain,doc"]
    res = invoke([*args, "--paired", "bs", "--paired-n", "200", "--segments", str(seg_path)])
    out = doc(res)
    assert out["schema"] == "in2x.eval/1" and len(out["results"]) == 1
    r = out["results"][0]
    assert (r["pair"], r["segments"], r["baseline"]) == ("en-ja", 997, "GPT-4")
    assert [s["system"] for s in r["systems"]] == ["GPT-4", "Team-J"]
    assert r["metrics"]["bleu"]["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:ja-mecab")
    assert "nw:2" in r["metrics"]["chrf"]["signature"]
    d = shared_data / "wmt24" / "en-ja"
    ref = (d / "en-ja.refA.txt").read_text(encoding="utf-8").split("\n")[1:998]
    for entry in r["systems"]:
        hyp = (d / "system-outputs" / f"{entry['system']}.txt").read_text(encoding="utf-8").split("\n")[1:998]
        bleu = BLEU(tokenize="ja-mecab").corpus_score(hyp, [ref])
        assert entry["scores"]["bleu"] == bleu.score
        assert entry["scores"]["chrf"] == CHRF(word_order=2).corpus_score(hyp, [ref]).score
        # sacreBLEU's own breakdown ("60.7/32.8/20.1/12.8 (BP = 1.000 ratio = …)"), and it opens with
        # the 1-gram precision, not the score
        assert entry["verbose_score"]["bleu"] == bleu._verbose
        assert entry["verbose_score"]["bleu"].split("/")[0] == f"{bleu.precisions[0]:.1f}"
        assert set(entry["by"]["domain"]) == {"news", "social", "speech", "literary"}
        assert sum(g["segments"] for g in entry["by"]["domain"].values()) == 997
        assert len(entry["by"]["doc"]) == 170
        sig = entry["significance"]["bleu"]
        assert sig["low"] <= sig["mean"] <= sig["high"]
    assert r["systems"][0]["significance"]["bleu"]["p_value"] is None
    assert 0 < r["systems"][1]["significance"]["chrf"]["p_value"] <= 1
    assert r["significance"] == {"test": "bs", "samples": 200, "seed": 12345, "level": 0.95}
    seg_rows = [json.loads(x) for x in seg_path.read_text(encoding="utf-8").splitlines()]
    assert len(seg_rows) == 2 * 997 and not any("CANARY" in x["src"] for x in seg_rows)
    assert seg_rows[0]["system"] == "GPT-4" and set(seg_rows[0]["scores"]) == {"bleu", "chrf"}
    assert json.loads(Path(f"{seg_path}.meta.json").read_text())["command"] == "eval"
    assert out["provenance"]["seed"] == 12345 and out["provenance"]["config"]["wmt24"].endswith("en-ja")
    assert "Baseline: GPT-4" in res.stderr and "tok:ja-mecab" in res.stderr and "by domain" in res.stderr
    assert "--by doc: 170 groups" in res.stderr


def test_text_mode_equals_the_sacrebleu_command_line(shared_data, tmp_path):
    src, ref, hyps = wmt_text_files(shared_data, tmp_path)
    res = invoke(["eval", "--src", str(src), "--ref", str(ref), "--hyp", str(hyps[0]), "--hyp", f"aya={hyps[1]}", "-l", "en-ja", "-m", "bleu,chrf,ter"])
    r = doc(res)["results"][0]
    assert [s["system"] for s in r["systems"]] == ["GPT-4", "aya"]
    cli = Path(sys.executable).with_name("sacrebleu")
    proc = subprocess.run(
        [str(cli), str(ref), "-i", str(hyps[1]), "-m", "bleu", "chrf", "ter", "-cw", "2", "-tok", "ja-mecab", "-w", "10", "-f", "json"],
        capture_output=True, text=True, check=True,
    )
    theirs = {x["name"]: x for x in json.loads(proc.stdout)}
    ours = r["systems"][1]
    assert round(ours["scores"]["bleu"], 10) == theirs["BLEU"]["score"]
    assert round(ours["scores"]["chrf"], 10) == theirs["chrF2++"]["score"]
    assert round(ours["scores"]["ter"], 10) == theirs["TER"]["score"]
    assert ours["verbose_score"]["bleu"] == theirs["BLEU"]["verbose_score"]
    for key, name in (("bleu", "BLEU"), ("chrf", "chrF2++"), ("ter", "TER")):
        assert r["metrics"][key]["signature"] == theirs[name]["signature"]


def test_target_language_is_detected_when_not_given(shared_data, tmp_path):
    _, ref, hyps = wmt_text_files(shared_data, tmp_path, n=30, systems=("GPT-4",))
    res = invoke(["eval", "--ref", str(ref), "--hyp", str(hyps[0])])
    r = doc(res)["results"][0]
    assert r["tgt_lang"] == "ja" and "tok:ja-mecab" in r["metrics"]["bleu"]["signature"]
    assert "detected 'ja'" in res.stderr
    # one system with --paired: its bootstrap 95% interval, no p-value
    r = doc(invoke(["eval", "--ref", str(ref), "--hyp", str(hyps[0]), "-l", "en-ja", "--paired", "ar", "--seed", "3"]))["results"][0]
    assert r["significance"]["test"] == "bootstrap-ci" and r["significance"]["samples"] == 1000
    est = r["systems"][0]["significance"]["bleu"]
    assert est["p_value"] is None and est["low"] < r["systems"][0]["scores"]["bleu"] < est["high"]


# --------------------------------------------------------------------------- JSONL


def test_jsonl_rows_grouped_by_system_from_stdin_with_autorank_and_ar():
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows_for())
    res = invoke(["eval", "-", "-m", "chrf,bleu", "--autorank", "--paired", "ar", "--paired-n", "100", "--paired-ar-confidence", "50"], stdin=lines)
    r = doc(res)["results"][0]
    good, bad = r["systems"]
    assert (good["system"], bad["system"]) == ("good", "bad")
    assert good["scores"]["chrf"] > bad["scores"]["chrf"]
    assert [a["system"] for a in r["autorank"]] == ["good", "bad"]
    assert [a["autorank"] for a in r["autorank"]] == [1.0, 2.0]
    assert r["significance"]["test"] == "ar" and r["significance"]["confidence_samples"] == 50
    assert bad["significance"]["chrf"]["p_value"] is not None
    # the same rows with the system order swapped: the baseline is whichever comes first
    swapped = rows_for(("bad", "good"))
    res2 = invoke(["eval", "-", "-m", "chrf"], stdin="".join(json.dumps(x, ensure_ascii=False) + "\n" for x in swapped))
    assert doc(res2)["results"][0]["baseline"] == "bad"


def test_jsonl_aligns_systems_by_id_and_splits_language_pairs(tmp_path):
    rows = rows_for()
    rows = rows[3:][::-1] + rows[:3]  # the second system first and reversed: aligned by id
    zh = [{"id": "z1", "src": "猫", "ref": "猫", "hyp": "猫", "src_lang": "ja", "tgt_lang": "zh", "system": "good"}]
    path = write_jsonl(tmp_path / "rows.jsonl", rows + zh)
    seg_path = tmp_path / "seg.jsonl"
    out = doc(invoke(["eval", str(path), "-m", "bleu,chrf", "--segments", str(seg_path)]))
    pairs = {r["pair"]: r for r in out["results"]}
    assert set(pairs) == {"en-ja", "ja-zh"}
    assert "tok:zh" in pairs["ja-zh"]["metrics"]["bleu"]["signature"]
    assert [s["system"] for s in pairs["en-ja"]["systems"]] == ["bad", "good"]
    segs = [json.loads(x) for x in seg_path.read_text(encoding="utf-8").splitlines()]
    good_s2 = next(s for s in segs if s["system"] == "good" and s["id"] == "s2")
    assert good_s2["hyp"] == HYPS["good"][1]
    bad_s2 = next(s for s in segs if s["system"] == "bad" and s["id"] == "s2")
    assert bad_s2["hyp"] == "" and bad_s2["scores"]["chrf"] == 0.0  # scored, not dropped


def test_comet_through_the_worker_with_a_tiny_checkpoint(tiny_comet, tmp_path, monkeypatch):
    from in2x_cli.comet import get_client

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = write_jsonl(tmp_path / "rows.jsonl", rows_for())
    seg_path = tmp_path / "seg.jsonl"
    res = invoke(["eval", str(path), "-m", f"chrf,comet={tiny_comet}", "--segments", str(seg_path), "--paired", "bs", "--paired-n", "100"])
    r = doc(res)["results"][0]
    assert "model:" in r["metrics"]["comet"]["signature"] and "nrefs:1" in r["metrics"]["comet"]["signature"]
    segs = [json.loads(x) for x in seg_path.read_text(encoding="utf-8").splitlines()]
    good = [s["scores"]["comet"] for s in segs if s["system"] == "good"]
    direct = get_client(str(tiny_comet)).score([{"src": x["src"], "mt": h, "ref": x["ref"]} for x, h in zip(EN_JA_ROWS, HYPS["good"], strict=True)])
    assert good == pytest.approx(direct, abs=1e-5)
    assert r["systems"][0]["scores"]["comet"] == pytest.approx(sum(direct) / 3, abs=1e-5)
    assert r["systems"][1]["significance"]["comet"]["p_value"] is not None
    # a COMET model name while offline: exit 2 with the worker's message, quickly
    res = invoke(["eval", str(path), "-m", "bleu,comet"])
    assert_user_error(res, "Unbabel/wmt22-comet-da", "HF_HUB_OFFLINE=1")
    # COMET in text mode needs the sources
    ref = tmp_path / "ref.txt"
    ref.write_text("a\nb\n", encoding="utf-8")
    assert_user_error(invoke(["eval", "--ref", str(ref), "--hyp", str(ref), "-l", "en-de", "-m", f"comet={tiny_comet}"]), "--src")


# --------------------------------------------------------------------------- AutoRank


def test_autorank_wmt25_files_and_our_outputs_together(shared_data, tmp_path):
    wmt25 = shared_data / "wmt25" / "automatic-scores"
    res = invoke(["eval", "autorank", str(wmt25), "--pair", "en-ja_JP", "--top", "5"])
    out = doc(res)
    (entry,) = out["pairs"]
    assert entry["pair"] == "en-ja_JP" and len(entry["systems"]) == 43
    assert [s["system"] for s in entry["systems"][:2]] == ["Shy", "In2x"]
    assert entry["systems"][1]["autorank"] == pytest.approx(2.29, abs=0.005)
    assert "MetricX-24-Hybrid-XL" in entry["metrics"] and entry["lower_is_better"] == []
    assert "AutoRank en-ja_JP: 43 systems" in res.stderr and "Gemini-2.5-Pro" in res.stderr
    # our system's segment scores ranked among the published ones (names mapped with --alias)
    ours = tmp_path / "ours.jsonl"
    write_jsonl(ours, [
        {"system": "mine", "src_lang": "en", "tgt_lang": "ja", "domain": "news", "scores": {"xcomet": 0.9, "kiwi": 0.9}},
        {"system": "mine", "src_lang": "en", "tgt_lang": "ja", "domain": "news", "scores": {"xcomet": 0.8, "kiwi": None}},
    ])
    mixed = ["eval", "autorank", str(wmt25), str(ours), "--pair", "en-ja_JP", "--alias", "xcomet=XCOMET-XL", "--alias", "kiwi=CometKiwi-XL"]
    assert_user_error(invoke(mixed), "different segment sets", "43 system(s) on WMT25 en-ja_JP", "'mine'", "--allow-mixed")
    res = invoke([*mixed, "--allow-mixed"])
    entry = doc(res)["pairs"][0]
    assert any("different segment sets" in m for m in entry["mixed"])
    assert entry["metrics"] == ["CometKiwi-XL", "XCOMET-XL"]
    assert entry["systems"][0]["system"] == "mine" and entry["systems"][0]["scores"]["XCOMET-XL"] == pytest.approx(0.85)
    assert "not every system has" in res.stderr
    # a domain filter works on both
    entry = doc(invoke(["eval", "autorank", str(wmt25), "--pair", "ja-zh_CN", "--domain", "literary"]))["pairs"][0]
    assert entry["domain"] == "literary" and len(entry["systems"]) == 41


def test_autorank_reads_eval_json_outputs(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", rows_for())
    scores = tmp_path / "scores.json"
    res = invoke(["eval", str(path), "-m", "chrf,ter", "-o", str(scores), "--by", "domain"])
    assert res.code == 0 and res.stdout == "" and json.loads(scores.read_text())["schema"] == "in2x.eval/1"
    out = doc(invoke(["eval", "autorank", str(scores)]))
    entry = out["pairs"][0]
    assert entry["pair"] == "en-ja" and entry["lower_is_better"] == ["ter"]
    assert [s["system"] for s in entry["systems"]] == ["good", "bad"]
    speech = doc(invoke(["eval", "autorank", str(scores), "--domain", "speech"]))["pairs"][0]
    assert speech["systems"][0]["scores"]["chrf"] == 100.0


def test_autorank_ranks_one_run_identically_from_the_flag_the_json_and_the_segments(shared_data, tmp_path):
    """WMT25's system score is the mean segment score per metric. `eval --autorank`, `eval
    autorank EVAL.json` and `eval autorank SEGMENTS.jsonl` of one run must agree exactly; corpus
    BLEU/chrF/TER (what the JSON's "scores" hold) would give other x, z and AutoRank values."""
    d = shared_data / "wmt24" / "en-ja"
    def lines(path: Path) -> list[str]:
        return path.read_text(encoding="utf-8").split("\n")[1:61]  # 60 segments after the canary
    src, ref = lines(d / "en-ja.txt"), lines(d / "en-ja.refA.txt")
    rows = [
        {"id": i, "src": s, "ref": r, "hyp": h, "system": name, "domain": ("news", "speech")[i % 2], "src_lang": "en", "tgt_lang": "ja"}
        for name in ("GPT-4", "Aya23", "Team-J", "IOL-Research")
        for i, (s, r, h) in enumerate(zip(src, ref, lines(d / "system-outputs" / f"{name}.txt"), strict=True))
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    scores, seg_path = tmp_path / "scores.json", tmp_path / "seg.jsonl"
    res = invoke(["eval", str(path), "-m", "bleu,chrf,ter", "--by", "domain", "--autorank", "--segments", str(seg_path), "-o", str(scores)])
    assert res.code == 0, res.stderr[-3000:]
    result = json.loads(scores.read_text())["results"][0]
    from_flag = result["autorank"]
    from_json = doc(invoke(["eval", "autorank", str(scores)]))["pairs"][0]
    from_segments = doc(invoke(["eval", "autorank", str(seg_path)]))["pairs"][0]
    assert from_json["system_score"] == from_segments["system_score"] == "segment mean"
    assert from_json["lower_is_better"] == from_segments["lower_is_better"] == ["ter"]
    assert from_json["systems"] == from_segments["systems"] == from_flag  # bit-identical x, z, mean z, AutoRank
    # x is the mean of the segment scores in the --segments file, which differs from corpus BLEU
    seg_rows = [json.loads(x) for x in seg_path.read_text(encoding="utf-8").splitlines()]
    gpt4 = next(s for s in result["systems"] if s["system"] == "GPT-4")
    ranked = next(r for r in from_json["systems"] if r["system"] == "GPT-4")
    bleu = [r["scores"]["bleu"] for r in seg_rows if r["system"] == "GPT-4"]
    assert ranked["scores"]["bleu"] == gpt4["segment_means"]["bleu"] == pytest.approx(sum(bleu) / len(bleu), rel=1e-12)
    assert gpt4["segment_means"]["bleu"] != gpt4["scores"]["bleu"]
    from in2x_cli.core.autorank import autorank

    on_corpus = autorank({s["system"]: s["scores"] for s in result["systems"]}, lower_is_better=["ter"])
    assert [r.to_dict()["autorank"] for r in on_corpus] != [r["autorank"] for r in from_flag]  # the test can tell the two apart
    # one domain: the JSON's --by domain breakdown and the segment rows of that domain agree too
    speech_json = doc(invoke(["eval", "autorank", str(scores), "--domain", "speech"]))["pairs"][0]["systems"]
    speech_segments = doc(invoke(["eval", "autorank", str(seg_path), "--domain", "speech"]))["pairs"][0]["systems"]
    assert speech_json == speech_segments and speech_json != from_json["systems"]
    # an eval JSON without segment means (older in2x): ranked on corpus scores, and the output says so
    old = json.loads(scores.read_text())
    for entry in old["results"][0]["systems"]:
        del entry["segment_means"]
    old_path = tmp_path / "old.json"
    old_path.write_text(json.dumps(old), encoding="utf-8")
    res = invoke(["eval", "autorank", str(old_path)])
    fallback = doc(res)["pairs"][0]
    assert fallback["system_score"].startswith("corpus score for ")
    assert "ranked on corpus scores" in res.stderr and "old.json" in res.stderr
    assert next(r for r in fallback["systems"] if r["system"] == "GPT-4")["scores"]["bleu"] == gpt4["scores"]["bleu"]


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_exit_2_with_precise_messages(tmp_path):
    src = tmp_path / "src.txt"
    src.write_text("a b c\nd e f\n", encoding="utf-8")
    short = tmp_path / "short.txt"
    short.write_text("a b c\n", encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    base = ["eval", "--src", str(src), "--ref", str(src), "-l", "en-de"]
    assert_user_error(invoke([*base, "--hyp", str(short)]), "short.txt", "1 line, but", "has 2")
    assert_user_error(invoke([*base, "--hyp", str(empty)]), "empty.txt", "empty hypothesis file")
    assert_user_error(invoke([*base, "--hyp", str(src), "-m", "bleu,metoer"]), "unknown metric 'metoer'")
    assert_user_error(invoke([*base, "--hyp", str(src), "--hyp", str(src)]), "used twice")
    assert_user_error(invoke([*base, "--hyp", str(src), "--paired", "t"]), "--paired")
    assert_user_error(invoke([*base, "--hyp", str(src), "--by", "genre"]), "--by 'genre'")
    assert_user_error(invoke([*base, "--hyp", str(src), "--tokenize", "nope"]), "--tokenize 'nope'")
    assert_user_error(invoke([*base, "--hyp", str(tmp_path / "missing.txt")]), "missing.txt", "no such file")
    assert_user_error(invoke(["eval", "--src", str(src), "--hyp", str(src), "-l", "en-de"]), "bleu, chrf compare with references", "--ref")
    assert_user_error(invoke(["eval", "--systems", "x", "--hyp", str(src), "--ref", str(src)]), "--systems")
    assert_user_error(invoke(["eval", "--ref", str(src)], stdin=""), "--src and --ref go with line-aligned --hyp")
    rows = rows_for()
    del rows[4]["ref"]
    path = write_jsonl(tmp_path / "noref.jsonl", rows)
    assert_user_error(invoke(["eval", str(path)]), "noref.jsonl:5", "different 'ref'")
    rows = [{k: v for k, v in r.items() if k != "ref"} for r in rows_for()]
    path = write_jsonl(tmp_path / "noref2.jsonl", rows)
    assert_user_error(invoke(["eval", str(path)]), "noref2.jsonl:1", "no reference", "bleu, chrf")
    rows = rows_for()
    del rows[2]["hyp"]
    assert_user_error(invoke(["eval", str(write_jsonl(tmp_path / "nohyp.jsonl", rows))]), "nohyp.jsonl:3", "'hyp'")
    rows = rows_for()[:-1]
    assert_user_error(invoke(["eval", str(write_jsonl(tmp_path / "short.jsonl", rows))]), "short.jsonl", "'bad' has 2 segments")
    assert_user_error(invoke(["eval", "-"], stdin=""), "<stdin>", "empty input")
    assert_user_error(invoke(["eval", "-", "-o", str(tmp_path / "no" / "out.json")], stdin="{}"), "does not exist")


def test_bad_wmt24_and_autorank_inputs(shared_data, tmp_path):
    assert_user_error(invoke(["eval", "--wmt24", str(shared_data / "wmt24" / "en-ja"), "--systems", "GPT-5"]), "unknown system 'GPT-5'")
    assert_user_error(invoke(["eval", "--wmt24", str(tmp_path)]), "not a WMT24 pair directory")
    assert_user_error(invoke(["eval", "autorank", str(tmp_path / "nope")]), "no such file or directory")
    wmt25 = shared_data / "wmt25" / "automatic-scores"
    assert_user_error(invoke(["eval", "autorank", str(wmt25), "--pair", "en-de_DE"]), "no scores for language pair 'en-de'")
    assert_user_error(invoke(["eval", "autorank", str(wmt25), "--pair", "en-ja_JP", "-m", "BLEU"]), "metric 'BLEU' is missing")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"language_pair": "en-ja_JP", "metric_scores": {"m": [1, "x"]}}])
    assert_user_error(invoke(["eval", "autorank", str(bad)]), "bad.jsonl:1", "metric_scores['m']")
    assert_user_error(invoke(["eval", "autorank", str(wmt25), "--alias", "x"]), "OURS=THEIRS")
    dup = tmp_path / "In2x.jsonl"
    dup.write_text((wmt25 / "In2x.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    assert_user_error(invoke(["eval", "autorank", str(wmt25), str(dup)]), "system 'In2x'", "also in")


def test_wmt24_with_our_own_system_beside_the_published_ones(shared_data, tmp_path):
    import shutil

    d = shared_data / "wmt24" / "en-ja"
    ours = tmp_path / "ours.txt"
    shutil.copy(d / "system-outputs" / "GPT-4.txt", ours)  # 998 lines, canary included
    res = invoke(["eval", "--wmt24", str(d), "--systems", "Aya23,GPT-4", "--hyp", f"mine={ours}", "-m", "bleu"])
    assert res.code == 0, res.stderr
    systems = {s["system"]: s["scores"]["bleu"] for s in json.loads(res.stdout)["results"][0]["systems"]}
    assert list(systems) == ["Aya23", "GPT-4", "mine"] and systems["mine"] == systems["GPT-4"]
    short = tmp_path / "short.txt"
    short.write_text("a\n" * 996, encoding="utf-8")  # 997 (canary stripped) is aligned; 996 is not
    assert_user_error(invoke(["eval", "--wmt24", str(d), "--systems", "Aya23", "--hyp", str(short)]), "short.txt", "canary line included")


def test_split_paragraphs_scores_each_paragraph_of_a_document(tmp_path):
    rows = [
        {"id": "d1", "src": "A b.\n\nC d.", "ref": "x y\n\nz w", "hyp": "x y\n\nz", "hyp_paragraphs": ["x y", "z"], "src_lang": "en", "tgt_lang": "de", "system": "s"},
        {"id": "d2", "src": "E.", "ref": "q", "hyp": "q", "src_lang": "en", "tgt_lang": "de", "system": "s"},
    ]
    path = write_jsonl(tmp_path / "docs.jsonl", rows)
    seg_path = tmp_path / "seg.jsonl"
    res = invoke(["eval", str(path), "--split-paragraphs", "-m", "chrf", "--segments", str(seg_path)])
    assert res.code == 0, res.stderr
    segs = [json.loads(x) for x in seg_path.read_text().splitlines()]
    assert [s["id"] for s in segs] == ["d1#p1", "d1#p2", "d2#p1"]
    assert [s["hyp"] for s in segs] == ["x y", "z", "q"] and segs[0]["doc_id"] == "d1"
    bad = write_jsonl(tmp_path / "bad.jsonl", [{**rows[0], "hyp": "only one", "hyp_paragraphs": ["only one"]}])
    assert_user_error(invoke(["eval", str(bad), "--split-paragraphs"]), "bad.jsonl:1", "paragraph counts differ")
