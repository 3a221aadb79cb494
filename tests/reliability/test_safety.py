"""No unsafe loading: hostile files planted where in2x reads models, checkpoints and configs.

The payloads are real: unpickling ``Payload`` (or running the planted model code, or building the
YAML object) creates a marker file, so "refused" means refused before any of it ran — the marker
must not exist afterwards. Also a source scan: every ``torch.load`` in in2x and in the
transformers/TRL code our resume runs passes ``weights_only=True``; YAML only through
``safe_load``; ``trust_remote_code`` only from the ``--trust-remote-code`` flag.
The planted-pickle refusal of ``resolve_model`` itself is tests/io/test_checkpoint.py; the
weights_only=True loads of an sft resume are recorded in tests/train/test_sft_cmd.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.util import REPO, assert_user_error, invoke, write_jsonl

SITE = Path(__import__("transformers").__file__).parent.parent


class Payload:
    """Unpickling this opens (creates) ``marker``: what a hostile checkpoint file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


def plant_pickle(path: Path, marker: Path) -> None:
    """A torch.save archive whose unpickling runs the payload (the format of *.bin / *.pt files)."""
    import torch

    torch.save({"state": Payload(marker)}, path)


@pytest.fixture()
def marker(tmp_path: Path) -> Path:
    m = tmp_path / "PAYLOAD-RAN"
    yield m
    assert not m.exists(), "a planted payload was executed"


def _data(tmp_path: Path) -> dict[str, Path]:
    return {
        "rows": write_jsonl(tmp_path / "rows.jsonl", [{"id": 1, "src": "Hello.", "src_lang": "en", "tgt_lang": "ja"}]),
        "chat": write_jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}] * 2),
        "text": write_jsonl(tmp_path / "text.jsonl", [{"text": "Some calibration text for the model."}] * 2),
        "prompts": write_jsonl(tmp_path / "prompts.jsonl", [{"instruction": "What is 1+1?", "answer": "2"}] * 2),
        "tasks": write_jsonl(tmp_path / "tasks.jsonl", [{"instruction": "Say hi.", "lang": "en"}]),
        "pool": write_jsonl(tmp_path / "pool.jsonl", [{"instruction": "Say hi.", "lang": "en"}]),
    }


def model_commands(model: Path, d: dict[str, Path], out: Path, other: Path) -> dict[str, list[str]]:
    """Every command that reads a model directory, pointed at ``model`` (``other``: a second,
    ordinary model for merge)."""
    m = str(model)
    small = ["--report-to", "none", "--max-steps", "1"]
    return {
        "translate": ["translate", str(d["rows"]), "-m", m, "--backend", "transformers", "--max-tokens", "2", "-o", str(out / "t.jsonl")],
        "synthesize": ["synthesize", "answer", str(d["tasks"]), "-m", m, "--answer-max-tokens", "2", "--langs", "en", "-o", str(out / "s.jsonl")],
        "sample-difficulty": ["sample-difficulty", str(d["pool"]), "--total", "1", "--lang-ratio", "en=1", "--judge-model", m,
                              "--judge-max-tokens", "2", "-o", str(out / "p.jsonl")],
        "cluster": ["cluster", str(d["text"]), "--embed-model", m, "--no-cache", "-o", str(out / "c.jsonl")],
        "cpt": ["cpt", "--data", str(d["text"]), "--model", m, "-o", str(out / "cpt"), "--seq-len", "16", *small],
        "sft": ["sft", str(d["chat"]), "--model", m, "-o", str(out / "sft"), "--max-length", "32", *small],
        "grpo": ["grpo", str(d["prompts"]), "--model", m, "-o", str(out / "grpo"), "--reward", "math_exact", "-G", "2", "--rollout-batch", "2",
                 "--minibatch", "1", "--batch-size", "2", "--max-completion-tokens", "2", *small],
        "merge": ["merge", "--method", "linear", "-m", m, "-m", str(other), "-o", str(out / "merged")],
        "fisher-stats": ["merge", "fisher-stats", m, "--calibration", str(d["text"]), "-o", str(out / "fisher"), "--device", "cpu"],
    }


