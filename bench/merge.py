"""`in2x merge` vs mergekit 0.1.5 (`mergekit-yaml`): the same YAML, TIES of ``--models`` (3)
fine-tuned fp32 Llama-shaped checkpoints onto a base, wall time and peak RSS, median of
``--repeats`` (3) with a warm page cache for both, tensors compared.

mergekit is not an in2x dependency: the benchmark installs it once into its own venv
(``--mergekit-venv``, default ~/.cache/in2x-bench/mergekit-0.1.5: ``pip install torch==2.13.0
mergekit==0.1.5``, the CPU torch pin) and reuses it afterwards.

Checkpoints: random weights built from a LlamaConfig-shaped tensor list (defaults: hidden 1024,
7 layers, intermediate 2816, vocab 32000, untied embeddings: 154M parameters, 617 MB fp32 each),
written to a temp dir and deleted afterwards. ``--quick``: hidden 256, 6 layers, vocab 12000
(11M parameters, 44 MB each) for a check in seconds.

Each merge runs in its own child process with the same environment (threads included:
OMP_NUM_THREADS, IN2X_BENCH_THREADS); peak RSS is that child's ``ru_maxrss`` (os.wait4). The
parent imports no torch (Linux carries a fork's pre-exec RSS into the child's ru_maxrss). Before
the timed runs every input file is read once (warm page cache), then the tools alternate:
in2x, mergekit, in2x, mergekit, ...

Equality: every output tensor of in2x is compared with mergekit's (``torch.equal``: same names,
shapes, dtypes, bits). Fine-tuned fp32 deltas (θ_i − θ₀, quantised by fp32 rounding) do tie in
|δ| at the TIES cut; in2x reproduces mergekit's tie-break (its argsort) for tensors up to 4M
entries and keeps the first tied entries by position above that (core/sparsify.py), so on tensors
over 4M entries (the full-size embeddings) a few entries at the cut may differ by at most the cut's
|δ|. The JSON reports tensors_equal, the differing tensors, the number of differing entries and the
largest absolute difference; the run fails if any tensor of at most 4M entries differs.

    .venv/bin/python bench/merge.py [--quick] [--repeats 3] [--layers 7 --hidden 1024 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, emit

MERGEKIT_VERSION = "0.1.5"
DEFAULT_VENV = Path.home() / ".cache" / "in2x-bench" / f"mergekit-{MERGEKIT_VERSION}"

GENERATE = r"""
import sys
sys.path.insert(0, sys.argv[1] + "/bench")
from merge import make_checkpoints
from pathlib import Path
root, layers, hidden, inter, vocab, models = sys.argv[2], *map(int, sys.argv[3:])
make_checkpoints(Path(root), layers=layers, hidden=hidden, inter=inter, vocab=vocab, models=models)
"""

COMPARE = r"""
import sys, json, torch
from pathlib import Path
from safetensors import safe_open
def tensors(d):
    out = {}
    for f in sorted(Path(d).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            out.update({n: (f, n) for n in fh.keys()})
    return out
ours, theirs = tensors(sys.argv[1]), tensors(sys.argv[2])
equal, max_diff, differing, entries, entries_differing, small = set(ours) == set(theirs), 0.0, [], 0, 0, []
for n in sorted(set(ours) & set(theirs)):
    with safe_open(str(ours[n][0]), framework="pt") as a, safe_open(str(theirs[n][0]), framework="pt") as b:
        x, y = a.get_tensor(n), b.get_tensor(n)
    if x.shape != y.shape or x.dtype != y.dtype:
        equal = False; differing.append(n); small.append(n); continue
    entries += x.numel()
    if not torch.equal(x, y):
        equal = False; differing.append(n); small.extend([n] if x.numel() <= 1 << 22 else []); entries_differing += int((x != y).sum())
        max_diff = max(max_diff, float((x.double() - y.double()).abs().max()))
print(json.dumps({"tensors": len(ours), "tensors_equal": equal, "differing_tensors": differing[:5], "differing_tensors_small": small[:5], "max_abs_diff": max_diff,
                  "entries": entries, "entries_differing": entries_differing,
                  "names_only_in_in2x": sorted(set(ours) - set(theirs))[:5], "names_only_in_mergekit": sorted(set(theirs) - set(ours))[:5]}))
"""


def make_checkpoints(root: Path, *, layers: int, hidden: int, inter: int, vocab: int, models: int) -> list[Path]:
    """A base and ``models`` fine-tunes (base + small noise), fp32, Llama tensor names and shapes."""
    import torch
    from safetensors.torch import save_file

    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,),
            p + "self_attn.q_proj.weight": (hidden, hidden), p + "self_attn.k_proj.weight": (hidden, hidden),
            p + "self_attn.v_proj.weight": (hidden, hidden), p + "self_attn.o_proj.weight": (hidden, hidden),
            p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
            p + "mlp.down_proj.weight": (hidden, inter),
        })
    shapes.update({"model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)})
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden, "intermediate_size": inter,
        "num_hidden_layers": layers, "num_attention_heads": hidden // 64, "num_key_value_heads": hidden // 64,
        "vocab_size": vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
        "dtype": "float32", "torch_dtype": "float32",
    }
    dirs = []
    g = torch.Generator().manual_seed(0)
    for k in range(models + 1):
        d = root / ("base" if k == 0 else f"model{k}")
        d.mkdir()
        sd = {}
        for idx, (n, s) in enumerate(shapes.items()):
            base = torch.randn(s, generator=torch.Generator().manual_seed(idx)) * 0.02
            sd[n] = base if k == 0 else base + torch.randn(s, generator=g) * 0.002
        save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
        (d / "config.json").write_text(json.dumps(config))
        del sd
        dirs.append(d)
    return dirs


def ensure_mergekit(venv: Path) -> Path:
    """mergekit-yaml from its own cached venv (created and installed on first use)."""
    exe = venv / "bin" / "mergekit-yaml"
    marker = venv / ".installed"
    if not marker.exists():
        print(f"bench merge: installing mergekit {MERGEKIT_VERSION} into {venv} (once)", file=sys.stderr)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "torch==2.13.0", f"mergekit=={MERGEKIT_VERSION}"], check=True)
        marker.write_text(MERGEKIT_VERSION + "\n")
    return exe


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} … failed ({proc.returncode}):\n{err[-2000:]}")
    return seconds, usage.ru_maxrss * 1024  # Linux: kilobytes


def warm(paths: list[Path]) -> None:
    for d in paths:
        for f in d.glob("*.safetensors"):
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=7)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--intermediate", type=int, default=2816)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--models", type=int, default=3, help="fine-tuned checkpoints merged onto the base")
    ap.add_argument("--density", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3, help="runs per tool; the median is reported")
    ap.add_argument("--quick", action="store_true", help="hidden 256, 6 layers, intermediate 688, vocab 12000 (11M parameters)")
    ap.add_argument("--mergekit-venv", type=Path, default=DEFAULT_VENV)
    ap.add_argument("--tmp-dir", default=None, help="where the checkpoints are written (default: the system temp dir)")
    args = ap.parse_args()
    if args.quick:
        args.layers, args.hidden, args.intermediate, args.vocab = 6, 256, 688, 12000
    py = sys.executable
    mergekit = ensure_mergekit(args.mergekit_venv)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "IN2X_NO_PROGRESS": "1"}

    tmp = Path(tempfile.mkdtemp(prefix="in2x-bench-merge-", dir=args.tmp_dir))
    try:
        dims = [args.layers, args.hidden, args.intermediate, args.vocab, args.models]
        subprocess.run([py, "-c", GENERATE, str(REPO), str(tmp), *map(str, dims)], check=True, env=env)
        base = tmp / "base"
        models = [tmp / f"model{k}" for k in range(1, args.models + 1)]
        ckpt_bytes = (base / "model.safetensors").stat().st_size
        recipe = tmp / "ties.yaml"
        recipe.write_text(
            "merge_method: ties\n"
            f"base_model: {base}\n"
            "models:\n" + "".join(f"  - model: {m}\n    parameters: {{weight: 1.0, density: {args.density}}}\n" for m in models)
            + "parameters: {normalize: true}\ndtype: float32\n",
            encoding="utf-8",
        )
        ours_cmd = [py, "-m", "in2x_cli", "-q", "merge", "-c", str(recipe), "--overwrite", "-o", str(tmp / "out_in2x")]
        theirs_cmd = [str(mergekit), str(recipe), str(tmp / "out_mergekit"), "--quiet", "--no-copy-tokenizer", "--no-write-model-card"]
        warm([base, *models])
        runs: dict[str, list[tuple[float, int]]] = {"in2x": [], "mergekit": []}
        for _ in range(args.repeats):
            runs["in2x"].append(run_measured(ours_cmd, env))
            shutil.rmtree(tmp / "out_mergekit", ignore_errors=True)
            runs["mergekit"].append(run_measured(theirs_cmd, env))
        check = json.loads(subprocess.run(
            [py, "-c", COMPARE, str(tmp / "out_in2x"), str(tmp / "out_mergekit")],
            check=True, capture_output=True, text=True, cwd=str(REPO), env=env,
        ).stdout)
        med = {k: (statistics.median(s for s, _ in v), statistics.median(r for _, r in v)) for k, v in runs.items()}
        params = ckpt_bytes // 4
        mb = 1e6
        emit({
            "bench": "merge",
            "what": f"TIES (density {args.density}) of {args.models} fp32 Llama-shaped checkpoints onto a base, same YAML",
            "baseline": f"mergekit {MERGEKIT_VERSION} (mergekit-yaml, defaults, own venv)",
            "size": {"layers": args.layers, "hidden": args.hidden, "intermediate": args.intermediate, "vocab": args.vocab,
                     "parameters_millions": round(params / 1e6, 1), "checkpoint_mb": round(ckpt_bytes / mb, 1), "quick": args.quick},
            "repeats": args.repeats,
            "threads": os.environ.get("OMP_NUM_THREADS"),
            "in2x_seconds": round(med["in2x"][0], 2),
            "in2x_peak_rss_mb": round(med["in2x"][1] / mb, 1),
            "mergekit_seconds": round(med["mergekit"][0], 2),
            "mergekit_peak_rss_mb": round(med["mergekit"][1] / mb, 1),
            "all_runs": {k: [[round(s, 2), round(r / mb, 1)] for s, r in v] for k, v in runs.items()},
            "wall_ratio": round(med["in2x"][0] / med["mergekit"][0], 3),
            "peak_rss_ratio": round(med["in2x"][1] / med["mergekit"][1], 3),
            "goal": "wall_ratio <= 0.3 and peak_rss_ratio <= 0.3",
            "comparison": {**check, "tolerance": "exact (torch.equal) for tensors of at most 4M entries; above that, ties at the TIES cut may be kept differently"},
        })
        if check["differing_tensors_small"]:
            sys.exit(f"bench merge: in2x and mergekit differ on {check['differing_tensors_small']} (at most 4M entries: must be equal)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
