"""Rewards for ``fusion`` rows (src + candidates + ref; ``train.fusion_rows``).

``fusion_chrf``  sentence chrF(fused output, ref) / 100, in [0, 1].
``fusion_gain``  [chrF(fused, ref) − max_i chrF(candidate_i, ref)] / 100, in [−1, 1]: positive only
                 when the fusion beats the best single candidate, the point of fusing (ours; the
                 WMT25 winner's fuser reward is not published).

Both return ``None`` (not applicable) for rows that are not fusion rows (no ``candidates`` list)
or have no reference, so they combine with other rewards on mixed data. The text scored is the
completion without a leading ``<think>…</think>`` block, as for the translation rewards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from in2x_cli.rewards import answer_text
from in2x_cli.rewards import column as _column
from in2x_cli.rewards.translation import _chrf, _finite01


def _applicable(cands: Any, ref: Any) -> bool:
    return isinstance(ref, str) and isinstance(cands, list) and bool(cands) and all(isinstance(c, str) for c in cands)


def fusion_chrf(prompts: Sequence[str], completions: Sequence[str], ref: Sequence[Any] | None = None,
                candidates: Sequence[Any] | None = None, **_: Any) -> list[float | None]:
    """chrF(fused, ref) / 100 on fusion rows; None elsewhere."""
    metric = _chrf()
    n = len(completions)
    out: list[float | None] = []
    for completion, reference, cands in zip(completions, _column(ref, n), _column(candidates, n), strict=True):
        if not _applicable(cands, reference):
            out.append(None)
            continue
        out.append(_finite01(metric.sentence_score(answer_text(completion or ""), [reference]).score))
    return out


def fusion_gain(prompts: Sequence[str], completions: Sequence[str], ref: Sequence[Any] | None = None,
                candidates: Sequence[Any] | None = None, **_: Any) -> list[float | None]:
    """[chrF(fused, ref) − max over candidates of chrF(candidate, ref)] / 100 on fusion rows; None elsewhere."""
    metric = _chrf()
    n = len(completions)
    best_cache: dict[tuple[str, tuple[str, ...]], float] = {}  # the G rollouts of a prompt share it
    out: list[float | None] = []
    for completion, reference, cands in zip(completions, _column(ref, n), _column(candidates, n), strict=True):
        if not _applicable(cands, reference):
            out.append(None)
            continue
        key = (reference, tuple(cands))
        if key not in best_cache:
            best_cache[key] = max(_finite01(metric.sentence_score(c, [reference]).score) for c in cands)
        out.append(_finite01(metric.sentence_score(answer_text(completion or ""), [reference]).score) - best_cache[key])
    return out
