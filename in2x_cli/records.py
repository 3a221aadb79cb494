"""Typed rows shared by the stages. Unknown fields pass through untouched.

Each record is a dataclass built from one JSONL row with ``from_line``/``from_dict``: required
fields are checked, known fields are type-checked (an error names file:line and the field), and
every other key lands in ``extra`` and is written back, in its original position, by ``to_dict``.
Some fields accept aliases (WMT25 writes ``src_text``); the row is written back under the key it
came with.

Rows as text and conversations, the one parser every stage uses (``row_prompt``,
``row_conversation``, ``row_text``): an instruction comes from ``instruction`` or its aliases
``prompt``/``query`` (``PROMPT_FIELDS``), a reply from ``response``/``output``/``completion``
(``RESPONSE_FIELDS``), a conversation from ``messages``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, Union

from in2x_cli.errors import InputError
from in2x_cli.io.jsonl import Line

R = TypeVar("R", bound="Record")

Message = dict[str, str]
ROLES = ("system", "user", "assistant", "tool")
PROMPT_FIELDS = ("instruction", "prompt", "query")  # aliases of one field, in order of precedence
RESPONSE_FIELDS = ("response", "output", "completion")

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list", dict: "an object"}


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        args = typing.get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return isinstance(value, dict) and all(isinstance(k, str) and _type_ok(v, vt) for k, v in value.items())
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        return "a list"
    if origin is dict:
        return "an object"
    return _TYPE_NAMES.get(tp, str(tp))


@dataclass
class Record:
    """Base class: subclasses declare fields; ``extra`` keeps everything else."""

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    ALIASES: ClassVar[dict[str, tuple[str, ...]]] = {}

    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, kw_only=True)
    where: str = field(default="", repr=False, compare=False, kw_only=True)
    _keys: dict[str, str] = field(default_factory=dict, repr=False, compare=False, kw_only=True)
    _order: list[str] = field(default_factory=list, repr=False, compare=False, kw_only=True)

    @classmethod
    def _fields(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls) if not f.name.startswith("_") and f.name not in ("extra", "where")}

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any], where: str = "") -> R:
        fields = cls._fields()
        values: dict[str, Any] = {}
        keys: dict[str, str] = {}
        consumed: set[str] = set()
        for name, tp in fields.items():
            for key in (name, *cls.ALIASES.get(name, ())):
                if key in data and data[key] is not None:
                    value = data[key]
                    if not _type_ok(value, tp):
                        raise InputError(f"field {key!r} must be {_describe(tp)}, got {type(value).__name__}", where)
                    values[name] = value
                    keys[name] = key
                    consumed.add(key)
                    break
            else:
                for key in (name, *cls.ALIASES.get(name, ())):
                    if key in data:
                        consumed.add(key)  # explicit null: same as absent
        missing = [n for n in cls.REQUIRED if n not in values]
        if missing:
            alias_note = "".join(f" (or {'/'.join(repr(a) for a in cls.ALIASES[m])})" for m in missing if m in cls.ALIASES)
            raise InputError(f"missing required field {', '.join(repr(m) for m in missing)}{alias_note}", where)
        extra = {k: v for k, v in data.items() if k not in consumed}
        rec = cls(**values, extra=extra, where=where, _keys=keys, _order=list(data))
        rec.validate()
        return rec

    @classmethod
    def from_line(cls: type[R], line: Line) -> R:
        return cls.from_dict(line.data, line.where)

    def validate(self) -> None:
        """Hook for cross-field checks; raise InputError(..., self.where)."""

    def to_dict(self) -> dict[str, Any]:
        """Known fields (under their original keys) and extras, in the input's key order first."""
        known: dict[str, Any] = {}
        for name in self._fields():
            value = getattr(self, name)
            if value is not None:
                known[self._keys.get(name, name)] = value
        merged = {**self.extra, **known}
        out: dict[str, Any] = {}
        for key in self._order:
            if key in merged:
                out[key] = merged.pop(key)
        out.update(merged)
        return out


