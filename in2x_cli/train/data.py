"""Training data for ``cpt`` and ``sft``: mixtures, streaming, packing, chat formatting and masks,
the round → epoch schedule and the language-temperature sampler.

Everything here is deterministic given its inputs and seed. Files are read only through
``in2x_cli.io`` (errors name ``file:line``); torch / datasets / trl are imported inside functions.

CPT stream (``MixtureStream`` → ``pack_documents``)
    Sources are interleaved by *tokens*: the next document comes from the source furthest below its
    share, i.e. ``argmin_i tokens_i / w_i`` (ties → the earlier source). After any prefix of the
    stream the token share of every source is within one document of its weight, with no RNG to
    drift. A source that runs out starts over (the "all sources keep flowing" rule), reshuffled
    through a seeded shuffle buffer on every pass. Documents are tokenized lazily, so files of any
    size stream through.

SFT examples (``tokenize_chat``)
    Loss on assistant tokens only. Three ways to find them, chosen by ``mask_mode``:
    ``markers`` — the chat template has ``{% generation %}`` markers (the tiny model's does), so
    transformers returns the assistant mask; ``trl`` — TRL ships a marked training twin of the
    model's template (Qwen2.5, Qwen3, Llama 3, Gemma, ...); ``render`` — any prefix-preserving
    template: render the conversation up to each assistant turn with and without it, and the
    characters in between, cut after the tokenizer's end-of-turn token, are the assistant's.
    ``auto`` tries them in that order.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from in2x_cli.errors import InputError, UserError

IGNORE_INDEX = -100

# --------------------------------------------------------------------------- mixtures


@dataclass(frozen=True)
class DataSource:
    """One ``--data PATH[:WEIGHT]`` entry."""

    path: str
    weight: float = 1.0


def parse_data_spec(spec: str) -> DataSource:
    """``a.jsonl:0.5`` → (a.jsonl, 0.5); ``a.jsonl`` → weight 1. Only a trailing ``:number`` is a weight,
    so paths containing colons still work."""
    path, sep, tail = spec.rpartition(":")
    if sep and path:
        try:
            weight = float(tail)
        except ValueError:
            return DataSource(spec, 1.0)
        if not math.isfinite(weight) or weight <= 0:
            raise UserError(f"mixture weight must be a positive number, got {tail!r}", spec)
        return DataSource(path, weight)
    return DataSource(spec, 1.0)


def normalize_weights(sources: Sequence[DataSource]) -> list[float]:
    total = sum(s.weight for s in sources)
    return [s.weight / total for s in sources]


def iter_texts(path: str, text_field: str = "text") -> Iterator[tuple[str, dict[str, Any]]]:
    """(text, row) for each row of a text JSONL file; a missing or non-string field names file:line."""
    from in2x_cli.io import iter_jsonl

    for line in iter_jsonl(path):
        value = line.data.get(text_field)
        if value is None and text_field == "text":
            value = line.data.get("content")
        if value is None:
            raise InputError(f"missing required field {text_field!r}", line.where)
        if not isinstance(value, str):
            raise InputError(f"field {text_field!r} must be a string, got {type(value).__name__}", line.where)
        yield value, line.data


def shuffle_buffer(items: Iterable[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """Streaming approximate shuffle (as ``datasets.IterableDataset.shuffle``): keep ``size`` items,
    emit a random one as each new item arrives. ``size <= 1`` keeps file order."""
    if size <= 1:
        yield from items
        return
    buf: list[Any] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        i = rng.randrange(size)
        yield buf[i]
        buf[i] = item
    rng.shuffle(buf)
    yield from buf


class MixtureStream:
    """Token-proportional, deterministic interleaving of several tokenized document streams.

    ``streams`` are zero-argument callables returning a fresh iterator of token-id lists (one pass
    over a source); a source is restarted when it runs out (``passes[i]`` counts restarts).
    ``tokens[i]`` counts the tokens emitted from source i so far.
    """

    def __init__(self, streams: Sequence[Any], weights: Sequence[float]) -> None:
        if len(streams) != len(weights) or not streams:
            raise ValueError("need one weight per stream")
        self.streams = list(streams)
        self.weights = [float(w) for w in weights]
        self.tokens = [0] * len(streams)
        self.docs = [0] * len(streams)
        self.passes = [0] * len(streams)

    def next_source(self) -> int:
        return min(range(len(self.weights)), key=lambda i: (self.tokens[i] / self.weights[i], i))

    def __iter__(self) -> Iterator[tuple[int, list[int]]]:
        iters = [s() for s in self.streams]
        while True:
            i = self.next_source()
            doc = next(iters[i], None)
            if doc is None:
                self.passes[i] += 1
                iters[i] = self.streams[i]()
                doc = next(iters[i], None)
                if doc is None:  # an empty source after filtering: drop it from the mixture
                    raise UserError("a data source yields no documents (all filtered out?)")
            self.tokens[i] += len(doc)
            self.docs[i] += 1
            yield i, doc


def pack_documents(docs: Iterable[list[int]], seq_len: int) -> Iterator[dict[str, list[int]]]:
    """Concatenate documents into rows of exactly ``seq_len`` tokens ("wrapped" packing, the CPT
    standard: no padding, a document may continue into the next row). ``seq_lengths`` lists the
    document segments of each row so positions restart at every document and attention stays
    inside it (see ``PackedRowsCollator``)."""
    ids: list[int] = []
    segs: list[int] = []
    for doc in docs:
        pos = 0
        while pos < len(doc):
            take = min(seq_len - len(ids), len(doc) - pos)
            ids.extend(doc[pos : pos + take])
            segs.append(take)
            pos += take
            if len(ids) == seq_len:
                yield {"input_ids": ids, "seq_lengths": segs}
                ids, segs = [], []


# --------------------------------------------------------------------------- collators


@dataclass
class PackedRowsCollator:
    """Batch rows of packed sequences as ``[batch, max_len]`` with per-document positions.

    Each row holds several sequences (``seq_lengths``). Position ids restart at 0 at every sequence,
    so transformers' mask builder (``masking_utils.find_packed_sequence_indices``) makes attention
    block-diagonal — no token sees another sequence — for sdpa and eager attention alike, on CPU
    and GPU. The first token of each sequence gets label -100 (it is not predicted from the
    previous sequence). Rows shorter than the longest are right-padded with ``pad_token_id`` as a
    separate padding "sequence" with label -100. No ``attention_mask`` is returned (its presence
    would disable the packed-sequence detection). ``use_cache`` must be off in the model forward
    (both trainers set it), since the detection is skipped when a cache object exists.

    With ``cross_document_attention`` positions run through the whole row (plain concatenation,
    documents see their predecessors), as in GPT-style pretraining.
    """

    pad_token_id: int
    cross_document_attention: bool = False

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        input_ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
        position_ids = torch.zeros((len(examples), width), dtype=torch.long)
        for r, e in enumerate(examples):
            ids = list(e["input_ids"])
            lab = list(e.get("labels") or ids)
            segs = list(e.get("seq_lengths") or [len(ids)])
            n = len(ids)
            input_ids[r, :n] = torch.tensor(ids)
            labels[r, :n] = torch.tensor(lab)
            if self.cross_document_attention:
                position_ids[r, :n] = torch.arange(n)
                labels[r, 0] = IGNORE_INDEX
            else:
                start = 0
                for s in segs:
                    position_ids[r, start : start + s] = torch.arange(s)
                    labels[r, start] = IGNORE_INDEX
                    start += s
            if n < width:
                position_ids[r, n:] = torch.arange(width - n)
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


@dataclass
class PaddedCollator:
    """Unpacked batches: right-pad each example to the batch's longest, with an attention mask."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        input_ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
        for r, e in enumerate(examples):
            n = len(e["input_ids"])
            input_ids[r, :n] = torch.tensor(e["input_ids"])
            labels[r, :n] = torch.tensor(e.get("labels") or e["input_ids"])
            attention_mask[r, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def make_collator(model: Any, pad_token_id: int, *, packed: bool, cross_document_attention: bool = False) -> Any:
    """The collator for a model: packed rows (sdpa/eager), TRL's flattened padding-free batches
    (flash-attention kernels, which need ``cu_seq_lens``), or padded batches."""
    if not packed:
        return PaddedCollator(pad_token_id)
    impl = str(getattr(model.config, "_attn_implementation", "") or "")
    if "flash" in impl and not cross_document_attention:
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        return DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)
    return PackedRowsCollator(pad_token_id, cross_document_attention=cross_document_attention)