COMMANDS = ["translate", "synthesize", "sample-difficulty", "cluster", "cpt", "sft", "grpo", "merge", "fisher-stats"]


@pytest.mark.parametrize("command", COMMANDS)
def test_pickle_only_model_directory_is_refused_by_every_command(command: str, tiny_model: Path, tmp_path: Path, marker: Path) -> None:
    model = tmp_path / "hostile"
    shutil.copytree(tiny_model, model)
    (model / "model.safetensors").unlink()
    plant_pickle(model / "pytorch_model.bin", marker)
    out = tmp_path / "out"
    out.mkdir()
    res = invoke(model_commands(model, _data(tmp_path), out, tiny_model)[command])
    assert_user_error(res, str(model), "refusing to load pickle weights")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("command", ["translate", "merge", "fisher-stats"])
def test_pickle_next_to_safetensors_is_never_unpickled(command: str, tiny_model: Path, tmp_path: Path, marker: Path) -> None:
    """A hostile pytorch_model.bin (and model.pt) beside the real weights: the command loads the
    safetensors and never touches the pickles."""
    model = tmp_path / "mixed"
    shutil.copytree(tiny_model, model)
    plant_pickle(model / "pytorch_model.bin", marker)
    plant_pickle(model / "model.pt", marker)
    out = tmp_path / "out"
    out.mkdir()
    res = invoke(model_commands(model, _data(tmp_path), out, tiny_model)[command])
    assert res.code == 0, res.stderr[-2000:]


def _checkpoint_run(tiny_model: Path, tmp_path: Path) -> tuple[list[str], Path]:
    from tests.reliability.scenarios import TRAIN_STAGES

    stage = TRAIN_STAGES["cpt"]
    out = tmp_path / "run"
    args = [a if a != "12" else "2" for a in stage.argv(stage.make_input(tmp_path), str(tiny_model), out)]  # --max-steps 2
    res = invoke(args)
    assert res.code == 0, res.stderr[-2000:]
    for p in out.iterdir():  # leave only checkpoint-1, as if the run had been killed after it
        if p.name != "checkpoint-1":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return args, out / "checkpoint-1"


@pytest.mark.parametrize("planted", ["optimizer.pt", "scheduler.pt", "rng_state.pth", "pytorch_model.bin"])
def test_hostile_file_in_a_resume_checkpoint_is_refused(planted: str, tiny_model: Path, tmp_path: Path, marker: Path) -> None:
    """--resume reads optimizer / scheduler / RNG state with torch.load(weights_only=True): a
    tampered file is refused with a clear message naming the checkpoint (exit 2, no traceback);
    model weights in a checkpoint are read from safetensors when present, so a planted
    pytorch_model.bin replaces them here to force the pickle path."""
    args, ckpt = _checkpoint_run(tiny_model, tmp_path)
    if planted == "pytorch_model.bin":
        (ckpt / "model.safetensors").unlink()
    plant_pickle(ckpt / planted, marker)
    res = invoke([*args, "--resume"])
    assert_user_error(res, str(ckpt), "weights-only loading does not allow")
    assert not (ckpt.parent / "in2x_provenance.json").exists()


def test_grpo_rollout_buffer_is_loaded_weights_only(tiny_model: Path, tmp_path: Path, marker: Path) -> None:
    """grpo's own resume file (the mid-rollout buffer) goes through the same refusal."""
    from tests.reliability.scenarios import TRAIN_STAGES

    stage = TRAIN_STAGES["grpo"]
    out = tmp_path / "run"
    args = [a if a != "8" else "2" for a in stage.argv(stage.make_input(tmp_path), str(tiny_model), out)]  # --max-steps 2
    assert invoke(args).code == 0
    ckpt = out / "checkpoint-1"
    buffers = list(ckpt.glob("in2x_rollout_buffer.pt*"))
    assert buffers, "checkpoint-1 of a 2-update rollout batch is mid-rollout and keeps its rollouts"
    for p in out.iterdir():
        if p.name != "checkpoint-1":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    plant_pickle(buffers[0], marker)
    res = invoke([*args, "--resume"])
    assert_user_error(res, str(ckpt), "weights-only loading does not allow")


