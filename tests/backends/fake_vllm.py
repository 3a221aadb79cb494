"""A stand-in for the ``vllm`` package (CPU, the tiny model through transformers) that enforces the
checks and defaults of vLLM 0.31 that our backend must respect:

- ``SamplingParams``: ``n`` must be 1 when greedy (``temperature == 0``) — vLLM raises
  "n must be 1 when using greedy sampling"; ``max_tokens`` defaults to 16; unknown keywords are errors;
- ``LLM.generate`` with a *string* prompt tokenizes it with ``add_special_tokens=True`` (here: a BOS
  token is prepended, as Llama/Gemma tokenizers do), a ``{"prompt_token_ids": [...]}`` prompt is used as is;
- generation stops at the tokenizer's EOS and at ``stop_token_ids`` only (not at the model's
  generation-config EOS list); the stop token is part of ``token_ids``, not of ``text``; a stop string cuts ``text`` and sets ``stop_reason`` to it;
- a prompt of ``max_model_len`` tokens or more is an error.
Install with ``install(monkeypatch)``; ``LLM.instances`` records every engine built.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

VLLM_DEFAULT_MAX_TOKENS = 16
BOS_FOR_STRINGS = "<|endoftext|>"  # the tiny tokenizer has no BOS; this plays its part for string prompts


class SamplingParams:
    _FIELDS = {"n", "temperature", "top_p", "max_tokens", "stop", "stop_token_ids", "seed", "logprobs", "skip_special_tokens"}

    def __init__(self, **kw: Any) -> None:
        unknown = set(kw) - self._FIELDS
        if unknown:
            raise TypeError(f"SamplingParams got unexpected keyword(s) {sorted(unknown)}")
        self.n = kw.get("n", 1)
        self.temperature = kw.get("temperature", 1.0)
        self.top_p = kw.get("top_p", 1.0)
        self.max_tokens = kw.get("max_tokens", VLLM_DEFAULT_MAX_TOKENS)
        if self.max_tokens is None:
            self.max_tokens = VLLM_DEFAULT_MAX_TOKENS
        self.stop = list(kw.get("stop") or [])
        self.stop_token_ids = list(kw.get("stop_token_ids") or [])
        self.seed = kw.get("seed")
        self.logprobs = kw.get("logprobs")
        self.skip_special_tokens = kw.get("skip_special_tokens", True)
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}.")
        if self.temperature < 0:
            raise ValueError(f"temperature must be non-negative, got {self.temperature}.")
        if self.temperature == 0 and self.n > 1:
            raise ValueError("n must be 1 when using greedy sampling.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")


@dataclass
class Logprob:
    logprob: float


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str
    stop_reason: Any = None


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput] = field(default_factory=list)


class LLM:
    instances: list[LLM] = []

    def __init__(self, model: str, *, max_model_len: int | None = None, seed: int = 0, **kwargs: Any) -> None:
        from in2x_cli.io.checkpoint import load_causal_lm, load_tokenizer

        self.kwargs = {"model": model, "max_model_len": max_model_len, "seed": seed, **kwargs}
        self.model = load_causal_lm(model)
        self.tok = load_tokenizer(model)
        ctx = int(max_model_len or self.model.config.max_position_embeddings)
        self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=ctx, hf_config=self.model.config))
        self.requests: list[tuple[list[int], SamplingParams]] = []
        LLM.instances.append(self)

    def get_tokenizer(self) -> Any:
        return self.tok

    def generate(self, prompts: Any, sampling_params: Any = None, use_tqdm: bool = True) -> list[RequestOutput]:
        prompts = list(prompts)
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params or SamplingParams()] * len(prompts)
        outs = []
        for prompt, sp in zip(prompts, params, strict=True):
            if isinstance(prompt, str):
                ids = [self.tok.convert_tokens_to_ids(BOS_FOR_STRINGS), *self.tok(prompt, add_special_tokens=False)["input_ids"]]
            else:
                ids = list(prompt["prompt_token_ids"])
            ctx = self.llm_engine.model_config.max_model_len
            if len(ids) >= ctx:
                raise ValueError(f"The decoder prompt (length {len(ids)}) is longer than the maximum model length of {ctx}.")
            self.requests.append((ids, sp))
            outs.append(RequestOutput(ids, [self._sample(ids, sp, i) for i in range(sp.n)]))
        return outs

    def _sample(self, prompt: list[int], sp: SamplingParams, index: int) -> CompletionOutput:
        import torch

        stops = {self.tok.eos_token_id, *sp.stop_token_ids} - {None}
        gen = torch.Generator().manual_seed((sp.seed or 0) * 1000 + index)
        ids: list[int] = []
        lps: list[dict[int, Logprob]] = []
        finish, stop_reason = "length", None
        budget = min(sp.max_tokens, self.llm_engine.model_config.max_model_len - len(prompt))
        with torch.inference_mode():
            for _ in range(budget):
                logits = self.model(input_ids=torch.tensor([prompt + ids])).logits[0, -1].float()
                raw = torch.log_softmax(logits, -1)
                if sp.temperature == 0:
                    t = int(logits.argmax())
                else:
                    t = int(torch.multinomial(torch.softmax(logits / sp.temperature, -1), 1, generator=gen))
                ids.append(t)
                lps.append({t: Logprob(float(raw[t]))})
                if t in stops:
                    finish, stop_reason = "stop", (t if t != self.tok.eos_token_id else None)
                    break
                text = self.tok.decode(ids, skip_special_tokens=sp.skip_special_tokens)
                hit = [s for s in sp.stop if s in text]
                if hit:
                    finish, stop_reason = "stop", hit[0]
                    break
        # a stop token is in token_ids but not in text (vLLM v1's detokenizer skips it)
        shown = ids[:-1] if finish == "stop" and not isinstance(stop_reason, str) else ids
        text = self.tok.decode(shown, skip_special_tokens=sp.skip_special_tokens)
        if isinstance(stop_reason, str):
            text = text[: text.find(stop_reason)]
        return CompletionOutput(index, text, ids, lps if sp.logprobs is not None else None, finish, stop_reason)


def install(monkeypatch: Any) -> types.ModuleType:
    module = types.ModuleType("vllm")
    module.LLM = LLM
    module.SamplingParams = SamplingParams
    LLM.instances = []
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module