# --------------------------------------------------------------------------- chat formatting


def chat_messages(data: dict[str, Any], where: str) -> list[dict[str, str]]:
    """The conversation of an SFT row (``records.row_conversation``: ``messages``, or an
    instruction and a response as one user and one assistant turn). It must contain an assistant turn."""
    from in2x_cli.records import row_conversation

    msgs = row_conversation(data, where)
    if msgs is None:
        raise InputError("missing required field 'messages' (or 'instruction' + 'response')", where)
    if not any(m["role"] == "assistant" for m in msgs):
        raise InputError("'messages' has no assistant turn to train on", where)
    return msgs


def has_generation_markers(template: str | None) -> bool:
    import re

    return bool(template) and re.search(r"\{%-?\s*generation\s*-?%\}", template or "") is not None


@dataclass
class ChatFormatter:
    """Tokenizes conversations into ``input_ids`` + ``labels`` (non-assistant tokens → -100).

    ``mode`` is the resolved mask mode (``markers``, ``trl``, ``render``); ``template`` the template
    used for tokenization (the TRL training twin in ``trl`` mode); ``inference_template`` the
    tokenizer's own, which the exported model keeps.
    """

    tokenizer: Any
    mode: str
    template: str
    inference_template: str
    eot: str | None = None

    def tokenize(self, messages: list[dict[str, str]], where: str = "") -> dict[str, list[int]]:
        from jinja2 import TemplateError

        try:
            return self._tokenize(messages, where)
        except TemplateError as exc:  # a broken template, or its raise_exception() on this conversation
            raise UserError(f"the chat template cannot render this conversation ({type(exc).__name__}: {exc})", where or None) from None

    def _tokenize(self, messages: list[dict[str, str]], where: str) -> dict[str, list[int]]:
        if self.mode in ("markers", "trl"):
            enc = self.tokenizer.apply_chat_template(
                messages, chat_template=self.template, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
            )
            ids = list(enc["input_ids"])
            mask = list(enc["assistant_masks"])
        else:
            ids, mask = self._render_mask(messages, where)
        labels = [t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)]
        return {"input_ids": ids, "labels": labels}

    def _render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.template, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def _render_mask(self, messages: list[dict[str, str]], where: str) -> tuple[list[int], list[int]]:
        full = self._render(messages, False)
        spans: list[tuple[int, int]] = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            before = self._render(messages[:i], True) if i else ""
            through = self._render(messages[: i + 1], False)
            if not (through.startswith(before) and full.startswith(through)):
                raise UserError(
                    "the chat template is not prefix-preserving (rendering a conversation prefix changes earlier "
                    "text), so assistant tokens cannot be located; use a template with {% generation %} markers",
                    where or None,
                )
            start, end = len(before), len(through)
            if self.eot:  # the turn ends with the end-of-turn token; template text after it is context
                content_at = through.find(m["content"], start)
                cut = through.find(self.eot, content_at + len(m["content"]) if content_at != -1 else start)
                if cut != -1:
                    end = min(end, cut + len(self.eot))
            spans.append((start, end))
        enc = self.tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        mask = [1 if any(s <= a < e for s, e in spans) else 0 for a, _ in enc["offset_mapping"]]
        return ids, mask


