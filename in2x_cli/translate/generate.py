"""Candidates from the backend(s): one call per (model, decoding mode) over all requests of a
phase, greedy first, then ``--mbr N`` samples; ensembles load one model at a time.

Seeds are per request, derived from (``--seed``, row id, request tag, model index), so a row's
samples do not depend on which other rows are in the run (sharding, resuming). Candidates are
cleaned (``core.translate.clean_output_rules``) and pooled in model order whatever the loading order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from in2x_cli import console
from in2x_cli.core import translate as T
from in2x_cli.translate.config import TranslateConfig, TranslateStats
from in2x_cli.translate.prompting import Unit


@dataclass
class Candidate:
    model: int
    sample: int  # -1 = greedy
    text: str
    tokens: int
    logprob: float | None = None  # sum over the tokens (--mbr-method model asks the backend for it)
    truncated: bool = False  # generation stopped at --max-tokens (finish reason "length")


class BackendPool:
    """At most one backend loaded at a time; the last one stays loaded for the next phase."""

    def __init__(self, cfg: TranslateConfig, stats: TranslateStats, models: tuple[str, ...] | None = None) -> None:
        self.cfg = cfg
        self.stats = stats
        self.models = models or cfg.models  # the candidate models, then any other (the --fuse model)
        self.loaded: tuple[int, Any] | None = None

    def get(self, index: int) -> Any:
        from in2x_cli.backends import load_backend

        if self.loaded and self.loaded[0] == index:
            return self.loaded[1]
        self.close()
        model = self.models[index]
        console.info(f"translate: loading {model} ({self.cfg.backend} backend)")
        t0 = time.perf_counter()
        backend = load_backend(self.cfg.backend, model, seed=self.cfg.seed, **self.cfg.backend_options)
        self.stats.load_seconds += time.perf_counter() - t0
        self.stats.model_loads += 1
        self.loaded = (index, backend)
        return backend

    def order(self) -> list[int]:
        """Candidate model indices, the already-loaded one first (saves a load per phase in ensembles)."""
        n = len(self.cfg.models)
        first = self.loaded[0] if self.loaded and self.loaded[0] < n else 0
        return [first] + [i for i in range(n) if i != first]

    def close(self) -> None:
        if self.loaded:
            self.loaded[1].close()
            self.loaded = None


def generate(
    units: list[Unit], pool: BackendPool, cfg: TranslateConfig, stats: TranslateStats, bar: Any, label: str
) -> list[list[Candidate]]:
    """Candidates per unit, pooled in model order: per model the greedy output, then ``cfg.mbr``
    samples. One backend call per (model, decoding mode) over all units."""
    from in2x_cli.backends import SamplingParams, derive_seed

    if not units:
        return []
    max_tokens = cfg.max_tokens
    if max_tokens <= 0:  # auto: the largest request's budget (the planner made every request fit it)
        max_tokens = max(T.ContextBudget(context=0, overhead=0).output_tokens(u.src_tokens) for u in units)
    logprobs = cfg.mbr_method == "model"
    greedy_params = SamplingParams(n=1, temperature=0.0, max_tokens=max_tokens, seed=cfg.seed, logprobs=logprobs)
    sample_params = None
    if cfg.mbr > 0:
        sample_params = SamplingParams(
            n=cfg.mbr, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=max_tokens, seed=cfg.seed, logprobs=logprobs
        )
    convs = [u.messages for u in units]
    calls = 1 if sample_params is None else 2
    per_model: dict[int, list[list[Candidate]]] = {}
    for mi in pool.order():
        backend = pool.get(mi)
        seeds = [derive_seed(cfg.seed, f"{u.job.key}\x1f{u.tag}\x1f{mi}") for u in units]
        name = cfg.models[mi].rstrip("/").rsplit("/", 1)[-1]
        task = bar.add_task(f"translate {label} [{name}]", total=len(units) * calls)
        advance = lambda n, task=task: bar.advance(task, n)  # noqa: E731
        t0 = time.perf_counter()
        outs = [[(-1, g[0])] for g in backend.chat(convs, greedy_params, seeds=seeds, progress=advance)]
        if sample_params is not None:
            for o, samples in zip(outs, backend.chat(convs, sample_params, seeds=seeds, progress=advance), strict=True):
                o.extend(enumerate(samples))
        stats.generate_seconds += time.perf_counter() - t0
        stats.prompts += len(units) * calls
        per_model[mi] = []
        for u, o in zip(units, outs, strict=True):
            source = T.PARAGRAPH_SEP.join(u.sources)
            cands = []
            for sample, comp in o:
                truncated = comp.finish_reason == "length"
                raw = trim_partial_character(comp.text) if truncated else comp.text
                text, fired = T.clean_output_rules(raw, source)
                stats.cleaning.update(fired)
                stats.generated_tokens += len(comp.token_ids)
                if truncated:
                    stats.truncated[cfg.models[mi]] += 1
                cands.append(Candidate(mi, sample, text, len(comp.token_ids), comp.cumulative_logprob, truncated))
            per_model[mi].append(cands)
    pooled = [[c for mi in sorted(per_model) for c in per_model[mi][k]] for k in range(len(units))]
    stats.candidates += sum(len(c) for c in pooled)
    return pooled


def trim_partial_character(text: str) -> str:
    """A generation cut at ``max_tokens`` can end inside a multi-byte character, which the
    tokenizer decodes as U+FFFD: drop that trailing replacement (never emit a broken character)."""
    return text.rstrip("\ufffd")
