"""vLLM backend: one ``LLM.generate`` over all prompts; tensor parallel across GPUs.

Imported only when asked for (``--backend vllm``); vLLM is the ``gpu`` extra. Results have the
same shape as the transformers backend: per prompt, ``n`` completions with text, token ids,
raw log-probabilities (vLLM's default ``logprobs_mode``) and finish reason. Per-request seeds
(vLLM's ``SamplingParams.seed``) make each prompt's samples independent of its batch.

Data parallelism for offline inference: run one process per GPU group, each on a shard of the
input (see ``in2x translate --shard``); vLLM's own ``data_parallel_size`` targets serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from in2x_cli.backends.base import (
    Backend,
    Completion,
    ProgressFn,
    SamplingParams,
    derive_seed,
    tokens_covering,
)
from in2x_cli.errors import UserError


class VLLMBackend(Backend):
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
        self.llm = LLM(
            model=str(path),
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            seed=seed,
            enforce_eager=enforce_eager,
        )
        self._tok = self.llm.get_tokenizer()
        self._ctx = int(self.llm.llm_engine.model_config.max_model_len)

    @property
    def tokenizer(self) -> Any:
        return self._tok

    @property
    def context_length(self) -> int:
        return self._ctx

    def generate_from_text(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        *,
        seeds: Sequence[int] | None = None,
        progress: ProgressFn | None = None,
    ) -> list[list[Completion]]:
        from vllm import SamplingParams as VSamplingParams

        request_seeds = self.request_seeds(prompts, params, seeds)
        vparams = [
            VSamplingParams(
                n=params.n,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                stop=list(params.stop) or None,
                seed=derive_seed(s, "sample", 0) & 0x7FFFFFFF,
                logprobs=0 if params.logprobs else None,
            )
            for s in request_seeds
        ]
        outputs = self.llm.generate(list(prompts), vparams, use_tqdm=False)
        results: list[list[Completion]] = []
        for out in outputs:
            comps = []
            for o in out.outputs:
                ids = list(o.token_ids)
                lps = None
                if params.logprobs and o.logprobs is not None:
                    lps = [float(step[tid].logprob) for tid, step in zip(ids, o.logprobs, strict=False)]
                if isinstance(getattr(o, "stop_reason", None), str):  # a stop string cut the text
                    keep = tokens_covering(ids, o.text, lambda t: self._tok.decode(t, skip_special_tokens=True))
                    ids, lps = ids[:keep], None if lps is None else lps[:keep]
                comps.append(
                    Completion(
                        text=o.text,
                        token_ids=ids,
                        logprobs=lps,
                        finish_reason="length" if o.finish_reason == "length" else "stop",
                    )
                )
            results.append(comps)
        if progress is not None:
            progress(len(prompts))
        return results

    def close(self) -> None:
        import gc

        del self.llm
        gc.collect()
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass
