# in2x — every target sets up what it needs. `make demo` and `make test` work on a fresh machine.
#
# Two environments:
#   .venv        in2x itself (transformers 5, TRL, torch).
#   .venv-comet  unbabel-comet 2.2.7, which pins transformers<5, huggingface-hub<1 and numpy<2 and so
#                cannot share .venv. in2x talks to it through a worker process (in2x_cli/cometenv/).
# On machines without an NVIDIA GPU both pin torch==2.13.0, the CPU build (an unpinned torch pulls a
# multi-GB CUDA build). Stamps make re-runs instant until pyproject.toml / the requirements change.
# A third, .venv-lowtf, holds the lowest transformers the `gpu` extra can resolve to
# (constraints/lowest-transformers.txt); `make test` runs the training and backend tests in it too.
# On a machine where nvidia-smi lists a GPU (or with GPU=1) .venv gets the `gpu` extra (vLLM,
# DeepSpeed, faiss-gpu) under constraints/gpu.txt, the one tested GPU stack; elsewhere `cpu`.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
COMET_VENV ?= .venv-comet
LOWTF_VENV ?= .venv-lowtf
BIN := $(VENV)/bin
GPU ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
HAS_GPU := $(filter 1,$(GPU))
TORCH_CPU_PIN := torch==2.13.0
TORCH_PIN := $(if $(HAS_GPU),,$(TORCH_CPU_PIN))
# the extra that brings faiss (and on GPU vLLM / DeepSpeed): exactly one of cpu and gpu
HW_EXTRA := $(if $(HAS_GPU),gpu,cpu)
GPU_CONSTRAINTS := $(if $(HAS_GPU),-c constraints/gpu.txt)
# the focused suite run against the lowest transformers (training, tiny model, generation backends)
LOWTF_TESTS ?= tests/train/test_options.py tests/train/test_sft_cmd.py tests/train/test_cpt_cmd.py \
               tests/train/test_grpo_cmd.py tests/train/test_launch.py tests/train/test_distributed.py \
               tests/tiny tests/backends tests/devices
# golden numbers are pinned to .venv's transformers: 5.24 loads the tiny tokenizer with Qwen2's digit-splitting
# pre-tokenizer, 5.5.1 with the one it was saved with, so the tokens (and losses) differ; the preflight table
# lists .venv's imports. Everything else must pass unchanged.
LOWTF_SELECT ?= -k 'not golden and not preflight'
PIP_FLAGS ?= -q --disable-pip-version-check
TEST_ENV := HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false \
            IN2X_COMET_PYTHON=$(abspath $(COMET_VENV))/bin/python MPLBACKEND=Agg
PYTEST_ARGS ?=
MODEL ?= Qwen/Qwen2.5-7B-Instruct
RUN ?= runs/demo

.PHONY: help install comet-env lowtf-env test test-lowest demo lint bench docs reproduce wmt-eval clean

help:
	@echo "make demo      the whole pipeline on the bundled tiny model (CPU, offline, minutes)"
	@echo "make test      the test suite (sets up .venv and .venv-comet first)"
	@echo "make install   .venv with in2x and its dev tools (GPU=1: the gpu extra under constraints/gpu.txt)"
	@echo "make test-lowest  training/backend tests against the lowest supported transformers"
	@echo "make comet-env .venv-comet for COMET scoring"
	@echo "make lint | bench | docs | reproduce MODEL=... | wmt-eval MODEL=..."

$(BIN)/.in2x-installed: pyproject.toml constraints/gpu.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install $(PIP_FLAGS) --upgrade pip
	@$(if $(TORCH_PIN),$(BIN)/python -m pip install $(PIP_FLAGS) '$(TORCH_PIN)')
	$(BIN)/python -m pip install $(PIP_FLAGS) $(GPU_CONSTRAINTS) -e '.[dev,$(HW_EXTRA)]'
	@touch $@

install: $(BIN)/.in2x-installed

$(COMET_VENV)/bin/.comet-installed: requirements-comet.txt
	@test -x $(COMET_VENV)/bin/python || $(PYTHON) -m venv $(COMET_VENV)
	@$(COMET_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(COMET_VENV)/bin/python -m pip install $(PIP_FLAGS) $(TORCH_PIN) -r requirements-comet.txt
	@touch $@

comet-env: $(COMET_VENV)/bin/.comet-installed

# CPU only (torch pinned): the stamp of the lowest-transformers environment
$(LOWTF_VENV)/bin/.lowtf-installed: pyproject.toml constraints/lowest-transformers.txt
	@test -x $(LOWTF_VENV)/bin/python || $(PYTHON) -m venv $(LOWTF_VENV)
	@$(LOWTF_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(LOWTF_VENV)/bin/python -m pip install $(PIP_FLAGS) '$(TORCH_CPU_PIN)'
	$(LOWTF_VENV)/bin/python -m pip install $(PIP_FLAGS) -c constraints/lowest-transformers.txt '$(TORCH_CPU_PIN)' -e '.[dev,cpu]'
	@touch $@

lowtf-env: $(LOWTF_VENV)/bin/.lowtf-installed

test-lowest: lowtf-env comet-env
	$(TEST_ENV) $(LOWTF_VENV)/bin/python -m pytest -q -p no:cacheprovider $(LOWTF_SELECT) $(LOWTF_TESTS)

test: install comet-env test-lowest
	$(TEST_ENV) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

demo: install comet-env
	HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 MPLBACKEND=Agg PATH="$(abspath $(BIN)):$$PATH" \
	  IN2X_COMET_PYTHON=$(abspath $(COMET_VENV))/bin/python bash recipes/demo.sh $(RUN)

lint: install
	$(BIN)/ruff check in2x_cli tests bench

# full sizes (minutes to hours: see the README); `make bench BENCH_ARGS="--quick"` for small ones,
# `BENCH_ARGS="merge eval"` for some
bench: install comet-env
	$(TEST_ENV) $(BIN)/python bench/run_all.py $(BENCH_ARGS)

docs: install
	$(BIN)/python -m in2x_cli.docgen > docs/cli.md.tmp && mv docs/cli.md.tmp docs/cli.md || { rm -f docs/cli.md.tmp; exit 1; }

reproduce: install
	PATH="$(abspath $(BIN)):$$PATH" bash recipes/in2x.sh "$(MODEL)"

wmt-eval: install comet-env
	PATH="$(abspath $(BIN)):$$PATH" IN2X_COMET_PYTHON=$(abspath $(COMET_VENV))/bin/python \
	  bash recipes/wmt25_eval.sh "$(MODEL)"

clean:
	rm -rf runs .pytest_cache build *.egg-info
