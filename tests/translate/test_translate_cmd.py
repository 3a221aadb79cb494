"""``in2x translate`` end to end through the real CLI: scripted backends for exact behaviour,
the tiny model for the real generation path."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from in2x_cli.backends.hf import TransformersBackend
from tests.fakes import CALLS, SCRIPTS, ScriptedBackend
from tests.util import assert_user_error, invoke, write_jsonl

SCRIPTED = ["--backend", "tests.fakes:ScriptedBackend"]
DOC1 = "First paragraph one.\n\nSecond paragraph two.\n\nThird paragraph three."
DOC2 = "Alpha beta.\n\nGamma delta."


def user_content(prompt: str) -> str:
    return prompt.split("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]


def source_of(prompt: str) -> str:
    """The source text of a built-in prompt: everything after the instruction's blank line."""
    return user_content(prompt).split("\n\n", 1)[1]


def register(name: str, fn) -> str:
    SCRIPTS[name] = fn
    CALLS[name] = []
    return name


def mirror(prompt: str, j: int) -> str:
    """An aligned 'translation' wrapped in chatter the cleaner must remove."""
    paras = source_of(prompt).split("\n\n")
    return "Here is the translation:\n\n" + "\n\n".join(f"<{p}>" for p in paras)


def collapse(prompt: str, j: int) -> str:
    """Loses paragraph breaks on documents (forces the fallback), fine on single paragraphs."""
    src = source_of(prompt)
    return " ".join(f"<{p}>" for p in src.split("\n\n"))


def summary(stderr: str) -> dict:
    line = [ln for ln in stderr.splitlines() if ln.startswith("translate: {")][-1]
    return json.loads(line.split("translate: ", 1)[1])


def wmt25_rows() -> list[dict]:
    return [
        {"doc_id": "d1", "src_lang": "en", "tgt_lang": "ja_JP", "domain": "news", "src_text": DOC1},
        {"doc_id": "d2", "src_lang": "en", "tgt_lang": "ja_JP", "domain": "social", "src_text": DOC2},
        {"doc_id": "s3", "src_lang": "en", "tgt_lang": "ja_JP", "domain": "speech", "src_text": "Just one."},
    ]


# ---------------------------------------------------------------------------------- documents


def test_document_mode_translates_whole_documents_and_cleans(tmp_path):
    model = register("tr-mirror", mirror)
    inp = write_jsonl(tmp_path / "in.jsonl", wmt25_rows())
    res = invoke(["translate", str(inp), "-m", model, *SCRIPTED])
    assert res.code == 0, res.stderr
    rows = res.rows()
    assert [r["doc_id"] for r in rows] == ["d1", "d2", "s3"]
    d1 = rows[0]
    # input fields pass through untouched (WMT25 spelling and locale kept)
    assert d1["src_text"] == DOC1 and d1["tgt_lang"] == "ja_JP" and d1["domain"] == "news"
    assert d1["hyp_paragraphs"] == ["<First paragraph one.>", "<Second paragraph two.>", "<Third paragraph three.>"]
    assert d1["hyp"] == "\n\n".join(d1["hyp_paragraphs"]) and d1["fallback"] == 0
    assert rows[2]["hyp"] == "<Just one.>" and "hyp_paragraphs" not in rows[2]
    assert len(CALLS[model]) == 3  # one request per document
    assert "3段落" in CALLS[model][0]  # the prompt asks to keep the paragraph structure
    s = summary(res.stderr)
    assert s["paragraph_fallbacks"] == 0 and s["cleaning_rules_fired"] == {"preamble": 3}


def test_misaligned_documents_fall_back_to_paragraphs(tmp_path):
    model = register("tr-collapse", collapse)
    inp = write_jsonl(tmp_path / "in.jsonl", wmt25_rows())
    out = tmp_path / "out.jsonl"
    res = invoke(["translate", str(inp), "-m", model, *SCRIPTED, "-o", str(out)])
    assert res.code == 0, res.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["hyp_paragraphs"] == ["<First paragraph one.>", "<Second paragraph two.>", "<Third paragraph three.>"]
    assert rows[0]["fallback"] == 1 and rows[1]["fallback"] == 1
    # 3 document requests, then 3 + 2 paragraph requests for the two misaligned documents
    assert len(CALLS[model]) == 8
    s = summary(res.stderr)
    assert s["paragraph_fallbacks"] == 2 and s["document_chunks"] == 2 and s["fallback_rate"] == 1.0
    assert s["requests"] == {"document": 2, "fallback_paragraph": 5, "paragraph": 1}
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert meta["translate"]["paragraph_fallbacks"] == 2 and meta["config"]["granularity"] == "document"


