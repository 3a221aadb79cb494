"""``in2x translate --fuse`` and ``--mbr-method`` end to end through the real CLI: scripted
backends for exact behaviour, the tiny model (and tiny COMET checkpoints) for the real paths."""

from __future__ import annotations

import json
import math

import pytest

from tests.fakes import CALLS
from tests.translate.test_translate_cmd import DOC1, SCRIPTED, register, source_of, summary, user_content
from tests.util import assert_user_error, invoke, write_jsonl


def sampler(prompt: str, j: int) -> str:
    """Aligned candidates that differ by sample index."""
    return "\n\n".join(f"<{p}#{j}>" for p in source_of(prompt).split("\n\n"))


def fusion_source(prompt: str) -> str:
    return user_content(prompt).split("Source:\n", 1)[1].split("\n\nCandidate 1:\n", 1)[0]


def fusion_candidates(prompt: str) -> list[str]:
    body = user_content(prompt).split("\n\nCandidate 1:\n", 1)[1]
    parts = body.split("\n\nCandidate ")
    return [parts[0]] + [p.split(":\n", 1)[1] for p in parts[1:]]


def rows():
    return [
        {"id": "d1", "src_lang": "en", "tgt_lang": "ja", "src": DOC1},
        {"id": "s2", "src_lang": "en", "tgt_lang": "ja", "src": "Just one."},
    ]


def test_fuse_writes_one_translation_from_numbered_candidates(tmp_path):
    cand = register("fz-cand", sampler)
    fuser = register("fz-fuser", lambda p, j: "Refined translation:\n\n" + "\n\n".join(f"[{x}]" for x in fusion_source(p).split("\n\n")))
    inp = write_jsonl(tmp_path / "in.jsonl", rows())
    res = invoke(["translate", str(inp), "-m", cand, "--mbr", "2", "--fuse", fuser, *SCRIPTED])
    assert res.code == 0, res.stderr
    d1, s2 = res.rows()
    assert d1["hyp_paragraphs"] == ["[First paragraph one.]", "[Second paragraph two.]", "[Third paragraph three.]"]
    assert s2["hyp"] == "[Just one.]"
    (unit,) = d1["fusion"]["units"]
    # greedy (j = 0) and samples j = 0, 1: the repeated text is numbered once, pool order kept
    doc = lambda j: "\n\n".join(f"<{p}#{j}>" for p in DOC1.split("\n\n"))  # noqa: E731
    assert unit["candidates"] == [doc(0), doc(1)]
    assert unit["used"] == "fused" and unit["kind"] == "document" and unit["selected"] in unit["candidates"]
    assert d1["fusion"]["model"] == fuser
    prompt = CALLS[fuser][0]
    assert "Only output the refined translation." in prompt and "keep the same 3 paragraphs" in prompt
    assert fusion_candidates(prompt) == unit["candidates"]
    s = summary(res.stderr)
    assert s["fused"] == 2 and s["fusion_paragraph_fallbacks"] == 0 and s["fusion_kept_selection"] == 0


def test_misaligned_fusion_falls_back_to_paragraphs_and_empty_keeps_selection(tmp_path):
    cand = register("fz-cand2", sampler)

    def fuse(prompt: str, j: int) -> str:
        src = fusion_source(prompt)
        if "\n\n" in src:
            return src.replace("\n\n", " ")  # a document fused into one paragraph: misaligned
        return "" if src.startswith("Second") else f"({src})"

    fuser = register("fz-fuser2", fuse)
    inp = write_jsonl(tmp_path / "in.jsonl", rows()[:1])
    res = invoke(["translate", str(inp), "-m", cand, "--mbr", "1", "--fuse", fuser, *SCRIPTED])
    assert res.code == 0, res.stderr
    (d1,) = res.rows()
    (unit,) = d1["fusion"]["units"]
    assert unit["used"] == "paragraphs" and unit["paragraphs"] == ["(First paragraph one.)", "", "(Third paragraph three.)"]
    # the empty paragraph keeps the selected candidate's paragraph
    assert d1["hyp_paragraphs"][0] == "(First paragraph one.)" and d1["hyp_paragraphs"][2] == "(Third paragraph three.)"
    assert d1["hyp_paragraphs"][1] == unit["selected"].split("\n\n")[1]
    assert [fusion_candidates(p) for p in CALLS[fuser][1:]][0] == ["<First paragraph one.#0>"]  # each paragraph's candidates
    s = summary(res.stderr)
    assert s["fusion_paragraph_fallbacks"] == 1 and s["fusion_kept_selection"] == 1 and s["fused"] == 0


