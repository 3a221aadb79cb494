"""Transformers backend: batched, left-padded, length-sorted generation on CPU or one GPU.

Our own decode loop over the model's KV cache rather than ``model.generate``: it gives every
(request, sample) row its own ``torch.Generator`` (see base.py on determinism), per-token raw
log-probabilities, and stop strings, with the same result shape as vLLM.
"""

from __future__ import annotations

import inspect
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
from in2x_cli.devices import pick_device  # noqa: F401  (this rank's device; embedders import it from here)
from in2x_cli.errors import UserError


class TransformersBackend(TokenIdsBackend):
    """``model``: local directory or hub id. ``batch_size`` counts sequences (prompts × n)."""

    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        trust_remote_code: bool = False,
        max_model_len: int | None = None,
        model_obj: Any = None,
        tokenizer_obj: Any = None,
        **_ignored: Any,
    ) -> None:
        self.model_path = str(model)
        if model_obj is not None:
            self.model, self._tok = model_obj, tokenizer_obj
        else:  # a local directory or cached hub id, safetensors only ("auto" dtype: bf16 on a GPU)
            from in2x_cli.io.checkpoint import load_causal_lm, load_tokenizer, resolve_model

            path = resolve_model(model, trust_remote_code=trust_remote_code)
            self._tok = load_tokenizer(path, trust_remote_code=trust_remote_code)
            self.model = load_causal_lm(path, dtype=dtype, device=pick_device(device), trust_remote_code=trust_remote_code)
        self.batch_size = max(1, int(batch_size))
        self.device = next(self.model.parameters()).device
        cfg = self.model.config
        self._ctx = int(max_model_len or getattr(cfg, "max_position_embeddings", 4096) or 4096)
        self._pad_id = self._tok.pad_token_id if self._tok.pad_token_id is not None else self._tok.eos_token_id
        if self._pad_id is None:
            self._pad_id = 0
        self._eos_ids = self._collect_eos_ids()
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @property
    def tokenizer(self) -> Any:
        return self._tok

    @property
    def context_length(self) -> int:
        return self._ctx

    def _collect_eos_ids(self) -> set[int]:
        return end_of_turn_ids(self._tok, getattr(self.model, "generation_config", None), self.model.config)

    def generate_from_ids(
        self,
        prompt_ids: Sequence[Sequence[int]],
        params: SamplingParams,
        *,
        seeds: Sequence[int],
        progress: ProgressFn | None = None,
    ) -> list[list[Completion]]:
        for i, ids in enumerate(prompt_ids):
            if len(ids) >= self._ctx:
                raise UserError(f"prompt {i} has {len(ids)} tokens, at or beyond the model's context of {self._ctx}")
        # One row per (prompt, sample); greedy samples are identical, so decode them once.
        n_decode = 1 if params.temperature == 0 else params.n
        units = [(pi, si) for pi in range(len(prompt_ids)) for si in range(n_decode)]
        # Longest first: similar lengths share a batch (little padding) and memory peaks early.
        units.sort(key=lambda u: (-len(prompt_ids[u[0]]), u[0], u[1]))
        results: list[list[Completion | None]] = [[None] * n_decode for _ in prompt_ids]
        for start in range(0, len(units), self.batch_size):
            batch = units[start : start + self.batch_size]
            outs = self._decode_batch(
                [prompt_ids[pi] for pi, _ in batch],
                [derive_seed(seeds[pi], "sample", si) for pi, si in batch],
                params,
            )
            for (pi, si), comp in zip(batch, outs, strict=False):
                results[pi][si] = comp
            if progress is not None:
                progress(len(batch) / n_decode)  # in prompts
        final: list[list[Completion]] = []
        for row in results:
            comps = [c for c in row if c is not None]
            if n_decode == 1 and params.n > 1:
                comps = [Completion(c.text, list(c.token_ids), None if c.logprobs is None else list(c.logprobs), c.finish_reason) for c in comps * params.n]
            final.append(comps)
        return final

    def _decode_batch(self, prompts: list[Sequence[int]], row_seeds: list[int], params: SamplingParams) -> list[Completion]:
        import torch
        from transformers import DynamicCache

        bsz = len(prompts)
        width = max(len(p) for p in prompts)
        max_new = min(params.max_tokens, self._ctx - width)
        input_ids = torch.full((bsz, width), self._pad_id, dtype=torch.long)
        attention = torch.zeros((bsz, width), dtype=torch.long)
        for i, p in enumerate(prompts):
            if len(p):
                input_ids[i, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
                attention[i, width - len(p) :] = 1
        input_ids = input_ids.to(self.device)
        attention = attention.to(self.device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        gens = None
        if params.temperature > 0:
            gens = []
            for s in row_seeds:
                g = torch.Generator(device=self.device)
                g.manual_seed(s)
                gens.append(g)
        cache = DynamicCache(config=self.model.config)
        tokens: list[list[int]] = [[] for _ in range(bsz)]
        logps: list[list[float]] = [[] for _ in range(bsz)]
        finished = [False] * bsz
        reason = ["length"] * bsz
        stop_cut: list[int | None] = [None] * bsz
        step_ids, step_pos, mask = input_ids, positions, attention
        with torch.inference_mode():
            for _step in range(max(0, max_new)):
                out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos, use_cache=True, **{self._cache_kw: cache})
                logits = out.logits[:, -1, :].float()
                raw_logp = torch.log_softmax(logits, dim=-1)
                next_tok = self._choose(logits, params, gens)
                chosen_lp = raw_logp.gather(1, next_tok[:, None])[:, 0].tolist() if params.logprobs else None
                next_list = next_tok.tolist()
                for i in range(bsz):
                    if finished[i]:
                        continue
                    t = next_list[i]
                    if t in self._eos_ids:
                        finished[i] = True
                        reason[i] = "stop"
                        continue
                    tokens[i].append(t)
                    if chosen_lp is not None:
                        logps[i].append(float(chosen_lp[i]))
                    if params.stop:
                        cut = self._stop_position(tokens[i], params.stop)
                        if cut is not None:
                            finished[i] = True
                            reason[i] = "stop"
                            stop_cut[i] = cut
                if all(finished):
                    break
                step_ids = next_tok[:, None]
                step_pos = step_pos[:, -1:] + 1
                mask = torch.cat([mask, torch.ones((bsz, 1), dtype=mask.dtype, device=mask.device)], dim=1)
        outs = []
        for i in range(bsz):
            ids, lps = tokens[i], logps[i]
            text = self._tok.decode(ids, skip_special_tokens=True)
            if stop_cut[i] is not None:
                text = self._strip_stop(text, params.stop)
                keep = tokens_covering(ids, text, lambda t: self._tok.decode(t, skip_special_tokens=True))
                ids, lps = ids[:keep], lps[:keep]
            outs.append(Completion(text=text, token_ids=ids, logprobs=lps if params.logprobs else None, finish_reason=reason[i]))
        return outs

    @staticmethod
    def _choose(logits: Any, params: SamplingParams, gens: list[Any] | None) -> Any:
        import torch

        if params.temperature == 0 or gens is None:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_p, idx = probs.sort(dim=-1, descending=True)
            cum = sorted_p.cumsum(dim=-1)
            drop = cum - sorted_p > params.top_p  # keep the smallest prefix whose mass reaches top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(1, idx, sorted_p)
        picks = [torch.multinomial(probs[i], 1, generator=gens[i]) for i in range(probs.shape[0])]
        return torch.cat(picks)

    def _stop_position(self, tokens: list[int], stops: tuple[str, ...]) -> int | None:
        # Decode only a tail window: stop strings are short.
        tail = self._tok.decode(tokens[-16:], skip_special_tokens=True)
        for s in stops:
            if s and s in tail:
                return len(tokens)
        return None

    @staticmethod
    def _strip_stop(text: str, stops: tuple[str, ...]) -> str:
        cut = min((text.find(s) for s in stops if s and s in text), default=-1)
        return text[:cut] if cut >= 0 else text

