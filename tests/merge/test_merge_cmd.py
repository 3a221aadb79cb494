"""`in2x merge` end to end through the real CLI: output loads with from_pretrained, provenance,
Fisher and OBIM calibration, DARE seeding, and every mismatch is one error line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from in2x_cli.core import merge as M
from tests.merge.helpers import load_all, variant
from tests.util import assert_user_error, invoke, write_jsonl

CALIBRATION = [
    {"text": "The city council approved a new budget for public libraries."},
    {"messages": [{"role": "user", "content": "Translate into Japanese: Good morning."}, {"role": "assistant", "content": "おはようございます。"}]},
    {"instruction": "What is 2 + 3?", "response": "2 + 3 = 5."},
]


@pytest.fixture(scope="module")
def zoo(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge_cmd")
    calib = write_jsonl(root / "calib.jsonl", CALIBRATION)
    return {"base": tiny_model, "a": variant(tiny_model, root / "a", seed=11), "b": variant(tiny_model, root / "b", seed=12), "calib": calib}


def _merge(*args: str) -> None:
    res = invoke(["-q", "merge", *args])
    assert res.code == 0, res.stderr


def test_ties_flags_output_loads_with_from_pretrained_and_records_provenance(zoo: dict[str, Path], tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    _merge("--method", "ties", "--base", str(zoo["base"]), "-m", str(zoo["a"]), "-m", str(zoo["b"]),
           "-w", "1", "-w", "0.5", "-d", "0.5", "--shard-size", "200KB", "-o", str(out))
    assert (out / "model.safetensors.index.json").exists()
    model = AutoModelForCausalLM.from_pretrained(str(out))
    merged = load_all(out)
    for name, param in model.state_dict().items():
        if name in merged:
            assert torch.equal(param, merged[name]), name
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[5, 6, 7]])).logits
    assert torch.isfinite(logits).all()
    prov = json.loads((out / "in2x_provenance.json").read_text())
    assert prov["command"] == "merge"
    assert prov["merge"]["method"] == "ties" and prov["merge"]["paper"] == "https://arxiv.org/abs/2306.01708"
    assert [m["parameters"] for m in prov["merge"]["models"]] == [{"weight": 1.0, "density": 0.5}, {"weight": 0.5, "density": 0.5}]
    assert [i["path"] for i in prov["inputs"]] == [str(zoo["base"]), str(zoo["a"]), str(zoo["b"])]
    assert all(len(i["sha256"]) == 64 for i in prov["inputs"])


def test_yaml_from_stdin(zoo: dict[str, Path], tmp_path: Path) -> None:
    recipe = (
        f"merge_method: task_arithmetic\nbase_model: {zoo['base']}\nmodels:\n"
        f"  - {{model: {zoo['a']}, parameters: {{weight: 0.5}}}}\n  - {{model: {zoo['b']}, parameters: {{weight: 0.25}}}}\n"
        "parameters: {lambda: 2.0}\n"
    )
    out = tmp_path / "ta"
    res = invoke(["-q", "merge", "-c", "-", "-o", str(out)], stdin=recipe)
    assert res.code == 0, res.stderr
    base, a, b, got = load_all(zoo["base"]), load_all(zoo["a"]), load_all(zoo["b"]), load_all(out)
    n = "model.layers.1.self_attn.o_proj.weight"
    torch.testing.assert_close(got[n], base[n] + 2.0 * (0.5 * (a[n] - base[n]) + 0.25 * (b[n] - base[n])))


def test_dare_is_seeded(zoo: dict[str, Path], tmp_path: Path) -> None:
    args = ["--method", "dare", "--base", str(zoo["base"]), "-m", str(zoo["a"]), "-m", str(zoo["b"]), "-d", "0.3"]
    for name, seed in (("s1", "1"), ("s1again", "1"), ("s2", "2")):
        _merge(*args, "--seed", seed, "-o", str(tmp_path / name))
    s1, again, s2 = (load_all(tmp_path / n) for n in ("s1", "s1again", "s2"))
    n = "model.layers.0.mlp.down_proj.weight"
    assert torch.equal(s1[n], again[n])
    assert not torch.equal(s1[n], s2[n])
    base = load_all(zoo["base"])[n]
    # dare_ties without normalize: about 1 − (1 − 0.3)² ≈ 51% of entries move
    assert 0.35 < (s1[n] != base).float().mean().item() < 0.65


def test_fisher_stats_then_fisher_merge(zoo: dict[str, Path], tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    one = write_jsonl(tmp_path / "one.jsonl", CALIBRATION[:1])
    res = invoke(["-q", "merge", "fisher-stats", str(zoo["a"]), "--calibration", str(one), "-o", str(tmp_path / "fa"), "--device", "cpu"])
    assert res.code == 0, res.stderr
    # one example: F = (∇ mean token NLL)², computed here by hand
    model = AutoModelForCausalLM.from_pretrained(str(zoo["a"]))
    tok = AutoTokenizer.from_pretrained(str(zoo["a"]))
    ids = torch.tensor([tok(CALIBRATION[0]["text"])["input_ids"]])
    model(input_ids=ids, labels=ids).loss.backward()
    fa = load_all(tmp_path / "fa")
    name = "model.layers.0.self_attn.q_proj.weight"
    torch.testing.assert_close(fa[name], model.get_parameter(name).grad.square())
    assert json.loads((tmp_path / "fa" / "in2x_stats.json").read_text())["in2x_stats"] == "fisher"

    res = invoke(["-q", "merge", "fisher-stats", str(zoo["b"]), "--calibration", str(zoo["calib"]), "-o", str(tmp_path / "fb"), "--device", "cpu"])
    assert res.code == 0, res.stderr
    out = tmp_path / "fisher"
    _merge("--method", "fisher", "-m", str(zoo["a"]), "-m", str(zoo["b"]), "-w", "1", "-w", "2",
           "--stats", str(tmp_path / "fa"), "--stats", str(tmp_path / "fb"), "-o", str(out))
    a, b, fb, got = load_all(zoo["a"]), load_all(zoo["b"]), load_all(tmp_path / "fb"), load_all(out)
    torch.testing.assert_close(got[name], M.fisher([a[name], b[name]], [fa[name], fb[name]], [1, 2]))
    # the Fisher weighting matters: not the plain weighted average
    assert not torch.allclose(got[name], (a[name] + 2 * b[name]) / 3)


def test_obim_with_activation_stats_and_on_the_fly_calibration(zoo: dict[str, Path], tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    one = write_jsonl(tmp_path / "one.jsonl", CALIBRATION[:1])
    res = invoke(["-q", "merge", "activation-stats", str(zoo["a"]), "--calibration", str(one), "-o", str(tmp_path / "act")])
    assert res.code == 0, res.stderr
    act = load_all(tmp_path / "act")
    # by hand: the squared input of model.layers.1.mlp.down_proj summed over the tokens
    model = AutoModelForCausalLM.from_pretrained(str(zoo["a"]))
    tok = AutoTokenizer.from_pretrained(str(zoo["a"]))
    seen: list[torch.Tensor] = []
    model.model.layers[1].mlp.down_proj.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    with torch.no_grad():
        model(input_ids=torch.tensor([tok(CALIBRATION[0]["text"])["input_ids"]]))
    torch.testing.assert_close(act["model.layers.1.mlp.down_proj.weight"], seen[0].square().sum((0, 1)))
    assert "model.embed_tokens.weight" not in act  # not a linear input: OBIM falls back to δ²
    # activation statistics where Fisher statistics are expected: refused
    res = invoke(["merge", "--method", "fisher", "-m", str(zoo["a"]), "-m", str(zoo["b"]),
                  "--stats", str(tmp_path / "act"), "--stats", str(tmp_path / "act"), "-o", str(tmp_path / "x")])
    assert_user_error(res, "activations statistics", "fisher needs fisher")

    out = tmp_path / "obim"
    # model a with precomputed statistics, model b without (an empty --stats): magnitude saliency
    _merge("--method", "obim", "--base", str(zoo["base"]), "-m", str(zoo["a"]), "-m", str(zoo["b"]), "-d", "0.3",
           "--stats", str(tmp_path / "act"), "--stats", "", "-o", str(out))
    base, a, b, got = load_all(zoo["base"]), load_all(zoo["a"]), load_all(zoo["b"]), load_all(out)
    for name in base:
        moved = got[name] != base[name]
        from_a = got[name] == a[name]
        from_b = got[name] == b[name]
        # every changed entry is exactly one model's value: the masks are mutually exclusive
        assert bool((~moved | (from_a ^ from_b)).all()), name
        assert 0.25 < moved.float().mean().item() < 0.61, name
    n = "model.layers.1.mlp.down_proj.weight"
    masks = M.obim_masks(base[n], [a[n], b[n]], [0.3, 0.3], [act[n], None])
    assert torch.equal(got[n], base[n] + masks[0] * (a[n] - base[n]) + masks[1] * (b[n] - base[n]))

    out2 = tmp_path / "obim_fly"
    _merge("--method", "obim", "--base", str(zoo["base"]), "-m", str(zoo["a"]), "-m", str(zoo["b"]),
           "--calibration", str(zoo["calib"]), "--calibration-device", "cpu", "-o", str(out2))
    assert set(load_all(out2)) == set(base)
    assert not list(tmp_path.glob(".in2x-merge-stats-*"))  # scratch statistics are removed


def _broken(zoo: dict[str, Path], tmp_path: Path, name: str, **kw: object) -> Path:
    return variant(zoo["base"], tmp_path / name, seed=5, **kw)  # type: ignore[arg-type]


def test_mismatched_inputs_exit_2_with_one_line(zoo: dict[str, Path], tmp_path: Path) -> None:
    base = str(zoo["base"])
    arch = _broken(zoo, tmp_path, "arch", config_edit=lambda c: {**c, "architectures": ["LlamaForCausalLM"]})
    vocab = _broken(zoo, tmp_path, "vocab", config_edit=lambda c: {**c, "vocab_size": 1234})
    missing = _broken(zoo, tmp_path, "missing", edit=lambda sd: {k: v for k, v in sd.items() if k != "model.norm.weight"})
    shape = _broken(zoo, tmp_path, "shape", edit=lambda sd: {**sd, "model.norm.weight": torch.ones(65)})
    cases = [
        (arch, ["architectures differ", "LlamaForCausalLM"]),
        (vocab, ["vocabulary size 1234", "--resize-vocab"]),
        (missing, ["lacks tensor 'model.norm.weight'"]),
        (shape, ["tensor 'model.norm.weight' has shape [65]"]),
    ]
    for bad, fragments in cases:
        out = tmp_path / f"out-{bad.name}"
        res = invoke(["merge", "--method", "ties", "--base", base, "-m", str(zoo["a"]), "-m", str(bad), "-o", str(out)])
        assert_user_error(res, str(bad), *fragments)
        assert not out.exists() and not list(tmp_path.glob(f".out-{bad.name}.partial-*"))


def test_usage_errors_exit_2(zoo: dict[str, Path], tmp_path: Path) -> None:
    a, b, base = str(zoo["a"]), str(zoo["b"]), str(zoo["base"])
    existing = tmp_path / "exists"
    existing.mkdir()
    recipe = tmp_path / "r.yaml"
    recipe.write_text("merge_method: linear\nmodels: [a]\n")
    cases = [
        (["--method", "ties", "-m", a, "-o", str(tmp_path / "x")], ["ties needs a base model"]),
        (["--method", "linear", "-m", a, "-m", str(tmp_path / "nope"), "-o", str(tmp_path / "x")], ["nope", "not found"]),
        (["--method", "linear", "-m", a, "-m", b, "-o", str(existing)], ["already exists"]),
        (["--method", "linear", "-m", a, "-m", b], ["missing --output"]),
        (["-c", str(recipe), "--method", "ties", "-o", str(tmp_path / "x")], ["--method cannot be combined with --config"]),
        (["--method", "fisher", "-m", a, "-m", b, "-o", str(tmp_path / "x")], ["fisher needs calibration data"]),
        (["--method", "ties", "--base", base, "-m", a, "-m", b, "-w", "1", "-w", "2", "-w", "3", "-o", str(tmp_path / "x")], ["--weight given 3 times"]),
        (["--method", "ties", "--base", base, "-m", a, "--rescale", "maybe", "-o", str(tmp_path / "x")], ["rescale"]),
    ]
    for args, fragments in cases:
        assert_user_error(invoke(["merge", *args]), *fragments)
    bad_calib = write_jsonl(tmp_path / "bad.jsonl", [{"text": "fine"}, {"label": 3}])
    res = invoke(["merge", "fisher-stats", a, "--calibration", str(bad_calib), "-o", str(tmp_path / "f"), "--device", "cpu"])
    assert_user_error(res, "bad.jsonl:2", "needs 'text'")
    assert not (tmp_path / "f").exists()
