"""Prompt templates with named placeholders, overridable from a file.

A template is plain text in which ``{name}`` is replaced by the value of placeholder ``name`` when
``name`` is one of the prompt's declared fields. All other braces are literal, so JSON examples in
judge prompts need no escaping. An unknown ``{identifier}`` is an error when the prompt is loaded
(it is almost always a typo), and so is a missing required placeholder.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from in2x_cli.errors import UserError

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Prompt:
    """One template: what it is for, which placeholders it may use and which it must use."""

    name: str
    purpose: str
    template: str
    fields: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    def check(self, where: str | None = None) -> None:
        used = set(_PLACEHOLDER.findall(self.template))
        unknown = sorted(used - set(self.fields))
        if unknown:
            raise UserError(
                f"prompt {self.name!r} uses unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}"
                f" (this prompt knows: {', '.join('{' + f + '}' for f in self.fields) or 'none'})",
                where,
            )
        missing = [f for f in self.required if f not in used]
        if missing:
            raise UserError(
                f"prompt {self.name!r} must contain {', '.join('{' + m + '}' for m in missing)}", where
            )

    def render(self, **values: str) -> str:
        absent = [f for f in self.fields if f in _PLACEHOLDER.findall(self.template) and f not in values]
        if absent:
            raise KeyError(f"prompt {self.name!r} needs values for {absent}")
        return _PLACEHOLDER.sub(
            lambda m: values[m.group(1)] if m.group(1) in self.fields else m.group(0), self.template
        )


class PromptSet(Mapping[str, Prompt]):
    """The prompts a stage uses, after overrides; ``digest`` identifies the exact texts."""

    def __init__(self, prompts: Mapping[str, Prompt]) -> None:
        self._prompts = dict(prompts)

    def __getitem__(self, name: str) -> Prompt:
        return self._prompts[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._prompts)

    def __len__(self) -> int:
        return len(self._prompts)

    def render(self, name: str, **values: str) -> str:
        return self._prompts[name].render(**values)

    def digest(self) -> str:
        blob = json.dumps({k: p.template for k, p in sorted(self._prompts.items())}, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def with_overrides(self, overrides: Mapping[str, object], where: str | None = None) -> PromptSet:
        """Replace templates by name; unknown names and non-string templates are errors."""
        out = dict(self._prompts)
        for name, template in overrides.items():
            if name not in out:
                raise UserError(f"unknown prompt {name!r} (known: {', '.join(sorted(out))})", where)
            if not isinstance(template, str):
                raise UserError(
                    f"prompt {name!r} must be a string template, got {type(template).__name__}", where
                )
            prompt = replace(out[name], template=template)
            prompt.check(where)
            out[name] = prompt
        return PromptSet(out)
