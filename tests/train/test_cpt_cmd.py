"""``in2x cpt`` end to end on the tiny model: golden losses with the phase-3 linear anneal, the
mixture's token shares, long-context config changes, the perplexity filter (values recomputed by
hand), bad input, and SIGTERM → checkpoint → resume (bit-identical)."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import pytest

from in2x_cli.tiny import load_corpus
from in2x_cli.train.rundir import read_metrics
from tests.train.helpers import train_until_checkpoint
from tests.util import assert_user_error, invoke, write_jsonl

# Losses of the 6 steps of the reference run below (seed 0, CPU fp32); the random tiny model
# starts near ln(1000) = 6.908. The run is phase 3's shape (linear decay, no warm-up) with a peak LR
# 100x the paper's 3e-5 so that a random model visibly learns in 6 steps.
GOLDEN_LOSSES = [6.9529, 6.9252, 6.8989, 6.9103, 6.8281, 6.8111]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("cpt")
    rows = load_corpus("pretrain")
    know = write_jsonl(d / "knowledge.jsonl", [r for r in rows if r["kind"] == "knowledge"])
    creative = write_jsonl(d / "creative.jsonl", [r for r in rows if r["kind"] == "creative"])
    return know, creative


def ref_args(sources, model) -> list[str]:
    know, creative = sources
    return [
        "cpt", "--data", f"{know}:0.75", "--data", f"{creative}:0.25", "--model", str(model),
        "--seq-len", "64", "--batch-size", "2", "--max-steps", "6", "--save-steps", "2", "--logging-steps", "1",
        "--lr", "3e-3", "--lr-schedule", "linear", "--rope-theta", "20000", "--seed", "0",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def cpt_ref(tiny_model, sources, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cpt_ref") / "run"
    res = invoke([*ref_args(sources, tiny_model), "-o", str(out)])
    assert res.code == 0, res.stderr
    assert res.stdout == ""
    return out


def test_cpt_golden_losses_linear_anneal_and_output(cpt_ref):
    rows = [r for r in read_metrics(cpt_ref) if "loss" in r]
    assert [round(r["loss"], 4) for r in rows] == GOLDEN_LOSSES, [round(r["loss"], 4) for r in rows]
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.1
    # linear decay from 3e-3 over 6 steps, no warm-up: the LR logged after step k is 3e-3 (1 - (k-1)/6)
    assert [r["learning_rate"] for r in rows] == pytest.approx([3e-3 * (1 - k / 6) for k in range(6)])
    assert all(r["num_input_tokens_seen"] == 128 * r["step"] for r in rows)  # 2 full rows of 64 per step
    cfg = json.loads((cpt_ref / "config.json").read_text())
    assert cfg["rope_parameters"]["rope_theta"] == 20000.0 and cfg["use_cache"] is True
    prov = json.loads((cpt_ref / "in2x_provenance.json").read_text())
    src = prov["summary"]["sources"]
    total = src[0]["tokens"] + src[1]["tokens"]
    # token shares within one document (≤ 120 tokens here) of the 0.75 / 0.25 weights
    assert abs(src[0]["tokens"] - 0.75 * total) <= 120 and abs(src[1]["tokens"] - 0.25 * total) <= 120
    assert prov["summary"]["context_extension"]["rope_theta"] == 20000.0
    assert (cpt_ref / "model.safetensors").exists() and (cpt_ref / "tokenizer.json").exists()
    assert list((cpt_ref / "runs").rglob("events.out.tfevents.*"))  # TensorBoard (the default --report-to)
    assert "mfu" not in rows[1]  # MFU is reported only on a GPU of known peak


def test_cpt_perplexity_filter_is_real_and_inspectable(tiny_model, sources, tmp_path):
    know, _ = sources
    out = tmp_path / "anneal"
    res = invoke(["cpt", "--data", str(know), "--model", str(tiny_model), "-o", str(out), "--ppl-filter", str(tiny_model), "--keep", "0.2", "--ppl-only", "--seq-len", "64"])
    assert res.code == 0, res.stderr
    scored = [json.loads(line) for line in (out / "ppl" / "0-knowledge.jsonl").read_text().splitlines()]
    kept = [json.loads(line) for line in (out / "ppl" / "0-knowledge.kept.jsonl").read_text().splitlines()]
    assert len(scored) == 150 and len(kept) == 30  # ceil(0.2 x 150)
    assert max(r["ppl"] for r in kept) <= min(r["ppl"] for r in scored if r["id"] not in {k["id"] for k in kept})
    assert {k: v for k, v in kept[0].items() if not k.startswith("ppl")} == next(r for r in load_corpus("pretrain") if r["id"] == kept[0]["id"])
    # recompute one perplexity with the model's own loss: exp(mean NLL of the first 64 tokens)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32).eval()
    ids = torch.tensor([tok(scored[3]["text"], add_special_tokens=False)["input_ids"][:64]])
    with torch.no_grad():
        ppl = math.exp(model(input_ids=ids, labels=ids).loss.item())
    assert scored[3]["ppl"] == pytest.approx(ppl, rel=1e-4) and scored[3]["ppl_tokens"] == ids.shape[1] - 1
    assert not (out / "model.safetensors").exists()  # --ppl-only trains nothing


@pytest.mark.parametrize(
    ("rows", "extra", "where", "message"),
    [
        ([{"text": "fine"}, {"text": "fine"}, {"body": "no text"}], ["--max-steps", "1"], ":3", "missing required field 'text'"),
        ([{"text": "fine"}, "[1, 2]"], ["--max-steps", "1"], ":2", "expected a JSON object"),
        ([{"text": "fine"}], [], "", "--max-steps or --max-tokens"),
    ],
)
def test_cpt_bad_input_exit_2(tiny_model, tmp_path, rows, extra, where, message):
    f = tmp_path / "bad.jsonl"
    f.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    res = invoke(["cpt", "--data", str(f), "--model", str(tiny_model), "-o", str(tmp_path / "o"), *extra])
    assert_user_error(res, f"{f}{where}" if where else "", message)


def test_cpt_bad_options_exit_2(tiny_model, sources, tmp_path):
    know, _ = sources
    base = ["cpt", "--data", str(know), "--model", str(tiny_model), "--max-steps", "1"]
    assert_user_error(invoke([*base, "-o", str(tmp_path / "a"), "--rope-scaling", "ntk:2"]), "--rope-scaling")
    assert_user_error(invoke([*base, "-o", str(tmp_path / "b"), "--max-tokens", "lots"]), "--max-tokens")
    assert_user_error(invoke([*base, "-o", str(tmp_path / "c"), "--data", f"{know}:-1"]), "positive")
    assert_user_error(invoke(["cpt", "--data", str(know), "--model", str(tmp_path / "nope"), "-o", str(tmp_path / "d"), "--max-steps", "1"]), "not found")


@pytest.mark.slow
def test_cpt_sigterm_checkpoints_then_resume_is_bit_identical(tiny_model, sources, cpt_ref, tmp_path):
    from safetensors.torch import load_file

    args = ref_args(sources, tiny_model)
    run = tmp_path / "term"
    proc = train_until_checkpoint(args, run)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 143, err
    assert "checkpoint saved" in err and "in2x: interrupted" in err and "Traceback" not in err
    ckpts = sorted(int(p.name.split("-")[1]) for p in run.glob("checkpoint-*"))
    assert ckpts and ckpts[-1] < 6 and not (run / "in2x_provenance.json").exists()
    # the graceful stop saved the step it was on (it need not be a multiple of --save-steps)
    assert json.loads((run / f"checkpoint-{ckpts[-1]}" / "trainer_state.json").read_text())["global_step"] == ckpts[-1]

    res = invoke([*args, "-o", str(run), "--resume"])
    assert res.code == 0, res.stderr
    a, b = load_file(str(cpt_ref / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_cpt_perplexity_cache_is_keyed_by_its_settings(tiny_model, sources, tmp_path):
    """--resume reuses OUTPUT/ppl scores only if the filter model, --seq-len, text field and source
    are the ones they were made with; otherwise they are recomputed (with a note on stderr)."""
    import shutil

    know, _ = sources
    out = tmp_path / "anneal"
    scored_path = out / "ppl" / "0-knowledge.jsonl"

    def run(model, seq_len, *extra):
        res = invoke(["cpt", "--data", str(know), "--model", str(tiny_model), "-o", str(out), "--ppl-filter", str(model), "--keep", "0.2", "--ppl-only", "--seq-len", str(seq_len), *extra])
        assert res.code == 0, res.stderr
        return res, [json.loads(line) for line in scored_path.read_text().splitlines()]

    _, first = run(tiny_model, 64)
    assert max(r["ppl_tokens"] for r in first) == 63
    settings = json.loads((out / "ppl" / "0-knowledge.settings.json").read_text())
    assert settings["seq_len"] == 64 and settings["model"] == str(Path(tiny_model).resolve())

    stamp = scored_path.stat().st_mtime_ns
    res, again = run(tiny_model, 64, "--resume")  # same settings: reused as they are
    assert again == first and scored_path.stat().st_mtime_ns == stamp and "scoring again" not in res.stderr

    res, shorter = run(tiny_model, 16, "--resume")  # --seq-len changed: recomputed
    assert "other settings (seq_len)" in res.stderr
    assert max(r["ppl_tokens"] for r in shorter) == 15 and len(shorter) == len(first)
    assert [r["ppl"] for r in shorter] != [r["ppl"] for r in first]

    other = tmp_path / "other_model"  # another filter model (same weights, other path): recomputed
    shutil.copytree(tiny_model, other)
    res, _ = run(other, 16, "--resume")
    assert "other settings (model" in res.stderr
    assert json.loads((out / "ppl" / "0-knowledge.settings.json").read_text())["model"] == str(other.resolve())


def test_cpt_lang_ratio_balances_languages_inside_the_mixture(tiny_model, tmp_path):
    """--lang-ratio zh=1,en=1,ja=1 (paper: phase 1 balances zh:en:ja): an en-heavy source is split
    per language; the tokens seen per language follow the ratio (within one document) and the
    summary reports planned weights and seen shares; a row without 'lang' is detected."""
    rows = load_corpus("pretrain")
    by = {lang: [r for r in rows if r["lang"] == lang] for lang in ("en", "ja", "zh")}
    assert all(by.values())
    mixed = by["en"] * 3 + by["ja"] + [{k: v for k, v in r.items() if k != "lang"} for r in by["zh"]]  # zh rows without 'lang'
    src = write_jsonl(tmp_path / "mixed.jsonl", mixed + [{"lang": "ko", "text": "한국어 문장입니다."}])
    out = tmp_path / "run"
    res = invoke(["cpt", "--data", str(src), "--model", str(tiny_model), "--lang-ratio", "zh=1,en=1,ja=1", "--seq-len", "64",
                  "--batch-size", "2", "--max-steps", "6", "--report-to", "none", "-o", str(out)])  # fmt: skip
    assert res.code == 0, res.stderr
    summary = json.loads((out / "in2x_provenance.json").read_text())["summary"]
    shares = summary["languages"]["shares"]
    assert set(shares) == {"zh", "en", "ja"} and all(v["weight"] == pytest.approx(1 / 3, abs=1e-6) for v in shares.values())
    total = sum(v["tokens"] for v in shares.values())
    for v in shares.values():
        assert abs(v["tokens"] - total / 3) <= 130, shares  # one document of slack
    assert summary["languages"]["sources"][0]["dropped_rows"] == 1  # the Korean row
    assert "cpt: languages zh weight 0.333" in res.stderr
    logged = [r for r in read_metrics(out) if "loss" in r]
    assert logged and all(set(r) >= {"lang_share/zh", "lang_share/en", "lang_share/ja"} for r in logged)
    assert logged[-1]["lang_share/ja"] == pytest.approx(shares["ja"]["token_share"], abs=0.05)