def test_paragraph_and_sentence_granularity(tmp_path):
    model = register("tr-mirror-g", mirror)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "src": "One. Two!\n\nThree?", "src_lang": "en", "tgt_lang": "ja"}])
    res = invoke(["translate", str(inp), "-m", model, *SCRIPTED, "--granularity", "paragraph"])
    assert res.rows()[0]["hyp_paragraphs"] == ["<One. Two!>", "<Three?>"]
    assert "fallback" not in res.rows()[0]
    CALLS[model].clear()
    res = invoke(["translate", str(inp), "-m", model, *SCRIPTED, "--granularity", "sentence"])
    # sentences are translated one by one and joined without spaces for Japanese
    assert res.rows()[0]["hyp_paragraphs"] == ["<One.><Two!>", "<Three?>"]
    assert sorted(source_of(p) for p in CALLS[model]) == ["One.", "Three?", "Two!"]


class SmallContextBackend(ScriptedBackend):
    """The scripted backend with a configurable context, to force document splitting."""

    def __init__(self, model: str, max_model_len: int | None = None, **kw) -> None:
        super().__init__(model, **kw)
        self._ctx = max_model_len or 100_000

    @property
    def context_length(self) -> int:
        return self._ctx


def test_long_documents_are_split_at_paragraph_boundaries(tmp_path):
    model = register("tr-small-ctx", mirror)
    paras = [" ".join(f"w{i}x{k}" for k in range(20)) + "." for i in range(6)]  # 20 'tokens' each
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "long", "src": "\n\n".join(paras), "src_lang": "en", "tgt_lang": "ja"}])
    backend = ["--backend", "tests.translate.test_translate_cmd:SmallContextBackend", "--max-model-len", "150", "--max-tokens", "20"]
    res = invoke(["translate", str(inp), "-m", model, *backend])
    assert res.code == 0, res.stderr
    row = res.rows()[0]
    assert row["hyp_paragraphs"] == [f"<{p}>" for p in paras] and row["fallback"] == 0
    s = summary(res.stderr)
    assert s["documents_split_for_context"] == 1 and s["requests"]["document"] >= 2
    for prompt in CALLS[model]:  # the scripted tokenizer counts whitespace-separated words
        assert len(prompt.split()) + 20 <= 150  # prompt + output budget fit the context
    covered = [p for prompt in CALLS[model] for p in source_of(prompt).split("\n\n")]
    assert covered == paras  # contiguous chunks, in order, each paragraph once


# ---------------------------------------------------------------------------------- MBR


def scripted_pool(texts_by_call: list[str]):
    """Greedy first (one call per prompt), then the samples, in backend call order."""
    counters: Counter[str] = Counter()

    def fn(prompt: str, j: int) -> str:
        k = counters[prompt]
        counters[prompt] += 1
        return texts_by_call[k % len(texts_by_call)]

    return fn


def test_mbr_picks_the_hand_computed_candidate(tmp_path):
    # candidates: greedy "a b c", samples "a b d", "a x y", "b d e"; with u = shared tokens
    # (tests.core.test_mbr:overlap_utility) E = 4/3, 5/3, 2/3, 1 → the first sample wins.
    model = register("tr-mbr", scripted_pool(["a b c", "a b d", "a x y", "b d e"]))
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "x", "src": "source", "src_lang": "en", "tgt_lang": "de"}])
    args = ["translate", str(inp), "-m", model, *SCRIPTED, "--mbr", "3", "--mbr-utility", "tests.core.test_mbr:overlap_utility", "--mbr-output", "all"]
    res = invoke(args)
    assert res.code == 0, res.stderr
    row = res.rows()[0]
    assert row["hyp"] == "a b d"
    (unit,) = row["mbr"]["units"]
    assert unit["selected"] == 1
    assert [c["sample"] for c in unit["candidates"]] == [-1, 0, 1, 2]
    assert [c["expected_utility"] for c in unit["candidates"]] == pytest.approx([4 / 3, 5 / 3, 2 / 3, 1.0], abs=1e-4)


def test_ensemble_pools_candidates_from_every_model(tmp_path):
    a = register("tr-ens-a", scripted_pool(["a dog ran", "the cat sat"]))
    b = register("tr-ens-b", scripted_pool(["the cat sat", "blue sky"]))
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "src": "s", "src_lang": "ja", "tgt_lang": "en"}])
    res = invoke(["translate", str(inp), "-m", a, "-m", b, *SCRIPTED, "--mbr", "1", "--mbr-output", "all"])
    assert res.code == 0, res.stderr
    (unit,) = res.rows()[0]["mbr"]["units"]
    assert [(c["model"], c["sample"], c["text"]) for c in unit["candidates"]] == [
        (a, -1, "a dog ran"), (a, 0, "the cat sat"), (b, -1, "the cat sat"), (b, 0, "blue sky"),
    ]
    # "the cat sat" gets a vote from each model (chrF 100 against its twin): the first copy wins
    assert res.rows()[0]["hyp"] == "the cat sat" and unit["selected"] == 1
    assert summary(res.stderr)["model_loads"] == 2 and summary(res.stderr)["candidates"] == 4


