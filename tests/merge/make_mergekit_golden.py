"""Regenerate tests/merge/fixtures/mergekit_golden.{json,safetensors}: mergekit's own outputs on
tiny checkpoints, which tests/merge/test_mergekit_parity.py compares `in2x merge` against.

mergekit is NOT an in2x dependency. Run this with a throw-away environment outside the repo:

    python3 -m venv /tmp/mergekit-venv
    /tmp/mergekit-venv/bin/pip install torch==2.13.0 mergekit      # pin torch: CPU build
    /tmp/mergekit-venv/bin/python tests/merge/make_mergekit_golden.py

What it stores:
  * four tiny Qwen2-shaped checkpoints (base, a, b, c: hidden 8, 2 layers, vocab 32, float32,
    random weights; a/b/c = base + noise so deltas have conflicting signs), as input tensors;
  * for each case, the YAML recipe and the tensors `mergekit-yaml` wrote (linear,
    task_arithmetic, ties, dare_ties / dare_linear at density 1, gradients and filters, bf16);
  * DARE with real dropping, at the function level: mergekit draws its masks from the global
    torch RNG in tensor-processing order, so whole-model outputs can only match if the RNG use
    matches. Here `GeneralizedTaskArithmeticMerge.merge_group` runs after torch.manual_seed(s) on
    one tensor group; in2x's `dare` given torch.Generator().manual_seed(s) draws the same masks
    (one torch.bernoulli per model, in order), so those outputs must agree exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
MODELS = ("base", "a", "b", "c")

CASES: dict[str, str] = {
    "linear": """
merge_method: linear
models:
  - {model: a, parameters: {weight: 0.3}}
  - {model: b, parameters: {weight: 0.7}}
  - {model: c, parameters: {weight: 1.0}}
dtype: float32
""",
    "linear_sum": """
merge_method: linear
models:
  - {model: a, parameters: {weight: 0.5}}
  - {model: b, parameters: {weight: 0.25}}
parameters: {normalize: false}
dtype: float32
""",
    "task_arithmetic": """
merge_method: task_arithmetic
base_model: base
models:
  - {model: a, parameters: {weight: 0.5}}
  - {model: b, parameters: {weight: 0.3}}
  - {model: c, parameters: {weight: -0.2}}
dtype: float32
""",
    "task_arithmetic_lambda_normalize": """
merge_method: task_arithmetic
base_model: base
models:
  - {model: a, parameters: {weight: 0.5}}
  - {model: b, parameters: {weight: 0.3}}
parameters: {lambda: 0.7, normalize: true}
dtype: float32
""",
    "ties": """
merge_method: ties
base_model: base
models:
  - {model: a, parameters: {weight: 1.0, density: 0.5}}
  - {model: b, parameters: {weight: 0.5, density: 0.3}}
  - {model: c, parameters: {weight: 0.8, density: 0.7}}
dtype: float32
""",
    "ties_base_listed_nonorm_int8": """
merge_method: ties
base_model: base
models:
  - model: base
  - {model: a, parameters: {weight: 1.0, density: 0.4}}
  - {model: b, parameters: {weight: -0.6, density: 0.6}}
parameters: {normalize: false, lambda: 0.8, int8_mask: true}
dtype: float32
""",
    "ties_rescale": """
merge_method: ties
base_model: base
models:
  - {model: a, parameters: {weight: 1.0, density: 0.4}}
  - {model: c, parameters: {weight: 0.7, density: 0.2}}
parameters: {rescale: true}
dtype: float32
""",
    "ties_bf16": """
merge_method: ties
base_model: base
models:
  - {model: a, parameters: {weight: 1.0, density: 0.5}}
  - {model: b, parameters: {weight: 1.0, density: 0.5}}
dtype: bfloat16
""",
    "dare_ties_density1": """
merge_method: dare_ties
base_model: base
models:
  - {model: a, parameters: {weight: 1.0}}
  - {model: b, parameters: {weight: 0.5}}
  - {model: c, parameters: {weight: 0.8}}
dtype: float32
""",
    "dare_linear_density1": """
merge_method: dare_linear
base_model: base
models:
  - {model: a, parameters: {weight: 0.6}}
  - {model: b, parameters: {weight: 0.4}}
parameters: {normalize: true}
dtype: float32
""",
    "gradients_and_filters": """
merge_method: task_arithmetic
base_model: base
models:
  - {model: a, parameters: {weight: [0.2, 0.8]}}
  - model: b
    parameters:
      weight: [{filter: mlp, value: 0.9}, {filter: self_attn, value: [0.1, 0.5]}, {value: 0.4}]
  - {model: c, parameters: {weight: 0.3}}
