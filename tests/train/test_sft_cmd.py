"""``in2x sft`` end to end on the tiny model: golden losses, HF output, rounds and language
temperature, LoRA merge, launcher command, bad input, and resume after SIGKILL (bit-identical)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from in2x_cli.tiny import load_corpus
from in2x_cli.train.rundir import read_metrics
from tests.train.helpers import train_until_checkpoint
from tests.util import REPO, assert_user_error, invoke, write_jsonl

FAST = ["--max-length", "64", "--batch-size", "2", "--lr", "1e-3", "--logging-steps", "1", "--report-to", "none", "--seed", "0"]

# Loss of the 6 logged steps of `sft chat.jsonl FAST --max-steps 6` (seed 0, CPU fp32). Sanity:
# the random tiny model starts near ln(vocab) = ln(1000) = 6.908, and step 1 trains at LR 0 (warm-up).
GOLDEN_LOSSES = [6.9539, 6.8798, 6.7994, 6.7887, 6.7521, 6.6894]


def chat_rows(n_per_lang: int = 8, rounds: bool = False) -> list[dict]:
    rows = []
    by_lang: dict[str, int] = {}
    for r in load_corpus("instructions"):
        k = by_lang.get(r["lang"], 0)
        if k >= n_per_lang:
            continue
        by_lang[r["lang"]] = k + 1
        row = {"id": r["id"], "lang": r["lang"], "messages": [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["response"]}]}
        if rounds:
            row["round"] = 1 + k % 2
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def chat(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("sft") / "chat.jsonl", chat_rows())


def ref_args(chat: Path, model: Path) -> list[str]:
    return ["sft", str(chat), "--model", str(model), "--max-steps", "6", "--save-steps", "2", *FAST]


@pytest.fixture(scope="module")
def sft_ref(tiny_model, chat, tmp_path_factory) -> Path:
    """One uninterrupted reference run, shared by the golden-number and the resume tests."""
    out = tmp_path_factory.mktemp("sft_ref") / "run"
    res = invoke([*ref_args(chat, tiny_model), "-o", str(out)])
    assert res.code == 0, res.stderr
    assert res.stdout == ""  # stdout is data only
    return out


def weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_sft_golden_losses_and_hf_output(sft_ref):
    out = sft_ref
    rows = [r for r in read_metrics(out) if "loss" in r]
    losses = [round(r["loss"], 4) for r in rows]
    assert losses == GOLDEN_LOSSES, losses
    assert losses[-1] < losses[0]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6] and all(r["tokens_per_second"] > 0 for r in rows[1:])
    assert all("grad_norm" in r and "learning_rate" in r for r in rows)
    # HF directory: safetensors + config + tokenizer + chat template + provenance; no pickles
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja", "in2x_provenance.json", "metrics.jsonl"} <= names
    assert "training_args.bin" not in names and {"checkpoint-4", "checkpoint-6"} <= names
    prov = json.loads((out / "in2x_provenance.json").read_text())
    assert prov["command"] == "sft" and prov["summary"]["mask_mode"] == "markers"
    assert prov["summary"]["epochs"][0]["languages"] == {"en": 8, "ja": 8, "zh": 8}
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(str(out))
    assert "{% generation %}" in AutoTokenizer.from_pretrained(str(out)).chat_template


def test_sft_rounds_and_language_temperature(tiny_model, tmp_path):
    rows = chat_rows(n_per_lang=12, rounds=True)
    rows = [r for r in rows if r["lang"] != "zh" or r["round"] == 1][:]  # round 2: en 6, ja 6, zh 0
    rows += [dict(r, id=f"{r['id']}b") for r in rows if r["lang"] == "en" and r["round"] == 1]  # round 1: en 12, ja 6, zh 6
    data = write_jsonl(tmp_path / "r.jsonl", rows)
    out = tmp_path / "run"
    res = invoke(["sft", str(data), "--model", str(tiny_model), "-o", str(out), "--rounds", "--language-temperature", "2", "--max-steps", "1", *FAST])
    assert res.code == 0, res.stderr
    epochs = json.loads((out / "in2x_provenance.json").read_text())["summary"]["epochs"]
    assert [e["label"] for e in epochs] == ["round 1", "round 2"]
    # round 1: n = (en 12, ja 6, zh 6), T=2: sqrt → 3.464, 2.449, 2.449 → of 24: 9.90, 7.05, 7.05 → 10, 7, 7
    assert epochs[0]["conversations"] == 24 and epochs[0]["languages"] == {"en": 10, "ja": 7, "zh": 7}
    assert epochs[1]["conversations"] == 12 and epochs[1]["languages"] == {"en": 6, "ja": 6}


def test_sft_lora_merge(tiny_model, chat, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    loads: list[tuple[str, object]] = []
    real_load = AutoModelForCausalLM.from_pretrained

    def recording_load(path, *a, **kw):
        loads.append((str(path), kw.get("use_safetensors")))
        return real_load(path, *a, **kw)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", recording_load)
    out = tmp_path / "lora"
    res = invoke(["sft", str(chat), "--model", str(tiny_model), "-o", str(out), "--max-steps", "2", "--lora", "--lora-r", "4", "--merge-lora", *FAST])
    assert res.code == 0, res.stderr
    assert not (out / "adapter_model.safetensors").exists()
    merged, base = weights(out), weights(tiny_model)
    assert merged.keys() == base.keys()
    changed = [k for k in base if not (merged[k] == base[k]).all()]
    assert changed and all("proj" in k for k in changed)  # only adapted linear layers moved
    # the base model is read twice (training, then the merge), both times from safetensors only
    assert loads == [(str(tiny_model), True), (str(tiny_model), True)], loads


def test_sft_print_launch(tiny_model, chat, tmp_path):
    res = invoke(["sft", str(chat), "--model", str(tiny_model), "-o", str(tmp_path / "x"), "--epochs", "1", "--launcher", "accelerate", "--launch-config", "zero3", "--num-processes", "8", "--print-launch"])
    assert res.code == 0, res.stderr
    cmd = res.stdout.strip()
    assert "-m accelerate.commands.launch --config_file" in cmd and "launch/accelerate/zero3.yaml --num_processes 8" in cmd
    assert cmd.endswith(f"-m in2x_cli sft --model {tiny_model} --output {tmp_path / 'x'} --epochs 1 {chat} --launcher none --launch-config zero3")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("rows", "extra", "where", "message"),
    [
        ([{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, "{bad"], [], ":2", "invalid JSON"),
        ([{"text": "no chat"}], [], ":1", "'messages'"),
        ([{"messages": [{"role": "user", "content": "only a question"}]}], [], ":1", "no assistant turn"),
        ([{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}], ["--rounds"], ":1", "'round'"),
    ],
)
def test_sft_bad_input_exit_2(tiny_model, tmp_path, rows, extra, where, message):
    f = tmp_path / "bad.jsonl"
    f.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    res = invoke(["sft", str(f), "--model", str(tiny_model), "-o", str(tmp_path / "o"), *extra])
    assert_user_error(res, f"{f}{where}", message)


def test_sft_refuses_to_mix_runs(tiny_model, chat, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "metrics.jsonl").write_text("{}\n")
    assert_user_error(invoke(["sft", str(chat), "--model", str(tiny_model), "-o", str(out)]), str(out), "--resume")


@pytest.mark.slow
def test_sft_resume_after_sigkill_is_bit_identical(tiny_model, chat, sft_ref, tmp_path, monkeypatch):
    """Uninterrupted run vs. a subprocess killed with SIGKILL after its first checkpoint, resumed.
    The resume reads optimizer / scheduler / RNG state with torch.load(weights_only=True) only."""
    args = ref_args(chat, tiny_model)
    ref = sft_ref

    run = tmp_path / "killed"
    proc = train_until_checkpoint(args, run)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "in2x_provenance.json").exists()  # really interrupted before the end

    import torch

    loads: list[tuple[str, object]] = []
    real_load = torch.load

    def recording_load(f, *a, **kw):
        loads.append((str(f), kw.get("weights_only")))
        return real_load(f, *a, **kw)

    monkeypatch.setattr(torch, "load", recording_load)
    res = invoke([*args, "-o", str(run), "--resume"])
    assert res.code == 0, res.stderr
    assert "resume: continuing from" in res.stderr
    names = {Path(f).name for f, _ in loads}
    assert {"optimizer.pt", "scheduler.pt", "rng_state.pth"} <= names, loads
    assert all(wo is True for _, wo in loads), loads
    a, b = weights(ref), weights(run)
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k  # bit-identical
    steps = [r["step"] for r in read_metrics(run) if "loss" in r]
    assert steps == list(range(1, 7))  # rows after the checkpoint were dropped and logged again


def test_sft_rounds_train_every_round_1_example_before_round_2(tiny_model, tmp_path, monkeypatch):
    """Round r → epoch r holds in the batches the trainer really consumes: a spy on the collator
    records, batch by batch, which round each packed conversation came from. The epochs are laid
    out one after the other in the data, so this only holds with a sequential sampler (a shuffling
    one mixes the rounds: the test fails if ``train_sampling_strategy`` is not "sequential")."""
    import re

    from transformers import AutoTokenizer

    from in2x_cli.train import sft as sft_module

    rows = chat_rows(n_per_lang=12, rounds=True)
    for r in rows:  # a visible tag at the start of the user turn (survives --max-length truncation)
        r["messages"][0]["content"] = f"[round {r['round']}] " + r["messages"][0]["content"]
    data = write_jsonl(tmp_path / "r.jsonl", rows)
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    seen: list[list[int]] = []  # rounds of the conversations of each batch, in training order
    real_make_collator = sft_module.make_collator

    def spying_make_collator(*args, **kwargs):
        collate = real_make_collator(*args, **kwargs)

        def spy(examples):
            seen.append([int(m) for e in examples for m in re.findall(r"\[round (\d)\]", tok.decode(e["input_ids"]))])
            return collate(examples)

        return spy

    monkeypatch.setattr(sft_module, "make_collator", spying_make_collator)
    out = tmp_path / "run"
    res = invoke(["sft", str(data), "--model", str(tiny_model), "-o", str(out), "--rounds", *FAST])
    assert res.code == 0, res.stderr
    steps = [r["step"] for r in read_metrics(out) if "loss" in r]
    assert len(seen) == len(steps) > 4  # one collated batch per optimizer step (no grad accumulation)
    epochs = json.loads((out / "in2x_provenance.json").read_text())["summary"]["epochs"]
    n1, n2 = (e["conversations"] for e in epochs)  # after --max-length drops (one here)
    assert n1 + n2 >= 34 and [e["label"] for e in epochs] == ["round 1", "round 2"]
    order = [rnd for batch in seen for rnd in batch]
    # every conversation trained exactly once, all of round 1 before any of round 2
    assert order == [1] * n1 + [2] * n2, seen
    first_round_2 = next(i for i, batch in enumerate(seen) if 2 in batch)
    assert 0 < first_round_2 < len(seen) - 1  # round 2 really starts mid-run


def test_sft_random_init_trains_fresh_weights_of_the_same_architecture(tiny_model, chat, tmp_path):
    """``--random-init`` (what bench/train_gpu.py runs, on a config-only directory): the run works
    and starts from fresh weights of the checkpoint's architecture, not from its weights. The
    checkpoint here is the tiny model with every weight shifted by +0.5 (the tiny model itself is a
    seed-0 fresh init, which a seed-0 --random-init would reproduce exactly)."""
    import shutil

    import torch
    from safetensors.torch import save_file

    ckpt = tmp_path / "shifted"
    shutil.copytree(tiny_model, ckpt)
    save_file({k: v + 0.5 for k, v in weights(tiny_model).items()}, str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    base = weights(ckpt)
    runs = {}
    for name, extra in (("fresh", ["--random-init"]), ("fresh_again", ["--random-init"]), ("loaded", [])):
        out = tmp_path / name
        res = invoke(["sft", str(chat), "--model", str(ckpt), "-o", str(out), "--max-steps", "2", *extra, *FAST])
        assert res.code == 0, res.stderr
        runs[name] = weights(out)
        assert len([r for r in read_metrics(out) if "loss" in r]) == 2
    assert runs["fresh"].keys() == base.keys() and all(runs["fresh"][k].shape == base[k].shape for k in base)
    matrices = [k for k, v in base.items() if v.dim() == 2]
    # two steps at LR 1e-3 move a weight by ~1e-3 (Adam): the control run stays at the checkpoint...
    assert all((runs["loaded"][k] - base[k]).abs().max().item() < 3e-3 for k in matrices)
    # ...the --random-init run is far from it, around the config's init (std 0.02, mean 0)
    for k in matrices:
        fresh = runs["fresh"][k].float()
        assert (fresh - base[k]).abs().mean().item() > 0.4 and fresh.std().item() < 0.05 and abs(fresh.mean().item()) < 0.01, k
    for k in base:
        assert torch.equal(runs["fresh"][k], runs["fresh_again"][k]), k  # seeded: reproducible


def _train_gpu_bench():
    import importlib

    sys.path.insert(0, str(REPO / "bench"))
    try:
        return importlib.import_module("train_gpu")
    finally:
        sys.path.remove(str(REPO / "bench"))


def test_train_gpu_preflight_prints_the_pip_command_for_missing_wheels(capsys):
    bench = _train_gpu_bench()
    assert bench.preflight(lambda m: False) == [] and capsys.readouterr().err == ""
    missing = bench.preflight(lambda m: m in {"trl", "typer", "yaml", "pyarrow", "safetensors"})
    assert missing == ["trl", "typer", "yaml", "safetensors", "pyarrow"]
    err = capsys.readouterr().err
    cmd = next(line for line in err.splitlines() if "pip download" in line).strip()
    assert cmd == ".venv/bin/pip download --no-deps --only-binary=:all: -d wheels/ 'trl>=1.16,<1.17' 'typer>=0.15' 'pyyaml>=6' 'safetensors>=0.5' pyarrow"
    assert bench.pip_spec("sacrebleu") == "sacrebleu>=2.4,<3"


def test_train_gpu_preflight_covers_every_import_of_an_sft_run(tiny_model, chat, tmp_path):
    """A fresh interpreter runs `in2x sft` on the tiny model; every third-party module it imported
    must be in the bench's preflight table (or its list of optional ones)."""
    code = (
        "import json, sys\n"
        "from in2x_cli import cli\n"
        "try:\n"
        f"    cli.main({['sft', str(chat), '--model', str(tiny_model), '-o', str(tmp_path / 'o'), '--max-steps', '1', *FAST]!r})\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "IN2X_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(REPO), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    third_party = {m for m in imported if m not in sys.stdlib_module_names and not m.startswith("_") and m != "in2x_cli"}
    bench = _train_gpu_bench()
    assert {"trl", "typer", "rich", "yaml", "safetensors", "datasets"} <= third_party
    assert third_party <= set(bench.SFT_PATH_MODULES) | bench.OPTIONAL_MODULES, third_party - set(bench.SFT_PATH_MODULES) - bench.OPTIONAL_MODULES