@dataclass
class InstructionRow(Record):
    """An instruction (prompt) with optional response and curation fields.

    ``instruction`` may instead come from ``prompt``/``query``, or from the first user message of
    ``messages`` (see ``instruction_text``).
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("instruction",)
    ALIASES: ClassVar[dict[str, tuple[str, ...]]] = {"instruction": PROMPT_FIELDS[1:]}

    instruction: str | None = None
    id: str | int | None = None
    response: str | None = None
    lang: str | None = None
    tag: str | None = None
    difficulty: str | int | None = None
    cluster: int | None = None
    answer: str | int | float | None = None
    round: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> InstructionRow:
        if not has_prompt(data) and "messages" in data:
            text = first_user_message(data["messages"], where)
            rec = super().from_dict({**data, "instruction": text}, where)
            rec._keys["instruction"] = "instruction"
            rec._derived_instruction = True  # type: ignore[attr-defined]
            return rec
        return super().from_dict(data, where)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if getattr(self, "_derived_instruction", False):
            out.pop("instruction", None)
        return out


def first_user_message(messages: Any, where: str) -> str:
    msgs = validate_messages(messages, where)
    for m in msgs:
        if m["role"] == "user":
            return m["content"]
    raise InputError("'messages' has no user message", where)


def validate_messages(messages: Any, where: str) -> list[Message]:
    if not isinstance(messages, list) or not messages:
        raise InputError("field 'messages' must be a non-empty list of {role, content} objects", where)
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise InputError(f"messages[{i}] must be an object with string 'role' and 'content'", where)
        if m["role"] not in ROLES:
            raise InputError(f"messages[{i}] has unknown role {m['role']!r} (expected one of {', '.join(ROLES)})", where)
    return messages


@dataclass
class ChatRow(Record):
    """A conversation: ``messages`` = [{role, content}, ...] (system/user/assistant/tool)."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("messages",)

    messages: list[dict[str, Any]] | None = None
    id: str | int | None = None
    lang: str | None = None
    round: int | None = None

    def validate(self) -> None:
        validate_messages(self.messages, self.where)


@dataclass
class TextRow(Record):
    """Plain text for continued pretraining."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("text",)
    ALIASES: ClassVar[dict[str, tuple[str, ...]]] = {"text": ("content",)}

    text: str | None = None
    id: str | int | None = None
    lang: str | None = None


@dataclass
class TranslationRow(Record):
    """A segment or document to translate / score. WMT25 JSONL spells ``src_text``."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("src",)
    ALIASES: ClassVar[dict[str, tuple[str, ...]]] = {
        "src": ("src_text", "source"),
        "ref": ("ref_text", "reference", "tgt_text"),
        "hyp": ("mt", "hypothesis"),
        "doc_id": ("document_id", "docid"),
    }

    src: str | None = None
    ref: str | None = None
    hyp: str | None = None
    src_lang: str | None = None
    tgt_lang: str | None = None
    id: str | int | None = None
    doc_id: str | None = None
    domain: str | None = None
    system: str | None = None


@dataclass
class ScoredRow(TranslationRow):
    """A translation with metric scores: ``scores`` = {metric: segment score}."""

    scores: dict[str, float | None] | None = None


def row_key(data: dict[str, Any], fallback: int) -> str:
    """A stable identity for resume: ``id`` if present, else ``doc_id``, else the row index."""
    for key in ("id", "doc_id", "document_id"):
        if key in data and data[key] is not None:
            return f"{key}:{data[key]}"
    return f"row:{fallback}"


