"""GRPO reward functions: a plain registry, selected by name or dotted path, weighted.

A reward function has TRL's shape, with text instead of chat messages:

    fn(prompts: list[str], completions: list[str], **fields: list[Any]) -> list[float | None]

``prompts[i]`` is the last user message of row i's prompt, ``completions[i]`` the sampled reply,
and every other field of the input row arrives as a keyword list aligned with them (``answer``,
``ref``, ``src``, ``tgt_lang``, ``lang``, …; ``None`` where a row lacks the field). A function
returns one float per completion, or ``None`` where it does not apply to that row (a math reward
on a translation row): such entries are left out of that reward's statistics and of the weighted
sum (as TRL does). ``generative_judge`` likewise skips rows that carry a reference (``answer``
or ``ref``: the paper scores those with rules) unless the row sets ``"judge": true``. Every built-in returns finite values for any completion (empty, very long,
wrong language, adversarial).

Applicability contract (every reward, built-in or new, follows it):

1. A reward scores only the rows it fits and returns ``None`` for the others ("not applicable"),
   deciding from the row's own fields: ``math_exact`` needs ``answer``, the translation rewards
   ``ref``, ``format`` a row that asks for the tags (``format_tags``, or the tags written in its
   prompt), the judge an open-ended row (no ``answer``/``ref`` unless ``"judge": true``).
   ``None`` is never a failure score: a wrong answer is 0.0, a row the reward cannot judge is None.
2. A row no reward applies to gets no advantage (NaN total → A = 0): it trains nothing.
3. A reward that only ever returns exactly 0.0 or 1.0 (pass/fail on a verifiable check) is listed
   in ``VERIFIABLE_REWARDS`` (or sets a ``verifiable = True`` attribute on its function/class);
   ``in2x grpo --advantage auto`` uses TIC-GRPO's length-corrected advantage only where a group's
   rewards are pass/fail (0 or one positive value), and warns when ``--advantage length-corrected`` meets any other reward.

Selecting rewards: ``--reward math_exact:1.0 --reward format:0.2``. A name is a key of
``REWARDS`` or a dotted path ``package.module:function`` (``package.module.function`` also
works). If the target is a class, it is instantiated with the run's ``RewardContext`` (how
configured rewards such as the generative judge get their options); its instances must be
callables of the shape above. An optional ``metrics() -> dict[str, float]`` method on a reward
object is polled after each call and logged under ``rewards/<name>/<key>``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from in2x_cli.errors import UserError
from in2x_cli.plugins import import_dotted, split_dotted

RewardFn = Callable[..., list]

# name -> "module:attribute" (imported lazily: sacrebleu and the judge's backend are heavy)
REWARDS: dict[str, str] = {
    "math_exact": "in2x_cli.rewards.rule:math_exact",
    "format": "in2x_cli.rewards.rule:FormatReward",
    "language_match": "in2x_cli.rewards.rule:language_match",
    "translation_chrf": "in2x_cli.rewards.translation:translation_chrf",
    "translation_bleu": "in2x_cli.rewards.translation:translation_bleu",
    "translation_comet": "in2x_cli.rewards.translation:TranslationComet",
    "generative_judge": "in2x_cli.rewards.judge:GenerativeJudge",
    "repetition": "in2x_cli.rewards.repetition:repetition",
    "terminology": "in2x_cli.rewards.terminology:TerminologyReward",
    "round_trip": "in2x_cli.rewards.round_trip:RoundTrip",
    "gemba": "in2x_cli.rewards.gemba:GembaReward",
    "fusion_chrf": "in2x_cli.rewards.fusion:fusion_chrf",
    "fusion_gain": "in2x_cli.rewards.fusion:fusion_gain",
}

# Pass/fail rewards (0.0 or 1.0 only): see the applicability contract in the module docstring.
VERIFIABLE_REWARDS: frozenset[str] = frozenset({"math_exact", "format", "language_match"})

# The In2x paper does not publish its judge principles; these are ours, for creative and open tasks.
DEFAULT_PRINCIPLES: tuple[str, ...] = (
    "The response does what the user asked, completely, without ignoring any part of the request.",
    "The response is factually accurate and does not invent facts, quotes or sources.",
    "The response is written in the language the user wrote in (or the language the user asked for).",
    "The response is well organised, fluent and free of repetition.",
    "The response is safe and respectful and does not include unrelated or padded content.",
)


@dataclass(frozen=True)
class RewardContext:
    """Options for rewards that need configuration (classes in the registry receive this)."""

    format_tags: tuple[str, ...] = ("think",)
    comet_model: str | None = None
    judge_model: str | None = None
    judge_backend: str = "transformers"
    judge_gpu_memory_utilization: float = 0.3  # a vLLM judge's share of the GPU (ours; see backends/vllm.py)
    principles: tuple[str, ...] = DEFAULT_PRINCIPLES
    judge_max_tokens: int = 512
    judge_failure_score: float = 0.0
    trust_remote_code: bool = False
    seed: int = 0
    glossary: str | None = None  # terminology: JSONL of {"src", "tgt"} terms
    round_trip_model: str | None = None  # round_trip: the back-translation model
    round_trip_backend: str = "transformers"
    round_trip_max_tokens: int = 512


@dataclass(frozen=True)
class RewardSpec:
    """One ``--reward NAME[:WEIGHT]`` option."""

    name: str
    weight: float = 1.0


@dataclass
class Reward:
    """A resolved reward: its display name, weight and the callable."""

    name: str
    weight: float
    fn: RewardFn = field(repr=False)

    def metrics(self) -> dict[str, float]:
        hook = getattr(self.fn, "metrics", None)
        return dict(hook()) if callable(hook) else {}


def parse_reward_spec(text: str) -> RewardSpec:
    """``math_exact`` → (math_exact, 1.0); ``format:0.2``; ``pkg.mod:fn:0.5``; ``pkg.mod:fn``."""
    raw = text.strip()
    if not raw:
        raise UserError("empty --reward (expected NAME[:WEIGHT], e.g. math_exact:1.0)")
    name, weight = raw, 1.0
    head, sep, tail = raw.rpartition(":")
    if sep:
        try:
            weight = float(tail)
        except ValueError:
            pass  # "pkg.mod:fn": the colon belongs to the dotted path
        else:
            name = head
    if not name:
        raise UserError(f"invalid --reward {text!r} (expected NAME[:WEIGHT], e.g. math_exact:1.0)")
    if weight != weight or weight in (float("inf"), float("-inf")):
        raise UserError(f"invalid reward weight in {text!r}")
    return RewardSpec(name, weight)


def resolve_reward(spec: RewardSpec, context: RewardContext) -> Reward:
    """Import and (for classes) instantiate one reward."""
    target = REWARDS.get(spec.name, spec.name)
    if split_dotted(target, allow_dot=True) is None:
        raise UserError(f"unknown reward {spec.name!r} (built-ins: {', '.join(REWARDS)}; or a dotted path module:function)")
    obj = import_dotted(target, what="reward", allow_dot=True)
    if inspect.isclass(obj):
        obj = obj(context)
    if not callable(obj):
        raise UserError(f"reward {spec.name!r} is not callable")
    display = spec.name if spec.name in REWARDS else spec.name.replace(":", ".").rsplit(".", 1)[-1]
    return Reward(display, spec.weight, obj)


def resolve_rewards(specs: Sequence[RewardSpec], context: RewardContext) -> list[Reward]:
    if not specs:
        raise UserError("no reward selected: pass --reward NAME[:WEIGHT] at least once (e.g. --reward math_exact)")
    rewards = [resolve_reward(s, context) for s in specs]
    names = [r.name for r in rewards]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"reward {dupes[0]!r} selected twice; give it one weight")
    return rewards


def is_verifiable(reward: Reward | str) -> bool:
    """True for a pass/fail reward (contract item 3): a ``VERIFIABLE_REWARDS`` name or a callable
    with ``verifiable = True``."""
    if isinstance(reward, str):
        return reward in VERIFIABLE_REWARDS
    return reward.name in VERIFIABLE_REWARDS or bool(getattr(reward.fn, "verifiable", False))


def column(values: Sequence[Any] | None, n: int) -> list[Any]:
    """A row field as a list of n values (``None`` where the field never reached the reward)."""
    return list(values) if values is not None else [None] * n


def answer_text(completion: str) -> str:
    """The part of a completion a task reward judges: without a leading ``<think>…</think>``
    block (reasoning models) and surrounding whitespace."""
    text = completion or ""
    start = text.find("<think>")
    end = text.find("</think>")
    if start != -1 and end > start and not text[:start].strip():
        text = text[end + len("</think>") :]
    return text.strip()


__all__ = [
    "DEFAULT_PRINCIPLES",
    "REWARDS",
    "Reward",
    "RewardContext",
    "RewardFn",
    "RewardSpec",
    "VERIFIABLE_REWARDS",
    "answer_text",
    "column",
    "is_verifiable",
    "parse_reward_spec",
    "resolve_reward",
    "resolve_rewards",
]
