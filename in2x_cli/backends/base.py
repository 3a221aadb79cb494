"""The generation interface every stage uses: chat messages in, n completions out.

Determinism: each (request, sample index) pair has its own random stream, seeded from
``derive_seed(params.seed, request_key, sample_index)`` where the request key is the prompt text
unless the caller passes explicit ``seeds``. A request's completions therefore do not depend on
which other requests share its batch, on batch order, or on a resumed run skipping earlier rows.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings shared by both engines (vLLM's names).

    ``temperature == 0`` is greedy decoding (then ``n`` identical copies are returned, as vLLM
    does). ``stop`` strings end a completion and are not included in its text; its ``token_ids``
    and ``logprobs`` are trimmed to match (``tokens_covering``). ``logprobs``
    returns, per generated token, the log-probability under the model's raw distribution
    (temperature 1, before top-p), which is what vLLM returns by default.
    """

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int = 0
    stop: tuple[str, ...] = ()
    logprobs: bool = False

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")


@dataclass
class Completion:
    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    finish_reason: str = "stop"  # "stop" (EOS or stop string) or "length"

    @property
    def cumulative_logprob(self) -> float | None:
        return None if self.logprobs is None else float(sum(self.logprobs))


def tokens_covering(tokens: Sequence[int], text: str, decode: Callable[[Sequence[int]], str]) -> int:
    """How many leading generated tokens to keep once a stop string has cut the text to ``text``.

    The rule: the shortest prefix of ``tokens`` whose decoding starts with ``text``. Tokens that
    only spell the stop string (and anything after it) are dropped, with their logprobs; a token
    that straddles the boundary (the end of the kept text fused with the start of the stop
    string) is kept, because it produced kept text. A stop string at the very start keeps none.
    """
    keep = len(tokens)
    while keep > 0 and decode(tokens[: keep - 1]).startswith(text):
        keep -= 1
    return keep


def derive_seed(base: int, key: str | int, index: int = 0) -> int:
    """A 63-bit seed from (base seed, request key, sample index); stable across runs and machines."""
    h = hashlib.sha256(f"{base}\x1f{key}\x1f{index}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


ProgressFn = Callable[[int], None]


END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>")


def end_of_turn_ids(tokenizer: Any, *configs: Any) -> set[int]:
    """Token ids that end a completion: every ``eos_token_id`` of the given configs (generation
    config, model config) and of the tokenizer, plus the chat templates' end-of-turn tokens present
    in the vocabulary. Both engines stop at exactly this set (vLLM as ``stop_token_ids``)."""
    ids: set[int] = set()
    for src in (*configs, tokenizer):
        eos = getattr(src, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, (list, tuple)):
            ids.update(int(e) for e in eos)
    vocab = tokenizer.get_vocab()
    for special in END_OF_TURN_TOKENS:
        if special in vocab:
            ids.add(int(vocab[special]))
    return ids


class Backend(ABC):
    """One model behind one interface. Subclasses implement ``generate_from_text``."""

    name: str = "base"
    model_path: str

    # --- what subclasses provide -------------------------------------------------------------
    @abstractmethod
    def generate_from_text(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        *,
        seeds: Sequence[int] | None = None,
        progress: ProgressFn | None = None,
    ) -> list[list[Completion]]:
        """Complete raw prompt strings (already templated); one list of ``params.n`` per prompt."""

    @property
    @abstractmethod
    def tokenizer(self) -> Any: ...

    @property
    def context_length(self) -> int:
        """Maximum prompt + completion tokens the model accepts."""
        return 4096

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release GPU memory / worker processes."""

    # --- shared behaviour --------------------------------------------------------------------
    def chat_prompt(self, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        """Apply the model's chat template (the tokenizer's ``chat_template``)."""
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            from in2x_cli.errors import UserError

            raise UserError("the model's tokenizer has no chat template; use a chat/instruct model", self.model_path)
        from jinja2 import TemplateError

        try:
            return tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)
        except TemplateError as exc:  # a broken template, or its raise_exception() on these messages
            from in2x_cli.errors import UserError

            raise UserError(f"the model's chat template cannot render the request ({type(exc).__name__}: {exc})", self.model_path) from None

    def chat(
        self,
        conversations: Sequence[Sequence[Message]],
        params: SamplingParams,
        *,
        seeds: Sequence[int] | None = None,
        progress: ProgressFn | None = None,
    ) -> list[list[Completion]]:
        """Generate assistant replies for chat conversations."""
        prompts = [self.chat_prompt(c) for c in conversations]
        return self.generate_from_text(prompts, params, seeds=seeds, progress=progress)

    def complete(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        *,
        seeds: Sequence[int] | None = None,
        progress: ProgressFn | None = None,
    ) -> list[list[Completion]]:
        """Raw text completion (no chat template), e.g. Magpie's pre-query templates."""
        return self.generate_from_text(prompts, params, seeds=seeds, progress=progress)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def request_seeds(self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int] | None) -> list[int]:
        if seeds is not None:
            if len(seeds) != len(prompts):
                raise ValueError("seeds must have one entry per prompt")
            return [int(s) for s in seeds]
        return [derive_seed(params.seed, p) for p in prompts]

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TokenIdsBackend(Backend):
    """A backend that generates from token ids: text prompts are tokenized here once, without
    special tokens (the chat template already holds BOS and the turn markers), and go to
    ``generate_from_ids`` with one seed per prompt. The transformers and vLLM backends share it,
    so both see the same ids for the same prompt."""

    @abstractmethod
    def generate_from_ids(
        self,
        prompt_ids: Sequence[Sequence[int]],
        params: SamplingParams,
        *,
        seeds: Sequence[int],
        progress: ProgressFn | None = None,
    ) -> list[list[Completion]]:
        """Complete tokenized prompts; one list of ``params.n`` per prompt."""

    def generate_from_text(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        *,
        seeds: Sequence[int] | None = None,
        progress: ProgressFn | None = None,
    ) -> list[list[Completion]]:
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        return self.generate_from_ids(encoded, params, seeds=self.request_seeds(prompts, params, seeds), progress=progress)