def make_chat_formatter(tokenizer: Any, mask_mode: str = "auto") -> ChatFormatter:
    """Pick how assistant tokens are found (see the module docstring)."""
    if mask_mode not in ("auto", "markers", "trl", "render"):
        raise UserError(f"unknown --mask-mode {mask_mode!r} (expected auto, markers, trl or render)")
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        raise UserError("the tokenizer has no chat template; sft needs one to format 'messages'", getattr(tokenizer, "name_or_path", None) or None)
    _compile(template)  # a broken template is the model's fault, found here rather than blamed on a data row
    eot = tokenizer.eos_token
    if mask_mode in ("auto", "markers") and has_generation_markers(template):
        return ChatFormatter(tokenizer, "markers", template, template, eot)
    if mask_mode == "markers":
        raise UserError("--mask-mode markers: the chat template has no {% generation %} markers")
    if mask_mode in ("auto", "trl"):
        twin = _trl_training_template(tokenizer)
        if twin is not None:
            return ChatFormatter(tokenizer, "trl", twin, template, eot)
        if mask_mode == "trl":
            raise UserError("--mask-mode trl: TRL has no training template for this chat template")
    return ChatFormatter(tokenizer, "render", template, template, eot)


def _compile(template: str) -> None:
    """Compile a chat template the way transformers does (raises jinja2's TemplateSyntaxError)."""
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template
    except ImportError:  # pragma: no cover - a later transformers moved it: rendering will tell
        return
    _compile_jinja_template(template)