def test_ensemble_fallback_reuses_the_loaded_model(tmp_path):
    a, b = register("tr-ens-c", collapse), register("tr-ens-d", collapse)
    inp = write_jsonl(tmp_path / "in.jsonl", wmt25_rows()[:1])
    res = invoke(["translate", str(inp), "-m", a, "-m", b, *SCRIPTED])
    assert res.code == 0, res.stderr
    s = summary(res.stderr)
    # phase 1 loads a then b; the fallback phase starts with b (still loaded), then a again
    assert s["model_loads"] == 3 and s["paragraph_fallbacks"] == 1
    assert len(CALLS[a]) == len(CALLS[b]) == 1 + 3


# ---------------------------------------------------------------------------------- tiny model


def tiny_rows(n: int) -> list[dict]:
    words = ["Hello.", "The cat sat.", "Good morning.", "It rains today.", "Thank you.", "See you soon."]
    return [{"id": f"r{i}", "src": words[i % len(words)], "src_lang": "en", "tgt_lang": "ja"} for i in range(n)]


def test_tiny_model_document_and_paragraph_modes(tmp_path, tiny_model):
    inp = write_jsonl(tmp_path / "in.jsonl", wmt25_rows()[:2])
    for mode in ("document", "paragraph"):
        res = invoke(["translate", str(inp), "-m", str(tiny_model), "--max-tokens", "5", "--granularity", mode, "--backend", "transformers"])
        assert res.code == 0, res.stderr
        rows = res.rows()
        assert [len(r["hyp_paragraphs"]) for r in rows] == [3, 2]
        assert all(r["hyp"] == "\n\n".join(r["hyp_paragraphs"]) for r in rows)
        s = summary(res.stderr)
        assert s["generated_tokens"] > 0 and s["rows"] == 2
        if mode == "document":  # each misaligned document is redone paragraph by paragraph
            assert s["requests"]["document"] == 2
            assert s["paragraph_fallbacks"] == sum(r["fallback"] for r in rows)
            assert s["requests"].get("fallback_paragraph", 0) == sum(len(r["hyp_paragraphs"]) for r in rows if r["fallback"])
        else:
            assert s["requests"] == {"paragraph": 5}


def test_tiny_model_mbr_selects_the_chrf_argmax(tmp_path, tiny_model):
    from sacrebleu.metrics import CHRF

    inp = write_jsonl(tmp_path / "in.jsonl", tiny_rows(2))
    res = invoke(["translate", str(inp), "-m", str(tiny_model), "--max-tokens", "6", "--mbr", "3", "--mbr-output", "all", "--seed", "3"])
    assert res.code == 0, res.stderr
    chrf = CHRF()
    for row in res.rows():
        (unit,) = row["mbr"]["units"]
        texts = [c["text"] for c in unit["candidates"]]
        assert len(texts) == 4
        expected = [sum(chrf.sentence_score(h, [r]).score for j, r in enumerate(texts) if j != i) / 3 for i, h in enumerate(texts)]
        best = max(range(4), key=lambda i: (expected[i], -i))
        assert unit["selected"] == best and row["hyp"] == texts[best]
        assert [c["expected_utility"] for c in unit["candidates"]] == pytest.approx(expected, abs=1e-3)


class InterruptingBackend(TransformersBackend):
    """The real backend, interrupted (as by Ctrl-C / SIGTERM) on its ``fail_at``-th call."""

    calls = 0
    fail_at = 0

    def generate_from_text(self, *args, **kwargs):
        type(self).calls += 1
        if type(self).calls == type(self).fail_at:
            raise KeyboardInterrupt
        return super().generate_from_text(*args, **kwargs)