def test_fuse_prompt_file_replaces_the_prompt_and_is_checked(tmp_path):
    cand = register("fz-cand3", sampler)
    fuser = register("fz-fuser3", lambda p, j: "ok")
    inp = write_jsonl(tmp_path / "in.jsonl", rows()[1:])
    tpl = tmp_path / "fuse.txt"
    tpl.write_text("FUSE {n} {tgt_name}\n{src}\n{candidates}\n", encoding="utf-8")
    res = invoke(["translate", str(inp), "-m", cand, "--fuse", fuser, "--fuse-prompt-file", str(tpl), *SCRIPTED])
    assert res.code == 0, res.stderr
    assert user_content(CALLS[fuser][-1]) == "FUSE 1 Japanese\nJust one.\nCandidate 1:\n<Just one.#0>"
    assert res.rows()[0]["hyp"] == "ok"
    tpl.write_text("no candidates here {src}\n", encoding="utf-8")
    bad = invoke(["translate", str(inp), "-m", cand, "--fuse", fuser, "--fuse-prompt-file", str(tpl), *SCRIPTED])
    assert_user_error(bad, str(tpl), "{candidates}")


def test_missing_fuse_model_fails_before_any_generation(tmp_path, tiny_model):
    inp = write_jsonl(tmp_path / "in.jsonl", rows()[1:])
    out = tmp_path / "out.jsonl"
    res = invoke(["translate", str(inp), "-m", str(tiny_model), "--fuse", str(tmp_path / "no-fuser"), "-o", str(out)])
    assert_user_error(res, "no-fuser", "--fuse model directory not found")
    assert "loading" not in res.stderr and not out.exists()


@pytest.mark.parametrize("granularity", ["document", "paragraph"])
def test_tiny_model_fusion_end_to_end(tmp_path, tiny_model, granularity):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "d", "src_lang": "en", "tgt_lang": "ja", "src": "The cat sat.\n\nThe dog ran."}])
    res = invoke(["translate", str(inp), "-m", str(tiny_model), "--mbr", "2", "--fuse", str(tiny_model), "--max-tokens", "5",
                  "--granularity", granularity, "--seed", "1"])
    assert res.code == 0, res.stderr
    (row,) = res.rows()
    units = row["fusion"]["units"]
    assert units and all(1 <= len(u["candidates"]) <= 3 for u in units)
    assert all(u["used"] in ("fused", "paragraphs", "selection") for u in units)
    assert len(row["hyp_paragraphs"]) == 2
    s = summary(res.stderr)
    assert s["model_loads"] == 1  # the fusion model is the candidate model: loaded once
    assert s["fused"] + s["fusion_paragraph_fallbacks"] + s["fusion_kept_selection"] >= 1


# ---------------------------------------------------------------------------------- --mbr-method


def test_tiny_model_pruned_and_model_based_mbr(tmp_path, tiny_model):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "src_lang": "en", "tgt_lang": "ja", "src": "The cat sat on the mat."}])
    base = ["translate", str(inp), "-m", str(tiny_model), "--max-tokens", "6", "--mbr", "4", "--mbr-output", "all", "--seed", "3"]
    plain = invoke(base)
    pruned = invoke([*base, "--mbr-method", "pruned", "--mbr-first-refs", "2", "--mbr-alpha", "0.9"])
    model = invoke([*base, "--mbr-method", "model"])
    for res in (plain, pruned, model):
        assert res.code == 0, res.stderr
    p, q, m = plain.rows()[0], pruned.rows()[0], model.rows()[0]
    texts = [c["text"] for c in p["mbr"]["units"][0]["candidates"]]
    assert [c["text"] for c in q["mbr"]["units"][0]["candidates"]] == texts  # same pool, seeds do not depend on the method
    assert q["mbr"]["method"] == "pruned" and m["mbr"]["method"] == "model"
    assert summary(pruned.stderr)["utility_evaluations"] <= summary(plain.stderr)["utility_evaluations"] == 20
    # model-based: the expected utilities are a probability-weighted mean of chrF (self included) → within [0, 100]
    eus = [c["expected_utility"] for c in m["mbr"]["units"][0]["candidates"]]
    assert all(0 <= e <= 100 for e in eus) and m["hyp"] == texts[m["mbr"]["units"][0]["selected"]]
    assert m["hyp"] == texts[max(range(5), key=lambda i: (eus[i], -i))]


