"""Streaming TIES merge (`in2x merge`) vs a naive load-everything-into-memory merge: wall time and
peak RSS, on random Llama-shaped bfloat16 checkpoints of a few hundred MB (a base + three
fine-tuned models), generated in a temp dir and deleted afterwards.

Baseline ("naive"): `safetensors.torch.load_file` of every input, the same `core.merge.ties`
per tensor into an in-memory state dict, one `save_file` — the same arithmetic, so the outputs
are compared for equality and only the memory strategy differs. Each merge runs in its own
subprocess; peak RSS is that child's `ru_maxrss` (os.wait4). The parent never imports torch:
Linux carries the pre-exec RSS of a forked child into its ru_maxrss, so a fat parent would
inflate every measurement (generation and comparison run in subprocesses too). Prints JSON.

    .venv/bin/python bench/merge.py [--layers 8] [--hidden 1024] [--vocab 32000]

in2x's peak is about the process baseline (python + torch) + the largest tensor of every input
(memory-mapped pages, reclaimable page cache) + the output tensor + a few chunks + one shard;
the naive merge holds every input and the whole output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, emit

NAIVE = r"""
import sys, torch
from safetensors.torch import load_file, save_file
from in2x_cli.core.merge import ties
base_dir, out, density, *models = sys.argv[1:]
base = load_file(base_dir + "/model.safetensors")
sds = [load_file(m + "/model.safetensors") for m in models]
merged = {n: ties(base[n], [sd[n] for sd in sds], [1.0] * len(sds), [float(density)] * len(sds)).to(base[n].dtype) for n in base}
save_file(merged, out, metadata={"format": "pt"})
"""


GENERATE = r"""
import sys, json
sys.path.insert(0, sys.argv[1] + "/bench")
from merge import make_checkpoints
from pathlib import Path
root, layers, hidden, inter, vocab, models = sys.argv[2], *map(int, sys.argv[3:])
make_checkpoints(Path(root), layers=layers, hidden=hidden, inter=inter, vocab=vocab, models=models)
"""

COMPARE = r"""
import sys, json, torch
from pathlib import Path
from safetensors.torch import load_file
naive = load_file(sys.argv[1])
ours = {}
for f in sorted(Path(sys.argv[2]).glob("*.safetensors")):
    ours.update(load_file(str(f)))
base = load_file(sys.argv[3])
print(json.dumps({
    "identical": set(ours) == set(naive) and all(torch.equal(ours[n], naive[n]) for n in naive),
    "largest_tensor_bytes": max(t.numel() * t.element_size() for t in base.values()),
}))
"""


def make_checkpoints(root: Path, *, layers: int, hidden: int, inter: int, vocab: int, models: int) -> list[Path]:
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
        "dtype": "bfloat16",
    }
    dirs = []
    g = torch.Generator().manual_seed(0)
    for k in range(models + 1):
        d = root / ("base" if k == 0 else f"model{k}")
        d.mkdir()
        sd = {}
        for idx, (n, s) in enumerate(shapes.items()):
            base = torch.randn(s, generator=torch.Generator().manual_seed(idx)) * 0.02
            sd[n] = (base if k == 0 else base + torch.randn(s, generator=g) * 0.002).to(torch.bfloat16)
        save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
        (d / "config.json").write_text(json.dumps(config))
        del sd
        dirs.append(d)
    return dirs


def run_measured(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "IN2X_NO_PROGRESS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{cmd[:4]} failed ({proc.returncode}):\n{err[-2000:]}")
    return seconds, usage.ru_maxrss * 1024  # Linux: kilobytes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--intermediate", type=int, default=2816)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--models", type=int, default=3, help="fine-tuned checkpoints merged onto the base")
    ap.add_argument("--density", type=float, default=0.5)
    ap.add_argument("--small-shard", default="64MB", help="second in2x run with this --shard-size")
    args = ap.parse_args()
    py = sys.executable

    tmp = Path(tempfile.mkdtemp(prefix="in2x-bench-merge-"))
    try:
        dims = [args.layers, args.hidden, args.intermediate, args.vocab, args.models]
        subprocess.run([py, "-c", GENERATE, str(REPO), str(tmp), *map(str, dims)], check=True)
        base = tmp / "base"
        models = [tmp / f"model{k}" for k in range(1, args.models + 1)]
        ckpt_bytes = (base / "model.safetensors").stat().st_size
        runs = {"import_only": run_measured([py, "-c", "import torch, safetensors.torch, in2x_cli.core.merge"])}
        naive_out = tmp / "naive.safetensors"
        runs["naive"] = run_measured([py, "-c", NAIVE, str(base), str(naive_out), str(args.density), *map(str, models)])
        streaming = [py, "-m", "in2x_cli", "-q", "merge", "--method", "ties", "--base", str(base),
                     *[a for m in models for a in ("-m", str(m))], "-d", str(args.density)]
        runs["in2x"] = run_measured([*streaming, "-o", str(tmp / "out")])
        runs["in2x_small_shards"] = run_measured([*streaming, "--shard-size", args.small_shard, "-o", str(tmp / "out_small")])
        check = json.loads(subprocess.run(
            [py, "-c", COMPARE, str(naive_out), str(tmp / "out_small"), str(base / "model.safetensors")],
            check=True, capture_output=True, text=True, cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)},
        ).stdout)
        identical, biggest = check["identical"], check["largest_tensor_bytes"]
        mb = 1e6
        emit({
            "bench": "merge",
            "what": f"TIES (density {args.density}) of {args.models} bfloat16 checkpoints onto a base, streaming vs all-in-memory",
            "baseline": "naive: load_file every checkpoint, same core.merge.ties per tensor, save_file once",
            "checkpoint_mb": round(ckpt_bytes / mb, 1),
            "inputs_total_mb": round(ckpt_bytes * (args.models + 1) / mb, 1),
            "largest_tensor_mb": round(biggest / mb, 1),
            "process_baseline_rss_mb": round(runs["import_only"][1] / mb, 1),
            "naive_seconds": round(runs["naive"][0], 2),
            "naive_peak_rss_mb": round(runs["naive"][1] / mb, 1),
            "in2x_seconds": round(runs["in2x"][0], 2),
            "in2x_peak_rss_mb": round(runs["in2x"][1] / mb, 1),
            "in2x_shard_size": "2GB (default: the whole output is one shard here)",
            f"in2x_shard_{args.small_shard}_seconds": round(runs["in2x_small_shards"][0], 2),
            f"in2x_shard_{args.small_shard}_peak_rss_mb": round(runs["in2x_small_shards"][1] / mb, 1),
            "peak_rss_ratio_naive_over_in2x": round(runs["naive"][1] / runs["in2x"][1], 2),
            f"peak_rss_ratio_naive_over_in2x_shard_{args.small_shard}": round(runs["naive"][1] / runs["in2x_small_shards"][1], 2),
            "wall_ratio_in2x_over_naive": round(runs["in2x"][0] / runs["naive"][0], 2),
            "outputs_identical": identical,
        })
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
