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

MODELS = ["base", "judge", "cpt1", "cpt2", "cpt3", "sft", "sft_t2", "grpo", "merged_ties", "merged_obim"]
SYSTEMS = ["base", "sft", "grpo", "merged_ties", "merged_obim"]
JSONL_WITH_SIDECAR = [
    "clustered.jsonl", "cluster_sweep.jsonl", "selected.jsonl", "selected.jsonl.grades.jsonl", "grade_rejects.jsonl", "synth.jsonl",
    "synth.rejects.jsonl", "synth_answer.rejects.jsonl", "translations.jsonl", "plots.jsonl",
    *(f"translate_{m}.jsonl" for m in SYSTEMS),
    *(f"data/{d}.jsonl" for d in ("pool", "knowledge", "creative", "translation_chats", "grpo_prompts", "grpo_heldout", "documents", "sft", "calibration",
                                   "judge_chats", "answer_tasks")),
]
# everything the demo leaves at the top of the run directory (the test walks all of it)
EXPECTED_TOP = [*MODELS, *JSONL_WITH_SIDECAR[:10], "synth_answer.jsonl", *(f"translate_{m}.jsonl" for m in SYSTEMS), "data", "cache", "plots",
                "eval.json", "autorank.json", "sample_report.json"]


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
    assert names == ["tiny-model", "data", "cluster", "sample-difficulty", "synthesize", "cpt", "sft", "grpo", "merge", "translate", "fusion", "eval", "plot"]
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
    assert {r["system"] for r in translations} == set(SYSTEMS)
    assert all(isinstance(r["hyp"], str) and len(r["hyp_paragraphs"]) >= 1 for r in translations)
    # translations.jsonl is made by the recipe itself: its sidecar names the five translate outputs
    meta = json.loads((run / "translations.jsonl.meta.json").read_text())
    assert [i["path"] for i in meta["inputs"]] == [str(run / f"translate_{s}.jsonl") for s in SYSTEMS]
    per_system = [sum(1 for x in (run / f"translate_{s}.jsonl").read_text().splitlines() if x.strip()) for s in SYSTEMS]
    assert meta["output"]["rows"] == len(translations) == sum(per_system)
    sweep = [json.loads(x) for x in (run / "cluster_sweep.jsonl").read_text().splitlines()]
    assert [r["threshold"] for r in sweep] == [0.3, 0.5, 0.7] and all(r["n_clusters"] >= 1 for r in sweep)


def test_sample_report_and_grade_rejects(demo_run):
    run, _ = demo_run
    report = json.loads((run / "sample_report.json").read_text())
    # the report is the provenance's "report" of the rows it describes
    assert report == json.loads((run / "selected.jsonl.meta.json").read_text())["report"]
    assert report["rounds"] == 2 and report["selected_per_round"] * 2 == sum(1 for _ in (run / "selected.jsonl").open())
    rejects = [json.loads(x) for x in (run / "grade_rejects.jsonl").read_text().splitlines() if x.strip()]
    assert len(rejects) == report["grading"]["invalid"]
    # each rejected verdict is the pool row with the judge's raw output and why it was refused
    pool_ids = {json.loads(x)["id"] for x in (run / "clustered.jsonl").read_text().splitlines() if x.strip()}
    assert all(r["id"] in pool_ids and r["grade_error"] and isinstance(r["grade_raw"], str) for r in rejects)


def test_the_trained_judge_gives_valid_verdicts(demo_run):
    """The judge (the base model after in2x sft on the judge chats) grades the unlabelled rows with
    verdicts the validator accepts, and its critic verdicts reach synthesize's outputs."""
    from in2x_cli.core.difficulty import judge_messages
    from in2x_cli.core.synthesize import parse_critic_verdict

    run, proc = demo_run
    assert json.loads((run / "judge" / "in2x_provenance.json").read_text())["command"].startswith("sft")
    chats = [json.loads(x) for x in (run / "data" / "judge_chats.jsonl").read_text(encoding="utf-8").splitlines()]
    grade_chat = next(c for c in chats if c["id"].startswith("j-grade-"))
    assert grade_chat["messages"][:2] == judge_messages(grade_chat["messages"][1]["content"].split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0])
    grades = [json.loads(x) for x in (run / "selected.jsonl.grades.jsonl").read_text().splitlines() if x.strip()]
    valid = [g for g in grades if g["valid"]]
    assert valid and all(g["method"] == "judge" and g["difficulty"] for g in valid)
    report = json.loads((run / "sample_report.json").read_text())
    assert report["grading"]["invalid"] == len(grades) - len(valid)
    line = next(ln for ln in proc.stdout.splitlines() if "] sample-difficulty:" in ln)
    assert f"{len(valid)} verdicts valid" in line and f"{len(grades) - len(valid)} invalid" in line
    rows = [json.loads(x) for name in ("synth.jsonl", "synth.rejects.jsonl", "synth_answer.jsonl", "synth_answer.rejects.jsonl")
            for x in (run / name).read_text(encoding="utf-8").splitlines() if x.strip()]
    judged = [r for r in rows if r.get("critic") and "invalid" in r["critic"]]
    assert judged and all(r["critic"]["model"] == "judge" for r in judged)
    for r in judged:  # each verdict is one the validator accepts, and a flagged row was rejected for it
        verdict = parse_critic_verdict(json.dumps({k: r["critic"][k] for k in ("contradiction", "hallucination", "invalid", "reason")}))
        assert bool(verdict.flags) == (r.get("reason") == "critic_flagged")
    flagged = sum(r.get("reason") == "critic_flagged" for r in judged)
    assert f"critic accepted {len(judged) - flagged}, flagged {flagged}" in next(ln for ln in proc.stdout.splitlines() if "] synthesize:" in ln)


