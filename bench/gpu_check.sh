#!/usr/bin/env bash
# The GPU check of issue 15, on one fresh H100/H200 node (goal: under 8 minutes):
#   1. installs the GPU stack, exactly constraints/gpu.txt, into a new venv — from a directory of
#      carried wheels when given (no index needed), else from the package index;
#   2. runs bench/gpu_check.py: tiny sft (bf16), tiny grpo with TRL's colocated vLLM, translate with
#      vLLM, cluster k-means on faiss-GPU, and in2x sft tokens/s + MFU on a Qwen2.5-0.5B-shaped model;
#   3. prints one JSON object with pass/fail per part (exit 0 only when every part passes).
# Usage: bash bench/gpu_check.sh [WHEELS_DIR] [VENV_DIR]      (from anywhere; paths are absolute or repo-relative)
# Wheels to carry (on a machine with the index, same Python version as the node):
#   pip download -d wheels/ -c constraints/gpu.txt '.[gpu,dev]'
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${1:-}
VENV=${2:-.venv-gpucheck}
PY=${PYTHON:-python3}
start=$(date +%s)

nvidia-smi -L >&2 || { echo '{"all_ok": false, "error": "nvidia-smi lists no GPU"}'; exit 1; }
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
if [[ -n "$WHEELS" ]]; then
  PIP+=(--no-index --find-links "$WHEELS")
else
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
fi
"${PIP[@]}" -c constraints/gpu.txt -e '.[gpu,dev]' >&2
"$VENV/bin/python" -m pip check >&2 || echo "gpu_check: pip check reports conflicts (see above)" >&2
echo "gpu_check: install took $(( $(date +%s) - start )) s" >&2

export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false
rc=0
"$VENV/bin/python" bench/gpu_check.py "${@:3}" || rc=$?
echo "gpu_check: total $(( $(date +%s) - start )) s" >&2
exit $rc
