"""Prompt templates used by the LLM-calling stages. ``synthesize.py`` holds every prompt of
``in2x synthesize`` with its purpose; ``base.py`` the template rules (``{name}`` placeholders,
other braces literal) and the override mechanism behind ``--prompt-file``.
"""

from __future__ import annotations

import os
from typing import Any

from in2x_cli.errors import UserError
from in2x_cli.prompts.base import Prompt, PromptSet
from in2x_cli.prompts.synthesize import PROMPTS as SYNTHESIZE_PROMPTS


def read_prompt_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON (``.json``) or YAML (anything else) file mapping prompt names to templates."""
    p = str(path)
    if p.endswith(".json"):
        from in2x_cli.io.jsonl import read_json

        data = read_json(p)
    else:
        import yaml

        from in2x_cli.io import read_text_lines

        try:
            data = yaml.safe_load("\n".join(read_text_lines(p)))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{p}:{mark.line + 1}" if mark is not None else p
            raise UserError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", where) from None
    if not isinstance(data, dict) or not data:
        raise UserError("expected a mapping of prompt names to templates", p)
    return data


def synthesize_prompts(prompt_file: str | os.PathLike[str] | None = None) -> PromptSet:
    """The synthesize prompts, with the templates of ``prompt_file`` replacing the built-in ones."""
    prompts = PromptSet(SYNTHESIZE_PROMPTS)
    if prompt_file is None:
        return prompts
    return prompts.with_overrides(read_prompt_file(prompt_file), where=str(prompt_file))


__all__ = ["Prompt", "PromptSet", "SYNTHESIZE_PROMPTS", "read_prompt_file", "synthesize_prompts"]