def test_every_file_in_the_run_directory_is_valid_and_carries_provenance(demo_run):
    """Walk the whole run directory: each file parses as what its name says (JSON, JSONL, PNG,
    safetensors, npy, YAML, a torch zip archive, text) and carries provenance: a sidecar
    FILE.meta.json, an in2x_provenance.json in the checkpoint directory holding it, a provenance
    block inside the JSON document, or (PNG) a provenance text chunk. Inputs named by a
    provenance record still have the recorded sha256 (nothing was rewritten after the fact)."""
    run, _ = demo_run
    files = sorted(p for p in run.rglob("*") if p.is_file())
    top = {p.name for p in run.iterdir()}
    assert set(EXPECTED_TOP) <= top, sorted(set(EXPECTED_TOP) - top)
    records = 0
    for f in files:
        rel = f.relative_to(run)
        _check_valid(f)
        owner = next((d for d in f.parents if d != run and run in d.parents and (d / "in2x_provenance.json").is_file()), None)
        sidecar = Path(f"{f}.meta.json")
        if f.name.endswith(".meta.json"):
            described = Path(str(f)[: -len(".meta.json")])
            assert described.is_file(), f"sidecar without its file: {rel}"
            meta = _check_record(json.loads(f.read_text()), rel)
            assert meta["output"]["path"] == str(described), rel
            if described.suffix in (".jsonl", ".txt"):
                assert meta["output"]["rows"] == sum(1 for x in described.read_text(encoding="utf-8").splitlines() if x.strip()), rel
        elif sidecar.is_file():
            pass  # checked as the sidecar itself
        elif owner is not None:
            if f.name == "in2x_provenance.json":
                _check_record(json.loads(f.read_text()), rel)
        elif f.suffix == ".png":
            from PIL import Image

            from in2x_cli.plot.render import PROVENANCE_KEY

            _check_record(json.loads(Image.open(f).text[PROVENANCE_KEY]), rel)
        elif rel.parts[0] == "cache":  # the embedding cache: each array with its descriptor (embedder config, text digest)
            if f.suffix == ".npy":
                import numpy as np

                desc = json.loads(Path(f"{f}.json").read_text())
                assert list(np.load(f, mmap_mode="r").shape) == desc["shape"] and desc["info"]["embedder"] and desc["info"]["texts"], rel
            else:
                assert f.name.endswith(".npy.json") and Path(str(f)[: -len(".json")]).is_file(), rel
        elif str(rel) == "sample_report.json":
            assert json.loads(f.read_text()) == json.loads((run / "selected.jsonl.meta.json").read_text())["report"]
        elif f.suffix == ".json" and "provenance" in (doc := json.loads(f.read_text())):
            _check_record(doc["provenance"], rel)
        else:
            raise AssertionError(f"no provenance for {rel}")
        records += 1
    assert records == len(files) > 100