def row_id(data: dict[str, Any]) -> str:
    """The identity of a row wherever rows must be told apart across files (the recipe's RL pool
    is the graded pool minus the rows SFT took): its ``id`` when present (``"id:" + JSON of it``),
    else ``"sha256:"`` + the first 16 hex digits of a hash of its content. The content is the
    first present of ``messages``, the instruction (``PROMPT_FIELDS``) with an Alpaca ``input``,
    ``src``/``src_text`` with ``tgt_lang``, or ``text``; labels added by the stages (tag,
    difficulty, cluster, round, grades, …) are not part of it, so a row keeps its id through
    cluster → sample-difficulty → SFT selection. A row with none of these hashes its whole JSON.
    """
    if data.get("id") is not None:
        return "id:" + json.dumps(data["id"], ensure_ascii=False, sort_keys=True)
    content: Any
    if "messages" in data:
        content = {"messages": data["messages"]}
    elif has_prompt(data):
        content = {"instruction": next(data[k] for k in PROMPT_FIELDS if k in data), "input": data.get("input")}
    elif any(k in data for k in ("src", "src_text")):
        content = {"src": data.get("src", data.get("src_text")), "tgt_lang": data.get("tgt_lang")}
    elif "text" in data:
        content = {"text": data["text"]}
    else:
        content = data
    blob = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- rows as text and conversations


def has_prompt(data: dict[str, Any]) -> bool:
    """The row names an instruction field (``PROMPT_FIELDS``), whatever its value."""
    return any(k in data for k in PROMPT_FIELDS)


def row_prompt(data: dict[str, Any]) -> str | None:
    """The instruction text of a row: the first of ``PROMPT_FIELDS`` whose value is a string (the
    others are passed over), or None. ``row_conversation`` without ``lenient`` is stricter, and
    ``grpo`` reads the instruction through ``InstructionRow``, which also type-checks the row's
    other known fields."""
    return next((data[k] for k in PROMPT_FIELDS if isinstance(data.get(k), str)), None)


def row_conversation(
    data: dict[str, Any],
    where: str,
    *,
    responses: tuple[str, ...] = RESPONSE_FIELDS,
    lenient: bool = False,
    with_input: bool = True,
) -> list[Message] | None:
    """The conversation of a row: its ``messages`` (validated, each turn reduced to ``role`` and
    ``content``), else its instruction (``row_prompt``) and reply as one user and one assistant
    turn; None when the row has neither ``messages`` nor both an instruction and a reply.

    What the stages accept differs, by these arguments:

    - ``sft`` (defaults): the first instruction field present and the first of
      ``response``/``output``/``completion`` present decide, and must be strings (``null`` counts
      as absent); an Alpaca ``input`` string is appended to the instruction after a blank line.
    - merge calibration (``responses=("response",), lenient=True, with_input=False``): the first
      instruction field holding a string, only ``response`` (a string) as the reply; ``input`` is
      ignored.
    - ``grpo`` uses the ``messages`` branch only (its prompt is the conversation up to the last
      user turn).
    """
    if "messages" in data:
        return [{"role": m["role"], "content": m["content"]} for m in validate_messages(data["messages"], where)]
    if lenient:  # the first string values
        prompt: Any = row_prompt(data)
        response: Any = next((data[k] for k in responses if isinstance(data.get(k), str)), None)
    else:  # the first fields present decide (null = absent; another non-string is an error)
        prompt = next((data[k] for k in PROMPT_FIELDS if k in data), None)
        response = next((data[k] for k in responses if k in data), None)
    if prompt is None or response is None:
        return None
    for name, value in (("instruction", prompt), ("response", response)):
        if not isinstance(value, str):
            raise InputError(f"field {name!r} must be a string, got {type(value).__name__}", where)
    extra = data.get("input")
    if with_input and isinstance(extra, str) and extra:
        prompt = prompt + "\n\n" + extra
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def row_text(data: dict[str, Any], field: str | None, where: str) -> str:
    """The text of a row to embed or grade (``cluster``, ``sample-difficulty``): ``field`` when
    given; else the instruction (``row_prompt``), the first user message of ``messages``, or ``text``."""
    if field is not None:
        value = data.get(field)
        if not isinstance(value, str):
            got = "missing" if field not in data else type(value).__name__
            raise InputError(f"field {field!r} must be a string, got {got}", where)
        return value
    prompt = row_prompt(data)
    if prompt is not None:
        return prompt
    if "messages" in data:
        return first_user_message(data["messages"], where)
    if isinstance(data.get("text"), str):
        return data["text"]
    raise InputError("no text to use: expected 'instruction' (or 'prompt'/'query'), 'messages' or 'text', or pass --field", where)
