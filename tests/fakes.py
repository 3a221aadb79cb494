"""A scripted generation backend: deterministic replies chosen by test code.

Use it through the real CLI with ``--backend tests.fakes:ScriptedBackend --model NAME`` after
registering ``SCRIPTS[NAME] = fn``, where ``fn(prompt_text, sample_index) -> str``. Prompts are
ChatML-rendered conversations, so tests can match on any part of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from in2x_cli.backends.base import Backend, Completion, ProgressFn, SamplingParams

SCRIPTS: dict[str, Callable[[str, int], str]] = {}
CALLS: dict[str, list[str]] = {}


class _WhitespaceTokenizer:
    chat_template = "chatml"

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = False, add_generation_prompt: bool = True, **_: Any) -> str:
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    def __call__(self, text: str, add_special_tokens: bool = False, **_: Any) -> dict[str, list[int]]:
        return {"input_ids": [hash(w) % 1000 for w in text.split()]}

    def decode(self, ids: Sequence[int], **_: Any) -> str:
        return " ".join(str(i) for i in ids)


class ScriptedBackend(Backend):
    name = "scripted"

    def __init__(self, model: str, **_: Any) -> None:
        if model not in SCRIPTS:
            from in2x_cli.errors import UserError

            raise UserError(f"no script registered under {model!r}")
        self.model_path = model
        self._fn = SCRIPTS[model]
        self._tok = _WhitespaceTokenizer()
        CALLS.setdefault(model, [])

    @property
    def tokenizer(self) -> Any:
        return self._tok

    @property
    def context_length(self) -> int:
        return 100_000

    def generate_from_text(
        self, prompts: Sequence[str], params: SamplingParams, *, seeds: Sequence[int] | None = None, progress: ProgressFn | None = None
    ) -> list[list[Completion]]:
        out = []
        for p in prompts:
            CALLS[self.model_path].append(p)
            out.append([Completion(text=self._fn(p, j), token_ids=[], logprobs=None, finish_reason="stop") for j in range(params.n)])
        if progress is not None:
            progress(len(prompts))
        return out