def test_fusion_step_compares_fusion_mbr_and_single_candidates(demo_run):
    """The fusion step: a grpo-trained fuser, held-out rows fused by `translate --fuse`, and the table
    recomputed here from the rows (fusion = hyp, MBR = the logged selection, oracle = best candidate)."""
    from sacrebleu.metrics import CHRF

    run, proc = demo_run
    doc = json.loads((run / "fusion" / "compare.json").read_text())
    rows = [json.loads(x) for x in (run / "fusion" / "fused_heldout.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    assert doc["rows"] == len(rows) == 6 and (run / "fusion" / "fuser" / "in2x_provenance.json").is_file()
    refs = [r["ref"] for r in rows]
    chrf = CHRF()
    assert doc["chrf"]["fusion (grpo-trained tiny fuser)"] == round(chrf.corpus_score([r["hyp"] for r in rows], [refs]).score, 2)
    mbr = [r["mbr"]["units"][0]["candidates"][r["mbr"]["units"][0]["selected"]]["text"] for r in rows]
    assert doc["chrf"]["MBR (chrF utility)"] == round(chrf.corpus_score(mbr, [refs]).score, 2)
    assert set(doc["chrf"]) == {"fusion (grpo-trained tiny fuser)", "MBR (chrF utility)", "greedy candidate", "best single candidate (oracle, per row)"}
    assert all(r["fusion"]["units"] for r in rows)
    line = next(ln for ln in proc.stdout.splitlines() if "] fusion:" in ln)
    assert "vs MBR" in line and "compare.json" in line


def test_comet_is_scored_when_the_comet_environment_exists(demo_run):
    """COMET is part of the demo whenever its environment exists (make demo builds it): every
    system gets a finite COMET score from the tiny local checkpoint; without it, no COMET at all."""
    import math

    from in2x_cli.comet import comet_available

    run, proc = demo_run
    doc = json.loads((run / "eval.json").read_text())
    eval_line = next(ln for ln in proc.stdout.splitlines() if "] eval:" in ln)
    if comet_available():
        assert (run / "tiny_comet" / "in2x_provenance.json").is_file()
        assert "comet=" in eval_line
        for res in doc["results"]:
            assert res["metrics"]["comet"]["signature"].startswith("model:tiny_comet")
            scores = [s["scores"]["comet"] for s in res["systems"]]
            assert len(scores) == len(SYSTEMS) and all(isinstance(x, float) and math.isfinite(x) for x in scores), scores
    else:
        assert not (run / "tiny_comet").exists() and "comet" not in eval_line
        assert all("comet" not in res["metrics"] for res in doc["results"])


def _check_record(meta: dict, rel: Path) -> dict:
    """A provenance record: made by in2x (its version, the command), with input checksums that
    still match the inputs where they are files."""
    from in2x_cli.io.jsonl import file_sha256

    assert meta.get("tool") == "in2x" and meta.get("version") and meta.get("command"), rel
    assert isinstance(meta.get("inputs"), list), rel
    for i in meta["inputs"]:
        assert i.get("sha256") or i.get("files"), (rel, i)
        if Path(i["path"]).is_file():
            assert file_sha256(i["path"]) == i["sha256"], f"{rel}: input {i['path']} changed after it was recorded"
    return meta


def _check_valid(f: Path) -> None:
    """The file parses as what its name says (pickled torch files are only opened as zip archives)."""
    import zipfile

    name = f.name
    if name.endswith(".json"):
        json.loads(f.read_text(encoding="utf-8"))
    elif name.endswith(".jsonl"):
        rows = [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
        assert all(isinstance(r, dict) for r in rows), f
    elif name.endswith(".png"):
        from PIL import Image

        with Image.open(f) as im:
            im.verify()
    elif name.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(str(f), framework="pt") as fh:
            assert list(fh.keys()), f
    elif name.endswith(".npy"):
        import numpy as np

        np.load(f, mmap_mode="r")
    elif name.endswith(".yaml"):
        import yaml

        assert yaml.safe_load(f.read_text(encoding="utf-8")), f
    elif name.endswith((".pt", ".pth", ".bin", ".ckpt")):
        assert zipfile.is_zipfile(f) and any(n.endswith("data.pkl") for n in zipfile.ZipFile(f).namelist()), f
    elif name.endswith((".txt", ".md", ".jinja")):
        assert f.read_text(encoding="utf-8").strip(), f
    else:
        raise AssertionError(f"unexpected file in the run directory: {f}")


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
    # plots.jsonl lists exactly the pictures, each drawn from a file of this run
    listed = [json.loads(x) for x in (run / "plots.jsonl").read_text().splitlines()]
    assert sorted(Path(r["png"]).name for r in listed) == pngs
    assert all(Path(r["source"]).is_file() and run in Path(r["source"]).parents for r in listed)
    for key in ("eval.json", "autorank.json"):  # results carry their provenance inline
        prov = json.loads((run / key).read_text())["provenance"]
        assert prov["tool"] == "in2x" and prov["command"] == ("eval" if key == "eval.json" else "eval autorank")
    assert json.loads((run / "autorank.json").read_text())["provenance"]["inputs"][0]["path"] == str(run / "eval.json")
