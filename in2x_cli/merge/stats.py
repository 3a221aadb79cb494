"""Calibration statistics for data-aware merging: diagonal Fisher (``fisher``) and squared
input-activation norms of linear layers (``obim``).

Unlike the merge itself, these passes load the whole model (forward, and backward for Fisher),
so they need the memory to run the model: about 1× the float32 weights for activations and 3×
(weights, gradients, accumulators) for Fisher. Run them once per model, on a GPU for large
models, and merge later from the saved statistics in bounded memory.

Calibration JSONL rows (one example each; the first ``max_examples``, truncated to
``max_length`` tokens):
  * ``{"text": ...}``                          every token is a target;
  * ``{"messages": [...]}``                    chat template; targets are the tokens of the final
                                               assistant turn (all tokens if it has none);
  * ``{"instruction"/"prompt": ..., "response": ...}``  as a user/assistant exchange.

Fisher (Matena & Raffel 2022, https://arxiv.org/abs/2111.09832): the empirical diagonal Fisher
F = (1/N) Σ_n (∇_θ ℓ_n)², with ℓ_n the mean log-likelihood of example n's target tokens under
the model being merged — one backward pass per example (per-example gradients are what make it a
Fisher; the squared batch gradient is not). The mean over tokens (not the sum) keeps F on the
same scale for calibration sets of different lengths, since fisher merging compares F across
models.

Activations (OBIM, https://arxiv.org/abs/2502.12217): for every ``nn.Linear`` whose weight is
stored in the checkpoint, ‖X_j‖² = Σ_tokens x_j² of its input over all calibration tokens
(prompt tokens included), a vector of length ``in_features``. 2·‖X_j‖² is the diagonal of the
layer's Hessian 2XXᵀ, which OBIM's saliency uses.

Statistics are saved like a checkpoint (sharded safetensors, same tensor names) plus
``in2x_stats.json`` (kind, model, examples, tokens) and ``in2x_provenance.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from in2x_cli import console
from in2x_cli.errors import InputError, UserError

if TYPE_CHECKING:
    import torch

StatsKind = Literal["fisher", "activations"]
STATS_FILE = "in2x_stats.json"


@dataclass(frozen=True)
class StatsConfig:
    kind: StatsKind
    max_examples: int = 128
    max_length: int = 512
    device: str = "auto"
    dtype: str = "float32"
    trust_remote_code: bool = False


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    targets: list[bool]  # which positions are predicted (label ≠ −100)
    where: str


def row_messages(data: dict[str, Any], where: str) -> list[dict[str, str]] | None:
    """The conversation of a calibration row (``records.row_conversation``: ``messages``, or an
    instruction string with a ``response`` string), or None for a text row."""
    from in2x_cli.records import row_conversation, row_prompt

    messages = row_conversation(data, where, responses=("response",), lenient=True, with_input=False)
    if messages is None and row_prompt(data) is not None:
        raise InputError("calibration row with an instruction needs a 'response' string", where)
    return messages


def _ids(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> list[int]:
    enc = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt, return_dict=True)
    return list(enc["input_ids"])


def load_examples(
    path: str, tokenizer: Any, *, max_examples: int, max_length: int, needs_targets: bool = True, skipped: list[str] | None = None
) -> list[Example]:
    """Tokenize calibration rows (see the module docstring for the accepted shapes). Rows are cut
    to ``max_length`` tokens. A row whose response starts beyond that keeps no target token: it is
    kept for forward-only statistics (``needs_targets=False``: activations), else skipped and its
    place appended to ``skipped`` (Fisher needs predicted tokens); never an abort."""
    from in2x_cli.io.jsonl import iter_jsonl

    examples: list[Example] = []
    for line in iter_jsonl(path):
        if len(examples) >= max_examples:
            break
        data, where = line.data, line.where
        messages = row_messages(data, where)
        if messages is not None:
            if getattr(tokenizer, "chat_template", None) is None:
                raise InputError("chat-shaped calibration row but the model's tokenizer has no chat template (use {'text': ...})", where)
            ids = _ids(tokenizer, messages, generation_prompt=False)
            start = 0
            if messages[-1]["role"] == "assistant":
                prefix = _ids(tokenizer, messages[:-1], generation_prompt=True)
                start = len(prefix) if ids[: len(prefix)] == prefix else 0
        elif isinstance(data.get("text", data.get("content")), str):
            ids = list(tokenizer(data.get("text", data.get("content")), add_special_tokens=True)["input_ids"])
            start = 0
        else:
            raise InputError("calibration row needs 'text', 'messages', or 'instruction' + 'response'", where)
        ids = ids[:max_length]
        targets = [i >= max(start, 1) for i in range(len(ids))]  # position 0 is never predicted
        if not any(targets) and needs_targets:
            if skipped is None:
                raise InputError(f"no target tokens left within --max-length {max_length}", where)
            skipped.append(where)
            continue
        examples.append(Example(ids, targets, where))
    return examples


def _device(name: str) -> str:
    from in2x_cli.devices import pick_device

    return pick_device(name)


def load_model(model_dir: str, cfg: StatsConfig) -> tuple[Any, str]:
    from in2x_cli.io.checkpoint import load_causal_lm

    device = _device(cfg.device)
    return load_causal_lm(model_dir, dtype=cfg.dtype, device=device, trust_remote_code=cfg.trust_remote_code), device


def compute_statistics(
    model: Any,
    examples: list[Example],
    kind: StatsKind,
    *,
    names: set[str],
    device: str,
    on_example: Callable[[], None] | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """Fisher diagonal or activation norms, keyed by checkpoint tensor name; returns (stats, tokens)."""
    import torch

    acc: dict[str, torch.Tensor] = {}
    hooks = []
    if kind == "activations":
        model.eval()
        current: dict[str, torch.Tensor] = {}

        def make_hook(weight_name: str) -> Callable[..., None]:
            def hook(module: Any, args: tuple[Any, ...]) -> None:
                x = args[0].detach().float()
                sq = (x.square() * current["mask"].unsqueeze(-1)).reshape(-1, x.shape[-1]).sum(0)
                if weight_name in acc:
                    acc[weight_name] += sq
                else:
                    acc[weight_name] = sq

            return hook

        for mod_name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and f"{mod_name}.weight" in names:
                hooks.append(mod.register_forward_pre_hook(make_hook(f"{mod_name}.weight")))
        if not hooks:
            raise UserError("the model has no linear layers whose weights are in the checkpoint: nothing for OBIM to calibrate")
    else:
        model.train(False)  # no dropout: the Fisher of the deployed model
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        unknown = [n for n in params if n not in names]
        if unknown:
            raise UserError(
                f"parameter {unknown[0]!r} is not a tensor of the checkpoint (this architecture renames or fuses "
                "weights on load), so Fisher statistics cannot be keyed by checkpoint names"
            )
    tokens = 0
    try:
        for ex in examples:
            ids = torch.tensor([ex.input_ids], device=device)
            tokens += len(ex.input_ids)
            if kind == "activations":
                current["mask"] = torch.ones(ids.shape, device=device)
                with torch.no_grad():
                    model(input_ids=ids)
            else:
                labels = ids.clone()
                labels[0, ~torch.tensor(ex.targets, device=device)] = -100
                model.zero_grad(set_to_none=True)
                out = model(input_ids=ids, labels=labels)
                out.loss.backward()  # ∇ of the mean target-token NLL = −∇ℓ_n; squared alike
                for n, p in params.items():
                    if p.grad is None:
                        continue
                    g2 = p.grad.detach().float().square()
                    if n in acc:
                        acc[n] += g2
                    else:
                        acc[n] = g2
            if on_example:
                on_example()
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
    if kind == "fisher":
        for n, p in params.items():  # parameters no example reached: zero Fisher (floored at merge)
            acc.setdefault(n, torch.zeros(p.shape, dtype=torch.float32, device=device))
            acc[n] /= len(examples)
    return {n: t.cpu() for n, t in acc.items()}, tokens


def write_statistics(
    out_dir: Path, stats: dict[str, torch.Tensor], meta: dict[str, Any], *, shard_bytes: int, order: list[str]
) -> list[str]:
    from in2x_cli.io.checkpoint import ShardedWriter
    from in2x_cli.io.jsonl import write_json

    writer = ShardedWriter(out_dir, max_shard_bytes=shard_bytes, metadata={"in2x_stats": str(meta["in2x_stats"])})
    for name in [n for n in order if n in stats] + sorted(set(stats) - set(order)):
        writer.add(name, stats[name])
    files = writer.close()
    write_json(out_dir / STATS_FILE, meta)
    return files


def read_stats_meta(stats_dir: str | Path) -> dict[str, Any] | None:
    from in2x_cli.io.jsonl import read_json

    f = Path(stats_dir) / STATS_FILE
    return read_json(f) if f.exists() else None


def calibrate(
    model_dir: str,
    calibration: str,
    out_dir: Path,
    cfg: StatsConfig,
    *,
    shard_bytes: int = 2 * 1000**3,
    progress: Callable[[int], Callable[[], None]] | None = None,
) -> dict[str, Any]:
    """Read the calibration rows, load the model, compute ``cfg.kind`` statistics, save them in ``out_dir``."""
    from in2x_cli.io.checkpoint import CheckpointReader, load_tokenizer

    with CheckpointReader(model_dir) as reader:
        order = reader.names()
    # calibration needs the tokenizer of the model directory
    tokenizer = load_tokenizer(model_dir, trust_remote_code=cfg.trust_remote_code, what="tokenizer")
    # the calibration rows are read and checked before the (whole) model is loaded
    skipped: list[str] = []
    examples = load_examples(calibration, tokenizer, max_examples=cfg.max_examples, max_length=cfg.max_length,
                             needs_targets=cfg.kind == "fisher", skipped=skipped)
    if skipped:
        console.warn(f"{cfg.kind} statistics: skipped {len(skipped)} calibration row(s) whose response starts beyond --max-length "
                     f"{cfg.max_length} (first: {skipped[0]}); raise --max-length to use them")
    if not examples:
        raise InputError(f"no calibration row has a target token within --max-length {cfg.max_length}", calibration)
    model, device = load_model(model_dir, cfg)
    step = progress(len(examples)) if progress else None
    stats, tokens = compute_statistics(model, examples, cfg.kind, names=set(order), device=device, on_example=step)
    del model
    meta = {"in2x_stats": cfg.kind, "model": str(model_dir), "calibration": str(calibration), "examples": len(examples), "tokens": tokens,
            "skipped_examples": len(skipped)}
    files = write_statistics(out_dir, stats, meta, shard_bytes=shard_bytes, order=order)
    return {**meta, "files": files, "tensors": len(stats)}
