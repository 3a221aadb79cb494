"""vLLM backend: one ``LLM.generate`` over all prompts; tensor parallel across GPUs.

Imported only when asked for (``--backend vllm``); vLLM is the ``gpu`` extra. Results match the
transformers backend request for request (``tests/backends/test_backend_contract.py`` runs both
through the same assertions, against a fake engine that enforces vLLM's own argument checks):

- prompts go in as token ids (``{"prompt_token_ids": ...}``), tokenized like the transformers
  backend (``add_special_tokens=False``): a string prompt would be re-tokenized by vLLM with
  special tokens, i.e. a second BOS after the one the chat template wrote (Llama, Gemma);
- generation stops at the same end-of-turn ids (``stop_token_ids``: ``<|im_end|>``, ``<|eot_id|>``,
  every configured EOS), and the stop token is not part of the returned ``token_ids``;
- greedy (``temperature == 0``) with ``n > 1``, which vLLM rejects, is one request whose single
  completion is copied ``n`` times (what the transformers backend does);
- ``max_tokens`` is always set (vLLM's own default is 16), clipped to the context left after the prompt.

Per-request seeds (vLLM's ``SamplingParams.seed``) make each prompt's samples independent of its batch.

Several processes: under ``torchrun``/``accelerate launch`` (``WORLD_SIZE`` > 1) each rank builds its own
engine on its own GPU with ``distributed_executor_backend="external_launcher"`` (what TRL's colocated
rollouts do). GPU memory: ``gpu_memory_utilization`` is the share of the *whole* GPU this engine takes,
checked against free memory at start, so engines sharing a GPU must add up (``check_gpu_memory_budget``).
For offline inference at scale run one process per GPU group on a shard (``in2x translate --shard``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from in2x_cli.backends.base import (
    Completion,
    ProgressFn,
    SamplingParams,
    TokenIdsBackend,
    derive_seed,
    end_of_turn_ids,
    tokens_covering,
)
from in2x_cli.errors import UserError

# Engines sharing one GPU (TRL's colocated rollout engine, a vLLM judge) must leave the rest for training
# and for the CUDA context: their gpu_memory_utilization shares may add up to at most this (ours).
GPU_MEMORY_BUDGET = 0.95


def check_gpu_memory_budget(shares: dict[str, float]) -> None:
    """Raise a UserError when the vLLM engines of one process would take more than ``GPU_MEMORY_BUDGET``
    of its GPU together (vLLM checks each share against the memory still free when it starts, so the
    second engine would fail, or training would run out of memory)."""
    used = {k: v for k, v in shares.items() if v}
    total = sum(used.values())
    if total > GPU_MEMORY_BUDGET + 1e-9:
        parts = " + ".join(f"{k} {v:g}" for k, v in used.items())
        raise UserError(
            f"vLLM engines on one GPU would take {parts} = {total:g} of its memory (at most {GPU_MEMORY_BUDGET:g}, "
            "and training needs what is left): lower them so that they add up"
        )


class VLLMBackend(TokenIdsBackend):
    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        seed: int = 0,
        enforce_eager: bool = False,
        **_ignored: Any,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError:
            raise UserError("the vllm backend needs vLLM and a GPU: pip install 'in2x[gpu]'") from None
        from in2x_cli.io.checkpoint import resolve_model

        self.model_path = str(model)
        path = resolve_model(model, trust_remote_code=trust_remote_code)
        kwargs: dict[str, Any] = {}
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
            # one engine per rank, on the rank's GPU; ranks of one tensor-parallel group share a seed (as in TRL)
            kwargs["distributed_executor_backend"] = "external_launcher"
            seed = seed + int(os.environ.get("RANK", "0") or 0) // max(1, tensor_parallel_size)
        self.llm = LLM(
            model=str(path),
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            seed=seed,
            enforce_eager=enforce_eager,
            **kwargs,
        )
        self._tok = self.llm.get_tokenizer()
        model_config = self.llm.llm_engine.model_config
        self._ctx = int(model_config.max_model_len)
        self._eos_ids = end_of_turn_ids(self._tok, _generation_config(path), getattr(model_config, "hf_config", None))

    @property
    def tokenizer(self) -> Any:
        return self._tok

    @property
    def context_length(self) -> int:
        return self._ctx

    def generate_from_ids(
        self,
        prompt_ids: Sequence[Sequence[int]],
        params: SamplingParams,
        *,
        seeds: Sequence[int],
        progress: ProgressFn | None = None,
    ) -> list[list[Completion]]:
        from vllm import SamplingParams as VSamplingParams

        for i, ids in enumerate(prompt_ids):
            if len(ids) >= self._ctx:
                raise UserError(f"prompt {i} has {len(ids)} tokens, at or beyond the model's context of {self._ctx}")
        greedy = params.temperature == 0
        stop_ids = sorted(self._eos_ids)
        vparams = [
            VSamplingParams(
                n=1 if greedy else params.n,  # vLLM rejects greedy with n > 1: decode once, copy below
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=min(params.max_tokens, self._ctx - len(ids)),
                stop=list(params.stop) or None,
                stop_token_ids=stop_ids,
                seed=derive_seed(s, "sample", 0) & 0x7FFFFFFF,
                logprobs=0 if params.logprobs else None,
                skip_special_tokens=True,
            )
            for ids, s in zip(prompt_ids, seeds, strict=True)
        ]
        requests = [{"prompt_token_ids": list(ids)} for ids in prompt_ids]
        outputs = self.llm.generate(requests, vparams, use_tqdm=False)
        results: list[list[Completion]] = []
        for out in outputs:
            comps = [self._completion(o, params) for o in out.outputs]
            if greedy and params.n > 1:
                comps = [Completion(c.text, list(c.token_ids), None if c.logprobs is None else list(c.logprobs), c.finish_reason) for c in comps * params.n]
            results.append(comps)
        if progress is not None:
            progress(len(prompt_ids))
        return results

    def _completion(self, o: Any, params: SamplingParams) -> Completion:
        ids = list(o.token_ids)
        lps = None
        if params.logprobs and o.logprobs is not None:
            lps = [float(step[tid].logprob) for tid, step in zip(ids, o.logprobs, strict=False)]
        stop_reason = getattr(o, "stop_reason", None)
        if isinstance(stop_reason, str):  # a stop string cut the text
            keep = tokens_covering(ids, o.text, lambda t: self._tok.decode(t, skip_special_tokens=True))
            ids, lps = ids[:keep], None if lps is None else lps[:keep]
        elif o.finish_reason == "stop" and ids and ids[-1] in self._eos_ids:
            ids, lps = ids[:-1], None if lps is None else lps[:-1]  # the end-of-turn token is not content
        return Completion(text=o.text, token_ids=ids, logprobs=lps, finish_reason="length" if o.finish_reason == "length" else "stop")

    def close(self) -> None:
        import gc

        del self.llm
        gc.collect()
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass


def _generation_config(path: Any) -> Any:
    """The model directory's ``generation_config.json`` (its EOS ids), or None."""
    try:
        from transformers import GenerationConfig

        return GenerationConfig.from_pretrained(str(path))
    except (OSError, ValueError):
        return None