@pytest.fixture(scope="module")
def tiny_kiwi(tmp_path_factory, comet_python):
    from in2x_cli.comet import build_tiny_checkpoint

    out = tmp_path_factory.mktemp("tiny_kiwi")
    build_tiny_checkpoint(out, python=comet_python, referenceless=True)
    return out


def test_qe_reranking_through_the_comet_worker(tmp_path, tiny_model, tiny_kiwi, tiny_comet):
    from in2x_cli.comet import CometClient

    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "src_lang": "en", "tgt_lang": "ja", "src": "The cat sat."}])
    base = ["translate", str(inp), "-m", str(tiny_model), "--max-tokens", "6", "--mbr", "3", "--mbr-output", "all", "--seed", "2", "--mbr-method", "qe"]
    res = invoke([*base, "--qe-model", str(tiny_kiwi)])
    assert res.code == 0, res.stderr
    row = res.rows()[0]
    unit = row["mbr"]["units"][0]
    texts = [c["text"] for c in unit["candidates"]]
    with CometClient(str(tiny_kiwi)) as client:
        q = client.score([{"src": "The cat sat.", "mt": t} for t in texts])
    # a candidate COMET cannot score (NaN, e.g. an empty text) is logged as null and never wins
    got = [c["expected_utility"] for c in unit["candidates"]]
    assert [g is None for g in got] == [math.isnan(x) for x in q]
    assert [g for g in got if g is not None] == pytest.approx([x for x in q if not math.isnan(x)], abs=1e-4)
    finite = [x if not math.isnan(x) else -math.inf for x in q]
    assert row["hyp"] == texts[max(range(len(q)), key=lambda i: (finite[i], -i))]
    # a reference-based checkpoint cannot rerank without references
    bad = invoke([*base, "--qe-model", str(tiny_comet)])
    assert_user_error(bad, "--qe-model", "reference-free")


def test_mbr_method_options_are_checked(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows()[1:])
    cand = register("fz-cand4", sampler)
    assert_user_error(invoke(["translate", str(inp), "-m", cand, "--mbr-method", "best", *SCRIPTED]), "--mbr-method")
    assert_user_error(invoke(["translate", str(inp), "-m", cand, "--mbr-alpha", "0", *SCRIPTED]), "--mbr-alpha")
    # model-based MBR needs log-probabilities: the scripted backend returns none
    res = invoke(["translate", str(inp), "-m", cand, "--mbr", "2", "--mbr-method", "model", *SCRIPTED])
    assert_user_error(res, "log-probability")
    json.dumps(res.stderr)


def test_options_of_a_selection_that_will_not_run_are_errors(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", rows()[1:])
    cand = register("fz-cand5", sampler)
    prompt = tmp_path / "fuse.txt"
    prompt.write_text("{src}\n{candidates}\n", encoding="utf-8")
    for extra, fragment in (
        (["--fuse-prompt-file", str(prompt)], "--fuse-prompt-file"),
        (["--mbr-method", "pruned"], "--mbr-method pruned selects among candidates"),
        (["--mbr", "2", "--mbr-first-refs", "4"], "--mbr-first-refs apply only to --mbr-method pruned"),
        (["--mbr", "2", "--qe-model", "x"], "--qe-model applies only to --mbr-method qe"),
    ):
        assert_user_error(invoke(["translate", str(inp), "-m", cand, *extra, *SCRIPTED]), fragment)