def test_resume_after_interruption_gives_the_uninterrupted_output(tmp_path, tiny_model):
    inp = write_jsonl(tmp_path / "in.jsonl", tiny_rows(4))
    common = ["translate", str(inp), "-m", str(tiny_model), "--max-tokens", "4", "--mbr", "2", "--chunk-rows", "1", "--seed", "7"]
    ref = tmp_path / "ref.jsonl"
    assert invoke([*common, "-o", str(ref), "--backend", "transformers"]).code == 0
    out = tmp_path / "out.jsonl"
    InterruptingBackend.calls, InterruptingBackend.fail_at = 0, 5  # rounds are 2 calls: dies in row 3
    res = invoke([*common, "-o", str(out), "--resume", "--backend", "tests.translate.test_translate_cmd:InterruptingBackend"])
    assert res.code == 130 and not out.exists()
    partial = Path(f"{out}.partial").read_text().splitlines()
    assert len(partial) == 2
    res = invoke([*common, "-o", str(out), "--resume", "--backend", "transformers"])
    assert res.code == 0, res.stderr
    assert out.read_text() == ref.read_text()  # identical rows, same order, no duplicates
    assert summary(res.stderr)["rows_resumed"] == 2 and summary(res.stderr)["rows"] == 2
    # resuming a finished output is a no-op
    res = invoke([*common, "-o", str(out), "--resume", "--backend", "transformers"])
    assert res.code == 0 and out.read_text() == ref.read_text() and summary(res.stderr)["rows"] == 0

    # shards see the same per-row seeds: their rows equal the full run's rows
    ref_rows = [json.loads(x) for x in ref.read_text().splitlines()]
    for i in range(2):
        res = invoke([*common, "--shard", f"{i}/2", "--backend", "transformers"])
        assert res.rows() == ref_rows[i::2]


def test_ensemble_of_two_real_models(tmp_path, tiny_model):
    second = tmp_path / "second"
    shutil.copytree(tiny_model, second)  # a second checkpoint directory, loaded separately
    inp = write_jsonl(tmp_path / "in.jsonl", tiny_rows(2))
    res = invoke(["translate", str(inp), "-m", str(tiny_model), "-m", str(second), "--max-tokens", "4", "--mbr-output", "all"])
    assert res.code == 0, res.stderr
    for row in res.rows():
        cands = row["mbr"]["units"][0]["candidates"]
        assert [c["model"] for c in cands] == [str(tiny_model), str(second)]
        assert cands[0]["text"] == cands[1]["text"]  # same weights, same greedy output
    assert summary(res.stderr)["model_loads"] == 2


# ---------------------------------------------------------------------------------- inputs


def test_plain_text_input_and_prompt_file_and_system(tmp_path):
    model = register("tr-text", mirror)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"ja_JP": "Übersetze nach {tgt_name}:\n\n{src}", "*": "{src}"}), encoding="utf-8")
    res = invoke(["translate", "-", "-m", model, *SCRIPTED, "--src-lang", "en", "--tgt-lang", "ja_JP", "--prompt-file", str(prompts), "--system", "Be exact."], stdin="Hello.\nBye.\n")
    assert res.code == 0, res.stderr
    assert [(r["id"], r["src"], r["hyp"]) for r in res.rows()] == [(1, "Hello.", "<Hello.>"), (2, "Bye.", "<Bye.>")]
    assert user_content(CALLS[model][0]) == "Übersetze nach 日本語:\n\nHello."
    assert "<|im_start|>system\nBe exact.<|im_end|>" in CALLS[model][0]


def test_wmt24_importer_prepare(shared_data):
    res = invoke(["translate", "--wmt24", str(shared_data / "wmt24" / "en-ja"), "--prepare"])
    assert res.code == 0, res.stderr
    rows = res.rows()
    assert len(rows) == 170
    assert sum(len(r["segment_ids"]) for r in rows) == 997  # 998 lines minus the canary
    assert not any("CANARY" in r["src"] for r in rows)
    assert rows[0]["src_lang"] == "en" and rows[0]["tgt_lang"] == "ja" and "ref" in rows[0]


def test_wmt24_segments_out_aligns_with_system_outputs(tmp_path, shared_data):
    model = register("tr-wmt24", mirror)
    d = shared_data / "wmt24" / "en-ja"
    seg = tmp_path / "system.txt"
    res = invoke(["translate", "--wmt24", str(d), "-m", model, *SCRIPTED, "-o", str(tmp_path / "out.jsonl"), "--segments-out", str(seg)])
    assert res.code == 0, res.stderr
    src = (d / "en-ja.txt").read_text(encoding="utf-8").splitlines()
    lines = seg.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(src) == len((d / "system-outputs" / "Aya23.txt").read_text(encoding="utf-8").splitlines())
    assert lines[0] == src[0] and lines[0].startswith("CANARY")
    assert all(hyp == f"<{s}>" for hyp, s in zip(lines[1:], src[1:], strict=True))


