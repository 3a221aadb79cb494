"""The demo recipe end to end (recipes/demo.sh at DEMO_SCALE=small): every artefact exists, is
valid, and carries provenance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.util import REPO

MODELS = ["base", "cpt1", "cpt2", "cpt3", "sft", "sft_t2", "grpo", "merged_ties", "merged_obim"]
JSONL_WITH_SIDECAR = ["clustered.jsonl", "selected.jsonl", "synth.jsonl", "synth.rejects.jsonl"] + [
    f"translate_{m}.jsonl" for m in ("base", "sft", "grpo", "merged_ties", "merged_obim")
]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    run = tmp_path_factory.mktemp("demo") / "run"
    env = {
        **os.environ,
        "DEMO_SCALE": "small",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHON": sys.executable,
        "IN2X": str(Path(sys.executable).parent / "in2x"),
    }
    if not Path(env["IN2X"]).exists():
        env["IN2X"] = "in2x"
    proc = subprocess.run(["bash", str(REPO / "recipes" / "demo.sh"), str(run)], capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    return run, proc


def test_demo_completes_with_one_line_per_step(demo_run):
    run, proc = demo_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = [ln for ln in proc.stdout.splitlines() if ln.startswith("[demo")]
    names = [ln.split("] ", 1)[1].split(":", 1)[0] for ln in steps]
    assert names == ["tiny-model", "data", "cluster", "sample-difficulty", "synthesize", "cpt", "sft", "grpo", "merge", "translate", "eval", "plot"]
    assert "Traceback" not in proc.stderr
    assert "AutoRank" in proc.stderr  # the final table


def test_models_load_and_carry_provenance(demo_run):
    run, _ = demo_run
    from safetensors import safe_open

    for name in MODELS:
        d = run / name
        prov = json.loads((d / "in2x_provenance.json").read_text())
        assert prov.get("tool") == "in2x", name
        shards = list(d.glob("*.safetensors"))
        assert shards, name
        with safe_open(str(shards[0]), framework="pt") as fh:
            assert len(list(fh.keys())) > 0
        assert (d / "tokenizer.json").exists() and (d / "config.json").exists(), name
    assert json.loads((run / "merged_obim" / "in2x_provenance.json").read_text())["config"]["method"] == "obim"


def test_jsonl_artefacts_are_valid_with_sidecars(demo_run):
    run, _ = demo_run
    for name in JSONL_WITH_SIDECAR:
        path = run / name
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if name not in ("synth.jsonl",):  # the tiny model's synthesized tasks may all be rejected
            assert rows, name
        meta = json.loads((run / f"{name}.meta.json").read_text())
        assert meta["tool"] == "in2x" and meta["output"]["rows"] == len(rows), name
        assert all(i.get("sha256") or i.get("files") for i in meta["inputs"]), name
    selected = [json.loads(x) for x in (run / "selected.jsonl").read_text().splitlines()]
    assert {r["round"] for r in selected} == {0, 1}
    translations = [json.loads(x) for x in (run / "translations.jsonl").read_text().splitlines()]
    assert {r["system"] for r in translations} == {"base", "sft", "grpo", "merged_ties", "merged_obim"}
    assert all(isinstance(r["hyp"], str) and len(r["hyp_paragraphs"]) >= 1 for r in translations)


def test_eval_autorank_and_plots(demo_run):
    run, _ = demo_run
    doc = json.loads((run / "eval.json").read_text())
    assert doc["schema"] == "in2x.eval/1"
    for res in doc["results"]:
        assert len(res["systems"]) == 5 and "autorank" in res
        assert all("bleu" in s["scores"] and "chrf" in s["scores"] for s in res["systems"])
    ranked = json.loads((run / "autorank.json").read_text())
    assert ranked["schema"] == "in2x.autorank/1"
    ranks = sorted(s["autorank"] for s in ranked["pairs"][0]["systems"])
    assert ranks[0] == pytest.approx(1.0) and ranks[-1] == pytest.approx(5.0)
    pngs = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert any(p.startswith("train-grpo") for p in pngs) and any(p.startswith("train-sft") for p in pngs)
    assert any(p.startswith("eval-") for p in pngs) and any(p.startswith("autorank-") for p in pngs)
    for p in (run / "plots").glob("*.png"):
        assert p.read_bytes()[:4] == b"\x89PNG"