def test_yaml_tags_do_not_build_objects(tiny_model: Path, tmp_path: Path, marker: Path) -> None:
    """YAML is read with safe_load: a python/object tag is an error, never a constructor call."""
    evil = f"!!python/object/apply:builtins.open [{str(marker)!r}, 'w']"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"merge_method: linear\nmodels:\n  - model: {tiny_model}\n  - model: {evil}\n", encoding="utf-8")
    assert_user_error(invoke(["merge", "-c", str(recipe), "-o", str(tmp_path / "m")]), str(recipe))
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(f"answer_system: {evil}\n", encoding="utf-8")
    tasks = write_jsonl(tmp_path / "t.jsonl", [{"instruction": "hi", "lang": "en"}])
    assert_user_error(invoke(["synthesize", "answer", str(tasks), "-m", "x", "--prompt-file", str(prompts)]), str(prompts))


@pytest.mark.parametrize("command", ["translate", "sft", "cpt", "grpo", "fisher-stats", "cluster"])
def test_custom_model_code_runs_only_with_trust_remote_code(command: str, tiny_model: Path, tmp_path: Path, marker: Path) -> None:
    """A model directory whose architecture exists only as code in the directory (auto_map to a
    planted modeling file that would create the marker on import) is refused with a message that
    names --trust-remote-code."""
    model = tmp_path / "custom"
    shutil.copytree(tiny_model, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(model_type="hostile", auto_map={"AutoConfig": "modeling_hostile.C", "AutoModelForCausalLM": "modeling_hostile.M", "AutoModel": "modeling_hostile.M"})
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "modeling_hostile.py").write_text(f"open({str(marker)!r}, 'w')\nfrom transformers import Qwen2Config as C, Qwen2ForCausalLM as M\n")
    out = tmp_path / "out"
    out.mkdir()
    res = invoke(model_commands(model, _data(tmp_path), out, tiny_model)[command])
    assert_user_error(res, str(model), "--trust-remote-code")


# --------------------------------------------------------------------------- source scan


def _calls(text: str, name: str) -> list[str]:
    """The full text of every call ``name(...)`` in ``text`` (balanced parentheses)."""
    out = []
    for m in re.finditer(re.escape(name) + r"\(", text):
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        out.append(text[m.start() : i + 1])
    return out


def test_every_torch_load_is_weights_only() -> None:
    files = sorted((REPO / "in2x_cli").rglob("*.py"))
    # the transformers / TRL code our --resume runs (Trainer._load_* and TRL's trainers)
    files += [SITE / "transformers" / "trainer.py", SITE / "transformers" / "trainer_pt_utils.py", *sorted((SITE / "trl" / "trainer").glob("*.py"))]
    seen = 0
    for f in files:
        for call in _calls(f.read_text(encoding="utf-8"), "torch.load"):
            seen += 1
            assert "weights_only=True" in call, f"{f}: {call}"
    assert seen >= 10  # in2x's own and transformers' resume loads were found


def test_no_unsafe_deserialisation_or_unconditional_remote_code() -> None:
    for f in sorted((REPO / "in2x_cli").rglob("*.py")):
        text = f.read_text(encoding="utf-8")
        for bad in ("pickle.load(", "pickle.loads(", "yaml.load(", "yaml.unsafe_load(", "yaml.full_load(", "trust_remote_code=True", "weights_only=False"):
            assert bad not in text, f"{f}: {bad}"
        for call in _calls(text, "from_pretrained"):
            if "Tokenizer" in call or "Config" in call or "Peft" in call:
                continue
            # model loads take trust_remote_code from the flag (or not at all: then transformers refuses custom code)
            assert "trust_remote_code=True" not in call, f"{f}: {call}"
