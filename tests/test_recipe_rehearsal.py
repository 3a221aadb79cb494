"""A CPU rehearsal of recipes/in2x.sh: the paper recipe end to end, tiny model and tiny budgets, on
inputs built from exactly the fields its header lists (no `id` in the pool: the RL pool must stay
disjoint from SFT through content-hash ids). Offline; a couple of minutes, hence ``slow`` (make
test runs slow tests; ``-m "not slow"`` skips them)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from in2x_cli.records import row_id
from in2x_cli.tiny import load_corpus

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes" / "in2x.sh"


def header_spec() -> dict[str, tuple[set[str], set[str]]]:
    """file name -> (required fields, optional fields), read from the recipe's header comment."""
    spec: dict[str, tuple[set[str], set[str]]] = {}
    for line in RECIPE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#") or not re.search(r"\w+\.(jsonl|txt)\s", line):
            continue
        names = re.findall(r"(\w+\.(?:jsonl|txt))", line.split(":")[0])
        if ":" not in line or not names:
            continue
        fields = line.rsplit(": ", 1)[-1]
        optional = set(re.findall(r"\w+", "".join(re.findall(r"\[(.*?)\]", fields))))
        required = set(re.findall(r"\w+", re.sub(r"\[.*?\]", "", fields))) if names[0].endswith(".jsonl") else set()
        for n in names:
            spec[n] = (required, optional)
    return spec


def only(row: dict, spec: tuple[set[str], set[str]]) -> dict:
    required, optional = spec
    missing = required - set(row)
    assert not missing, (missing, row)
    return {k: v for k, v in row.items() if k in required | optional}


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def build_data(d: Path) -> dict[str, tuple[set[str], set[str]]]:
    spec = header_spec()
    assert {"pool.jsonl", "seed_tasks.jsonl", "cpt_knowledge.jsonl", "cpt_hq.jsonl", "calib_ja.jsonl", "test.jsonl"} <= set(spec)
    d.mkdir(parents=True)
    pool = [dict(r) for r in load_corpus("instructions")]
    for r in load_corpus("parallel")[:60]:
        pool.append({"lang": "ja", "instruction": f"次の英語を日本語に翻訳してください。\n\n{r['en']}", "response": r["ja"], "src": r["en"],
                     "ref": r["ja"], "tgt_lang": "ja", "tag": "Translation - English to Japanese", "difficulty": "medium"})  # fmt: skip
    rows = [only({k: v for k, v in r.items() if k != "id"}, spec["pool.jsonl"]) for r in pool]  # no ids: the spec makes them optional
    write(d / "pool.jsonl", rows)
    write(d / "seed_tasks.jsonl", [only(r, spec["seed_tasks.jsonl"]) for r in load_corpus("seed_tasks")])
    (d / "rules.txt").write_text("Write tasks a native speaker would ask.\nKeep each task self-contained and answerable.\n", encoding="utf-8")
    pre = load_corpus("pretrain")
    docs = load_corpus("documents")
    cpt = {"cpt_knowledge.jsonl": [r for r in pre if r.get("kind") != "creative"], "cpt_creative.jsonl": [r for r in pre if r.get("kind") == "creative"],
           "cpt_long.jsonl": [{"lang": x["tgt_lang"], "text": x["ref_text"]} for x in docs] + pre, "cpt_hq.jsonl": pre}  # fmt: skip
    for name, items in cpt.items():
        write(d / name, [only(r, spec[name]) for r in items])
    par = load_corpus("parallel")
    for name, (src, tgt) in {"calib_ja.jsonl": ("en", "ja"), "calib_zh.jsonl": ("ja", "zh")}.items():
        write(d / name, [only({"messages": [{"role": "user", "content": r[src]}, {"role": "assistant", "content": r[tgt]}]}, spec[name]) for r in par[:16]])
    write(d / "test.jsonl", [only(x, spec["test.jsonl"]) for x in docs[:3]])
    return spec


TINY_BUDGETS = {
    "SFT_ROWS": "60", "RL_ROWS": "4", "EMBED_MODEL": "", "SWEEP_THRESHOLDS": "0.3,0.6", "GRADE_K": "2", "SYNTH_ROWS": "3",
    "REWRITE_ROWS": "1", "SYNTH_MAX_TOKENS": "24", "JUDGE_MAX_TOKENS": "24", "CPT1_SEQ": "64", "CPT2_SEQ": "128",
    "CPT2_MIN_TOKENS": "16", "CPT2_ROPE_THETA": "20000", "CPT_ACCUM": "1", "SFT_MAX_LEN": "256", "SFT_ACCUM": "1", "MAX_STEPS": "2",
    "GRPO_BATCH": "2", "GRPO_MINIBATCH": "1", "GRPO_G": "2", "GRPO_PER_DEVICE": "2", "GRPO_MAX_TOKENS": "8",
    "GRPO_LENGTH_PENALTY": "4:8", "MBR": "2", "TRANSLATE_MAX_TOKENS": "16", "BACKEND": "transformers", "LAUNCHER": "none", "NPROC": "1",
}  # fmt: skip


@pytest.mark.slow
def test_recipe_runs_end_to_end_on_header_spec_data(tmp_path, tiny_model) -> None:
    data = tmp_path / "data"
    build_data(data)
    run = tmp_path / "run"
    in2x = shutil.which("in2x", path=str(Path(sys.executable).parent)) or shutil.which("in2x")
    assert in2x, "the in2x entry point is not installed"
    env = {**os.environ, **TINY_BUDGETS, "DATA": str(data), "IN2X": in2x, "PYTHON": sys.executable, "PYTHONPATH": str(REPO),
           "HF_HUB_OFFLINE": "1", "IN2X_NO_PROGRESS": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    res = subprocess.run(["bash", str(RECIPE), str(tiny_model), str(run)], env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    # curation: the threshold came from the sweep; the RL prompts are disjoint from SFT by row_id
    sweep = [json.loads(line) for line in (run / "cluster_sweep.jsonl").read_text().splitlines() if line.strip()]
    assert {r["threshold"] for r in sweep} == {0.3, 0.6} and all(r["tag_recapture"] is not None for r in sweep)
    assert "chosen" in (run / "cluster_threshold.log").read_text()
    sft = {row_id(json.loads(line)) for line in (run / "sft_selected.jsonl").read_text().splitlines() if line.strip()}
    rl = [json.loads(line) for line in (run / "rl_prompts_rewarded.jsonl").read_text().splitlines() if line.strip()]
    assert sft and rl and not sft & {row_id(r) for r in rl}
    assert all(r.get("judge") is True for r in rl if r.get("ref") is not None and r.get("answer") is None)
    # every rewrite style ran; CPT phase 1 balanced the languages; GRPO and the merge produced models
    for style in ("creative", "localize", "exam", "cultural"):
        assert (run / f"synth_rewrite_{style}.jsonl").exists()
    summary = json.loads((run / "cpt1" / "in2x_provenance.json").read_text())["summary"]
    assert set(summary["languages"]["shares"]) <= {"zh", "en", "ja"} and summary["languages"]["ratio"] == {"zh": 1.0, "en": 1.0, "ja": 1.0}
    grpo = json.loads((run / "grpo" / "in2x_provenance.json").read_text())
    assert [r["name"] for r in grpo["rewards"]] == ["math_exact", "format", "generative_judge"]
    assert (run / "in2x" / "model.safetensors").exists() and (run / "test.hyp.jsonl").exists()