@pytest.mark.parametrize(
    "rows, extra, fragments",
    [
        ('{"src": "a", "src_lang": "en", "tgt_lang": "ja"}\n{"src": oops}\n', [], ["in.jsonl:2", "invalid JSON"]),
        ('{"src": "a", "tgt_lang": "ja"}\n', [], ["in.jsonl:1", "src_lang"]),
        ('{"src": "a", "src_lang": "en", "tgt_lang": "??"}\n', [], ["in.jsonl:1", "tgt_lang"]),
        ('{"src": 3, "src_lang": "en", "tgt_lang": "ja"}\n', [], ["in.jsonl:1", "'src'"]),
        ('{"text": "a", "src_lang": "en", "tgt_lang": "ja"}\n', [], ["in.jsonl:1", "'src'"]),
        ('{"id": 1, "src": "a", "src_lang": "en", "tgt_lang": "ja"}\n{"id": 1, "src": "b", "src_lang": "en", "tgt_lang": "ja"}\n', [], ["in.jsonl:2", "duplicate"]),
        ("\n\n", [], ["in.jsonl", "empty input"]),
        ("plain text line\n", [], ["in.jsonl:1", "needs --src-lang"]),
        ('\n[1, 2]\n{"src": "a", "src_lang": "en", "tgt_lang": "ja"}\n', [], ["in.jsonl:2", "not a JSON object"]),
        ('{"src": "a", "src_lang": "en", "tgt_lang": "ja"}\n', ["--shard", "2/2"], ["--shard"]),
        ('{"src": "a", "src_lang": "en", "tgt_lang": "ja"}\n', ["--granularity", "word"], ["--granularity"]),
        ('{"src": "a", "src_lang": "en", "tgt_lang": "ja"}\n', ["--segments-out", "x.txt"], ["--segments-out needs --wmt24"]),
        ('{"src": "a", "src_lang": "en", "tgt_lang": "ja"}\n', ["--mbr-utility", "nope"], ["--mbr-utility", "nope"]),
    ],
)
def test_bad_input_exits_2_naming_the_place(tmp_path, rows, extra, fragments):
    model = register("tr-bad", mirror)
    inp = tmp_path / "in.jsonl"
    inp.write_text(rows, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    res = invoke(["translate", str(inp), "-m", model, *SCRIPTED, "-o", str(out), *extra])
    assert_user_error(res, *fragments)
    assert not out.exists() and not Path(f"{out}.partial").exists()
    assert CALLS[model] == []  # nothing was generated for bad input


def test_bad_model_prompt_file_and_output(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", tiny_rows(1))
    assert_user_error(invoke(["translate", str(inp), "-m", str(tmp_path / "missing-model")]), "missing-model")
    bad = tmp_path / "p.txt"
    bad.write_text("Translate this please.", encoding="utf-8")
    assert_user_error(invoke(["translate", str(inp), "-m", "x", *SCRIPTED, "--prompt-file", str(bad)]), "p.txt", "{src}")
    assert_user_error(invoke(["translate", str(inp), "-m", "x", "-o", str(tmp_path / "no" / "out.jsonl")]), "does not exist")
    assert_user_error(invoke(["translate", str(inp)]), "--model")
    assert_user_error(invoke(["translate", "--wmt24", str(tmp_path), "--prepare"]), "WMT24")


@pytest.mark.slow  # starts the COMET worker (shared with the eval tests in a full run)
def test_mbr_with_comet_utility(tmp_path, tiny_comet, comet_python):
    from in2x_cli.comet import get_client

    model = register("tr-comet", scripted_pool(["猫が座った。", "猫が座っていた。", "犬が走った。"]))
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "src": "The cat sat.", "src_lang": "en", "tgt_lang": "ja"}])
    args = ["translate", str(inp), "-m", model, *SCRIPTED, "--mbr", "2", "--mbr-utility", "comet", "--comet-model", str(tiny_comet), "--mbr-output", "all"]
    res = invoke(args)
    assert res.code == 0, res.stderr
    (unit,) = res.rows()[0]["mbr"]["units"]
    texts = [c["text"] for c in unit["candidates"]]
    # recompute E_i = mean_{j≠i} COMET(src, mt=c_i, ref=c_j) with the same worker
    client = get_client(str(tiny_comet))
    pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    scores = client.score([{"src": "The cat sat.", "mt": texts[i], "ref": texts[j]} for i, j in pairs])
    expected = [sum(s for (i, _), s in zip(pairs, scores, strict=True) if i == k) / 2 for k in range(3)]
    assert [c["expected_utility"] for c in unit["candidates"]] == pytest.approx(expected, abs=1e-3)
    assert unit["selected"] == max(range(3), key=lambda k: (expected[k], -k))