def _trl_training_template(tokenizer: Any) -> str | None:
    try:
        from trl.chat_template_utils import get_training_chat_template

        return get_training_chat_template(tokenizer)
    except (ValueError, NotImplementedError, KeyError):
        return None


# --------------------------------------------------------------------------- schedule: rounds, epochs, temperature


def temperature_quota(counts: dict[str, int], temperature: float, total: int | None = None) -> dict[str, int]:
    """Examples per language for one epoch under temperature sampling (Conneau & Lample 2019, XLM;
    Arivazhagan et al. 2019): ``p_l ∝ n_l^(1/T)``, quota_l = total · p_l rounded by largest remainder
    (ties → larger n_l, then name). T = 1 keeps natural proportions; T > 1 flattens them toward
    uniform (T → ∞), so a dominant language no longer fills the epoch. ``total`` defaults to Σ n_l.

    Example: counts {zh: 900, en: 100}, T = 2 → p ∝ (30, 10) → {zh: 750, en: 250}.
    """
    if temperature <= 0 or not math.isfinite(temperature):
        raise UserError(f"--language-temperature must be > 0, got {temperature}")
    from in2x_cli.core.apportion import apportion

    langs = [k for k, v in counts.items() if v > 0]
    if not langs:
        return {}
    n_total = sum(counts[k] for k in langs) if total is None else total
    scores = {k: counts[k] ** (1.0 / temperature) for k in langs}
    return apportion(n_total, scores, tie_key=lambda k: (-counts[k], k))


def temperature_sample(indices_by_lang: dict[str, list[int]], temperature: float, rng: random.Random) -> list[int]:
    """Draw one epoch under ``temperature_quota``: a language below its pool size is subsampled
    without replacement; above it, every example is repeated ⌊q/n⌋ times and the rest drawn without
    replacement. Returned in shuffled order."""
    counts = {k: len(v) for k, v in indices_by_lang.items()}
    quota = temperature_quota(counts, temperature)
    out: list[int] = []
    for lang in sorted(quota):
        pool = indices_by_lang[lang]
        q = quota[lang]
        reps, rest = divmod(q, len(pool))
        out.extend(pool * reps)
        out.extend(rng.sample(pool, rest))
    rng.shuffle(out)
    return out


@dataclass(frozen=True)
class EpochPlan:
    """The examples of each epoch, in training order."""

    epochs: list[list[int]]
    labels: list[str]  # what each epoch is, for logs ("epoch 1", "round 2")

    @property
    def sizes(self) -> list[int]:
        return [len(e) for e in self.epochs]


def plan_epochs(
    rounds: Sequence[int | None],
    langs: Sequence[str],
    *,
    epochs: int,
    use_rounds: bool,
    temperature: float,
    seed: int,
) -> EpochPlan:
    """Which examples each epoch trains on.

    - ``use_rounds``: rows carry ``round`` (from ``sample-difficulty --rounds``); the distinct round
      values in ascending order are the epochs (round r → epoch r: each epoch sees fresh samples).
    - otherwise: ``epochs`` passes over all rows.
    Inside each epoch, ``temperature`` re-balances languages (``temperature_sample``; T = 1 only
    shuffles). Epoch e uses ``Random(seed + e)``.
    """
    n = len(langs)
    if use_rounds:
        missing = [i for i, r in enumerate(rounds) if r is None]
        if missing:
            raise UserError(f"--rounds: {len(missing)} row(s) have no 'round' field (first: row {missing[0] + 1})")
        values = sorted({int(r) for r in rounds if r is not None})
        groups = [[i for i, r in enumerate(rounds) if r == v] for v in values]
        labels = [f"round {v}" for v in values]
    else:
        groups = [list(range(n)) for _ in range(epochs)]
        labels = [f"epoch {e + 1}" for e in range(epochs)]
    out = []
    for e, group in enumerate(groups):
        rng = random.Random(seed + e)
        by_lang: dict[str, list[int]] = {}
        for i in group:
            by_lang.setdefault(langs[i], []).append(i)
        if temperature == 1.0:
            order = list(group)
            rng.shuffle(order)
        else:
            order = temperature_sample(by_lang, temperature, rng)
        out.append(order)
    return EpochPlan(out, labels)


