"""GPU check for issue 5: ``in2x sft`` throughput and MFU on a randomly initialised
Qwen2.5-0.5B-shaped model in bf16 (goal: MFU ≥ 40 % on an H100). Needs no weights and no hub.

What it does
    1. writes a model directory with a Qwen2.5-0.5B config (hidden 896, 24 layers, 14 heads,
       2 KV heads, FFN 4864, vocab 151,936, tied embeddings) and the tiny byte-level tokenizer
       (its ids are < 1,000, a subset of the vocabulary; the LM head still costs the full 151,936);
    2. writes packed-length chat data (mixed-length conversations from the bundled corpus);
    3. runs the real command in a subprocess:
       ``in2x sft chat.jsonl --model cfg --random-init --precision bf16 --max-length 4096
       --batch-size 4 --max-steps 40 --attn-implementation sdpa --logging-steps 5 --report-to none``
    4. reads ``metrics.jsonl`` and reports the median ``tokens_per_second`` and ``mfu`` over the
       logged steps after the first 10 (warm-up), with the device name, as JSON.

MFU = tokens/s · (6N + 12·L·d·T) / peak bf16 FLOP/s (see ``in2x_cli.train.flops.flops_per_token``;
H100 SXM peak 989.4 TFLOP/s dense).

Running it on the device machine (its image has torch + transformers, not TRL): carry wheels.
``python bench/train_gpu.py --preflight`` (or any run) first imports every module the
``in2x sft`` path needs (``SFT_PATH_MODULES``: the CLI's own typer, rich, pyyaml, safetensors,
jinja2 as much as trl/accelerate/datasets/peft and their hard dependencies) and, if some are
missing, prints the exact command that fetches their wheels here, e.g.::

    .venv/bin/pip download --no-deps --only-binary=:all: -d wheels/ 'trl>=1.16,<1.17' 'typer>=0.15'   # here
    pip install --no-deps wheels/*.whl && python bench/train_gpu.py                                    # on the device

(versions: the ranges of pyproject.toml; the device's Python must match this machine's for
compiled wheels, or add ``--python-version X.Y``).

Usage: python bench/train_gpu.py [--steps 40] [--max-length 4096] [--batch-size 4] [--attn sdpa] [--preflight]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, emit  # noqa: E402

QWEN25_05B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "vocab_size": 151936,
    "hidden_act": "silu",
    "dtype": "bfloat16",
    "use_cache": True,
}


# import name -> pip distribution: every third-party module an ``in2x sft`` run needs (measured: the
# modules a tiny CPU run imports; tests/train/test_sft_cmd.py checks this table still covers them)
SFT_PATH_MODULES: dict[str, str] = {
    # the training stack
    "torch": "torch", "transformers": "transformers", "tokenizers": "tokenizers", "huggingface_hub": "huggingface_hub",
    "accelerate": "accelerate", "datasets": "datasets", "trl": "trl", "peft": "peft",
    # the CLI itself
    "typer": "typer", "rich": "rich", "yaml": "pyyaml", "safetensors": "safetensors", "jinja2": "jinja2", "numpy": "numpy",
    # hard dependencies of the above that a torch + transformers image may lack
    "pyarrow": "pyarrow", "dill": "dill", "xxhash": "xxhash", "multiprocess": "multiprocess", "pandas": "pandas",
    "fsspec": "fsspec", "filelock": "filelock", "packaging": "packaging", "regex": "regex", "tqdm": "tqdm",
    "psutil": "psutil", "shellingham": "shellingham", "annotated_doc": "annotated-doc", "pygments": "pygments",
    "markupsafe": "markupsafe", "dateutil": "python-dateutil", "typing_extensions": "typing_extensions",
}  # fmt: skip
# imported when present (optional backends of transformers / huggingface_hub / datasets, torch's own
# dependencies): not required for the run
OPTIONAL_MODULES = frozenset(
    {"PIL", "scipy", "sympy", "mpmath", "networkx", "pydantic", "pydantic_core", "annotated_types", "typing_inspection",
     "anyio", "h11", "httpx", "httpx2", "httpcore", "httpcore2", "idna", "certifi", "sniffio", "truststore", "colorama",
     "cloudpickle", "google", "cython_runtime", "triton", "torchgen", "six", "pytz", "tzdata", "hf_xet", "requests", "urllib3",
     "charset_normalizer", "markdown_it", "mdurl", "click", "yaml_ft", "aiohttp", "multidict", "yarl", "frozenlist",
     "aiosignal", "attr", "attrs", "propcache", "aiohappyeyeballs"}
)  # fmt: skip


def pip_spec(dist: str, pyproject: Path = REPO / "pyproject.toml") -> str:
    """The requirement pyproject.toml gives a distribution (``trl>=1.16,<1.17``), else its bare name."""
    import re

    text = pyproject.read_text(encoding="utf-8") if pyproject.is_file() else ""
    norm = re.sub(r"[-_.]+", "-", dist).lower()
    for req in re.findall(r'^\s*"([^"]+)"', text, flags=re.MULTILINE):
        name = re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0]
        if re.sub(r"[-_.]+", "-", name).lower() == norm:
            return re.sub(r"\[[^\]]*\]", "", req)  # extras (sacrebleu[ja]) are not part of a wheel's name
    return dist


def preflight(is_missing=None) -> list[str]:
    """Missing import names of ``SFT_PATH_MODULES``; prints the pip command that carries their wheels."""
    is_missing = is_missing or _missing
    missing = [m for m in SFT_PATH_MODULES if is_missing(m)]
    if missing:
        dists = list(dict.fromkeys(SFT_PATH_MODULES[m] for m in missing))
        specs = " ".join(shlex.quote(pip_spec(d)) for d in dists)
        print(f"missing modules for `in2x sft`: {', '.join(missing)}", file=sys.stderr)
        print("fetch their wheels on a machine with the package index (from the repo root):", file=sys.stderr)
        print(f"  .venv/bin/pip download --no-deps --only-binary=:all: -d wheels/ {specs}", file=sys.stderr)
        print("then here: pip install --no-deps wheels/*.whl && python bench/train_gpu.py", file=sys.stderr)
    return missing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--max-length", type=int, default=4096)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--preflight", action="store_true", help="only check the imports the run needs")
    args = ap.parse_args()

    if preflight():
        return 2
    if args.preflight:
        print("preflight: every module `in2x sft` needs imports", file=sys.stderr)
        return 0
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark only runs on a GPU machine", file=sys.stderr)
        return 2

    from in2x_cli.tiny import build_tokenizer

    work = Path(tempfile.mkdtemp(prefix="in2x-gpu-"))
    model_dir = work / "qwen25-05b-shape"
    model_dir.mkdir()
    tok = build_tokenizer()
    tok.save_pretrained(str(model_dir))
    cfg = dict(QWEN25_05B, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id)
    (model_dir / "config.json").write_text(json.dumps(cfg, indent=2))

    sys.path.insert(0, str(REPO / "bench"))
    from train import mixed_length_chats

    # enough conversations for steps x batch rows of max_length tokens (~300 tokens each on average)
    n = max(400, args.steps * args.batch_size * args.max_length // 250)
    data = work / "chat.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mixed_length_chats(n)), encoding="utf-8")

    out = work / "run"
    cmd = [
        sys.executable, "-m", "in2x_cli", "sft", str(data), "--model", str(model_dir), "--random-init",
        "--output", str(out), "--precision", "bf16", "--device", "cuda", "--max-length", str(args.max_length),
        "--batch-size", str(args.batch_size), "--max-steps", str(args.steps), "--epochs", "1",
        "--attn-implementation", args.attn, "--logging-steps", "5", "--save-steps", str(10**6),
        "--report-to", "none", "--lr", "1e-4",
    ]  # fmt: skip
    if args.gradient_checkpointing:
        cmd.append("--gradient-checkpointing")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "IN2X_NO_PROGRESS": "1"}
    proc = subprocess.run(cmd, env=env, cwd=str(REPO), capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        return proc.returncode

    from in2x_cli.train.rundir import read_metrics

    rows = [r for r in read_metrics(out) if "loss" in r and r["step"] > 10]
    tps = [r["tokens_per_second"] for r in rows if "tokens_per_second" in r]
    mfus = [r["mfu"] for r in rows if "mfu" in r]
    emit(
        {
            "benchmark": "in2x sft throughput, random-init Qwen2.5-0.5B shape, bf16",
            "command": " ".join(cmd[1:]),
            "device": torch.cuda.get_device_name(0),
            "steps": args.steps,
            "tokens_per_step": args.batch_size * args.max_length,
            "tokens_per_second_median": statistics.median(tps) if tps else None,
            "mfu_median": statistics.median(mfus) if mfus else None,
            "goal_mfu": 0.40,
            "logged_rows": rows,
        }
    )
    return 0


def _missing(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return True
    return False


if __name__ == "__main__":
    sys.exit(main())