parameters: {lambda: [1.0, 0.5]}
dtype: float32
""",
}

# (method, densities, weights, normalize, rescale)
DARE_FUNCTION_CASES = {
    "dare_ties_d05": ("dare_ties", [0.5, 0.3, 0.7], [1.0, 0.5, 0.8], False, True),
    "dare_ties_d05_norescale_normalize": ("dare_ties", [0.5, 0.5, 0.5], [1.0, 1.0, 1.0], True, False),
    "dare_linear_d04": ("dare_linear", [0.4, 0.6, 0.2], [0.6, 0.4, -0.3], False, True),
}
DARE_SEED = 1234


def build_inputs(root: Path) -> dict[str, dict[str, torch.Tensor]]:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(
        vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=64, tie_word_embeddings=True, architectures=["Qwen2ForCausalLM"],
    )
    torch.manual_seed(0)
    names_shapes = {n: p.shape for n, p in Qwen2ForCausalLM(cfg).state_dict().items() if n != "lm_head.weight"}
    g = torch.Generator().manual_seed(7)
    base = {n: (torch.randn(s, generator=g) * 0.5).contiguous() for n, s in sorted(names_shapes.items())}
    tensors = {"base": base}
    for name in MODELS[1:]:
        tensors[name] = {n: (t + torch.randn(t.shape, generator=g) * 0.1).contiguous() for n, t in base.items()}
    for name, sd in tensors.items():
        d = root / name
        d.mkdir()
        cfg.save_pretrained(d)
        save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    return tensors


def dare_function_goldens() -> dict[str, torch.Tensor]:
    from mergekit.merge_methods.base import TensorGroup
    from mergekit.merge_methods.registry import get

    g = torch.Generator().manual_seed(99)
    base = torch.randn(16, 24, generator=g)
    models = [base + 0.1 * torch.randn(16, 24, generator=g) for _ in range(3)]
    out = {"dare_fn.base": base, **{f"dare_fn.model{i}": m for i, m in enumerate(models)}}
    for case, (method, dens, weights, normalize, rescale) in DARE_FUNCTION_CASES.items():
        group = TensorGroup.from_tensors([base, *models], base_index=0, name="w")
        params = {
            "weight": {i + 1: w for i, w in enumerate(weights)},
            "density": {i + 1: d for i, d in enumerate(dens)},
            "normalize": normalize, "rescale": rescale, "lambda": 1.0, "int8_mask": False,
        }
        torch.manual_seed(DARE_SEED)
        out[f"dare_fn.{case}"] = get(method).merge_group(group, **params).clone()
    return out


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    blob: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tensors = build_inputs(root)
        config = json.loads((root / "base" / "config.json").read_text())
        for model, sd in tensors.items():
            for n, t in sd.items():
                blob[f"input.{model}.{n}"] = t
        for case, yaml_text in CASES.items():
            (root / f"{case}.yaml").write_text(yaml_text.lstrip())
            out = root / f"out-{case}"
            proc = subprocess.run(
                [str(Path(sys.executable).parent / "mergekit-yaml"), f"{case}.yaml", str(out), "--random-seed", "0", "--no-write-model-card"],
                cwd=root, capture_output=True, text=True,
            )
            if proc.returncode != 0:
                sys.exit(f"mergekit-yaml failed on {case}:\n{proc.stderr[-3000:]}")
            files = sorted(out.glob("*.safetensors"))
            merged: dict[str, torch.Tensor] = {}
            for f in files:
                merged.update(load_file(str(f)))
            for n, t in merged.items():
                blob[f"{case}.{n}"] = t.contiguous()
            print(f"{case}: {len(merged)} tensors, dtype {next(iter(merged.values())).dtype}", file=sys.stderr)
    blob.update(dare_function_goldens())
    save_file(blob, str(FIXTURES / "mergekit_golden.safetensors"))
    meta = {
        "generated_by": "tests/merge/make_mergekit_golden.py",
        "mergekit": metadata.version("mergekit"),
        "torch": torch.__version__,
        "transformers": metadata.version("transformers"),
        "models": list(MODELS),
        "config": config,
        "cases": CASES,
        "dare_function": {
            "seed": DARE_SEED,
            "cases": {k: {"method": m, "densities": d, "weights": w, "normalize": nz, "rescale": rs} for k, (m, d, w, nz, rs) in DARE_FUNCTION_CASES.items()},
        },
    }
    (FIXTURES / "mergekit_golden.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {FIXTURES}/mergekit_golden.{{json,safetensors}} ({len(blob)} tensors)", file=sys.stderr)


if __name__ == "__main__":
    main()