def language_counts(langs: Sequence[str], epoch: Sequence[int]) -> dict[str, int]:
    return dict(Counter(langs[i] for i in epoch))


def epoch_fraction(step: int, boundaries: Sequence[int]) -> float:
    """Epoch as a float from a global step, given the cumulative optimizer-step count at the end of
    each epoch (``boundaries``): 1.5 = half-way through the second epoch."""
    prev = 0
    for e, end in enumerate(boundaries):
        if step <= end:
            span = max(1, end - prev)
            return e + (step - prev) / span
        prev = end
    return float(len(boundaries))


# --------------------------------------------------------------------------- long context


def apply_context_extension(
    config: Any,
    *,
    seq_len: int,
    rope_theta: float | None = None,
    rope_scaling: str | None = None,
) -> dict[str, Any]:
    """Change a transformers config in place for long-context training; return what changed.

    - ``rope_theta`` (ABF, "adjusted base frequency": Xiong et al. 2023; Qwen2.5 raises it for
      32k+): ``config.rope_parameters["rope_theta"] = θ``.
    - ``rope_scaling`` = ``TYPE:FACTOR`` with TYPE in linear, dynamic, yarn, llama3 (position
      interpolation / NTK / YaRN): ``config.rope_parameters`` becomes ``{"rope_type": TYPE, "factor":
      FACTOR, "rope_theta": θ, "original_max_position_embeddings": <old max positions>}``.
    - ``max_position_embeddings`` = max(old, ``seq_len``, old × FACTOR).
    The model is built from the changed config, so the rotary tables are recomputed, and the
    exported ``config.json`` carries the change: inference engines apply the same RoPE.
    """
    changed: dict[str, Any] = {}
    params = dict(getattr(config, "rope_parameters", None) or {})
    old_max = int(getattr(config, "max_position_embeddings", 0) or 0)
    if "rope_theta" not in params and getattr(config, "rope_theta", None) is not None:
        params["rope_theta"] = config.rope_theta
    params.setdefault("rope_type", "default")
    new_max = max(old_max, seq_len)
    if rope_theta is not None:
        if rope_theta <= 0:
            raise UserError(f"--rope-theta must be > 0, got {rope_theta}")
        params["rope_theta"] = float(rope_theta)
        changed["rope_theta"] = float(rope_theta)
    if rope_scaling:
        kind, _, factor_text = rope_scaling.partition(":")
        if kind not in ("linear", "dynamic", "yarn", "llama3"):
            raise UserError(f"--rope-scaling type must be linear, dynamic, yarn or llama3, got {kind!r}")
        try:
            factor = float(factor_text)
        except ValueError:
            raise UserError(f"--rope-scaling must look like yarn:4, got {rope_scaling!r}") from None
        if factor < 1:
            raise UserError(f"--rope-scaling factor must be >= 1, got {factor}")
        params.update({"rope_type": kind, "factor": factor, "original_max_position_embeddings": old_max})
        if kind == "llama3":
            params.setdefault("low_freq_factor", 1.0)
            params.setdefault("high_freq_factor", 4.0)
        new_max = max(new_max, int(old_max * factor))
        changed["rope_scaling"] = {"rope_type": kind, "factor": factor, "original_max_position_embeddings": old_max}
    if changed:
        config.rope_parameters = params
    if new_max != old_max:
        config.max_position_embeddings = new_max
        changed["max_position_embeddings"] = {"from": old_max, "to": new_max}
    return changed


def read_rows(paths: Sequence[str | Path]) -> list[Any]:
    """All rows of several JSONL files (SFT data is small enough to plan epochs over)."""
    from in2x_cli.io import iter_jsonl

    rows = []
    for p in paths:
        rows.extend(iter_jsonl(str(p)))
    return rows
