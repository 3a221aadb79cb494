"""Merge recipes: mergekit-shaped YAML parsing, validation and per-tensor parameter resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from in2x_cli.errors import UserError
from in2x_cli.merge.config import (
    config_from_flags,
    evaluate_setting,
    layer_position,
    load_yaml_config,
    resolve_parameters,
)


def _yaml(tmp_path: Path, text: str) -> str:
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return str(p)


def test_layer_position_is_mergekits_t() -> None:
    assert layer_position("model.layers.0.mlp.up_proj.weight", 3) == 0.0
    assert layer_position("model.layers.1.mlp.up_proj.weight", 3) == 0.5
    assert layer_position("model.layers.2.self_attn.q_proj.weight", 3) == 1.0
    assert layer_position("model.embed_tokens.weight", 3) == 0.0
    assert layer_position("model.layers.0.mlp.up_proj.weight", 1) == 1.0


def test_gradients_and_filters() -> None:
    assert evaluate_setting(0.3, "x", 0.7) == 0.3
    assert evaluate_setting([0.2, 0.8], "x", 0.5) == pytest.approx(0.5)
    assert evaluate_setting([0.0, 1.0, 0.0], "x", 0.25) == pytest.approx(0.5)
    flt = [{"filter": "mlp", "value": 0.9}, {"filter": "self_attn", "value": [0.1, 0.5]}, {"value": 0.4}]
    assert evaluate_setting(flt, "model.layers.0.mlp.up_proj.weight", 0.0) == 0.9
    assert evaluate_setting(flt, "model.layers.1.self_attn.q_proj.weight", 1.0) == pytest.approx(0.5)
    assert evaluate_setting(flt, "model.norm.weight", 0.0) == 0.4
    assert evaluate_setting([True, False], "x", 1.0) is False


def test_yaml_recipe_resolves_model_over_global_over_default(tmp_path: Path) -> None:
    for name in ("base", "a", "b"):
        (tmp_path / name).mkdir()
    path = _yaml(
        tmp_path,
        """
merge_method: ties
base_model: base
models:
  - model: base
  - {model: a, parameters: {weight: [0.0, 1.0], density: 0.5}}
  - model: b
parameters: {density: 0.25, lambda: 0.5}
dtype: bf16
""",
    )
    cfg = load_yaml_config(path)
    assert [Path(m.path).name for m in cfg.models] == ["a", "b"]  # the base listed in models is the base
    assert cfg.dtype == "bfloat16" and Path(cfg.base_model or "").name == "base"
    glob, per_model = resolve_parameters(cfg, "model.layers.1.mlp.up_proj.weight", num_layers=2)
    assert glob == {"lambda": 0.5, "normalize": True, "rescale": False, "int8_mask": False}
    assert per_model == [{"weight": 1.0, "density": 0.5}, {"weight": 1.0, "density": 0.25}]
    _, per_model = resolve_parameters(cfg, "model.embed_tokens.weight", num_layers=2)
    assert per_model[0]["weight"] == 0.0  # outside the layer stack t = 0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("merge_method: ties\nmodels: [a]\n", "ties needs a base model"),
        ("merge_method: nope\nmodels: [a]\n", "unknown merge method 'nope'"),
        ("merge_method: linear\nmodels:\n  - {model: a, parameters: {density: 0.5}}\n", "unknown model 'a' parameter 'density'"),
        ("merge_method: ties\nbase_model: b\nmodels:\n  - {model: a, parameters: {density: 1.5}}\n", "density must be in [0, 1]"),
        ("merge_method: ties\nbase_model: b\nmodels:\n  - {model: a, parameters: {weight: high}}\n", "'weight' must be a number"),
        ("merge_method: linear\nmodels: [a]\nslices: []\n", "'slices' is not supported"),
        ("merge_method: linear\nmodels: [a]\nfoo: 1\n", "unknown key 'foo'"),
        ("merge_method: fisher\nmodels: [a, b]\n", "fisher needs calibration data"),
        ("merge_method: linear\nmodels: [a, a]\n", "listed twice"),
        ("merge_method: linear\nmodels: []\n", "'models' must be a non-empty list"),
        ("merge_method: linear\nmodels: [a]\ntokenizer_source: union\n", "union is not supported"),
    ],
)
def test_bad_recipes_are_user_errors(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(UserError) as err:
        load_yaml_config(_yaml(tmp_path, text))
    assert fragment in str(err.value)
    assert "recipe.yaml" in str(err.value)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        load_yaml_config(_yaml(tmp_path, "merge_method: ties\nmodels:\n  - model: [unclosed\n"))
    assert "recipe.yaml:4" in str(err.value) or "recipe.yaml:3" in str(err.value)


def test_flags_align_per_model_values() -> None:
    cfg = config_from_flags(
        method="ties", models=["a", "b"], base_model="base", weights=[1.0, 0.5], densities=[0.3],
        lambda_=None, normalize=False, rescale="inverse_density", calibration=[], stats=[], dtype=None,
        tokenizer_source=None, seed=3, resize_vocab=False,
    )
    assert [dict(m.parameters) for m in cfg.models] == [{"weight": 1.0, "density": 0.3}, {"weight": 0.5, "density": 0.3}]
    assert dict(cfg.parameters) == {"normalize": False, "rescale": "inverse_density"}
    with pytest.raises(UserError, match="--weight given 3 times for 2 models"):
        config_from_flags(
            method="ties", models=["a", "b"], base_model="base", weights=[1, 2, 3], densities=[], lambda_=None,
            normalize=None, rescale=None, calibration=[], stats=[], dtype=None, tokenizer_source=None, seed=0, resize_vocab=False,
        )


def test_a_listed_base_is_an_input_for_methods_without_a_base(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "merge_method: linear\nbase_model: base\nmodels: [base, a]\n")
    assert [m.path for m in load_yaml_config(path).models] == ["base", "a"]
    path = _yaml(tmp_path, "merge_method: task_arithmetic\nbase_model: base\nmodels: [base, a]\n")
    assert [m.path for m in load_yaml_config(path).models] == ["a"]
