"""Pure pieces of instruction synthesis: near-duplicate rejection, Magpie pre-query templates,
critic / ReReading verdicts (read with ``core/judging.py``), the language schedule, and the
Self-Instruct filters.

Papers:
  Self-Instruct (Wang et al. 2023, https://arxiv.org/abs/2212.10560): new tasks from few-shot seed
  prompts; a task is kept only if its ROUGE-L with every existing task is below 0.7, plus length and
  keyword heuristics.
  Magpie (Xu et al. 2024, https://arxiv.org/abs/2406.08464): an aligned chat model given only the
  "pre-query template" (the chat template up to where the user's text begins) writes a user query.
  In2x (arXiv 2508.14472): rule-laden generation prompts, a critic that answers and flags
  contradiction / hallucination / invalid results, ReReading self-review, 1:1:1 zh/en/ja balance.

Nothing here touches files, backends or the terminal.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from in2x_cli.core.judging import VerdictError, one_verdict
from in2x_cli.errors import UserError
from in2x_cli.langs import detect_lang

# --------------------------------------------------------------------------- ROUGE-L


def _is_cjk_char(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x3040 <= cp <= 0x30FF  # hiragana, katakana
        or 0x3400 <= cp <= 0x4DBF  # CJK extension A
        or 0x4E00 <= cp <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= cp <= 0xFAFF  # compatibility ideographs
        or 0xFF66 <= cp <= 0xFF9D  # half-width katakana
        or 0xAC00 <= cp <= 0xD7AF  # hangul syllables
        or 0x31F0 <= cp <= 0x31FF  # katakana phonetic extensions
    )


def rouge_tokens(text: str) -> list[str]:
    """Tokens for ROUGE-L: one token per CJK character, one per Latin word or number.

    English follows the ``rouge_score`` tokenizer that Self-Instruct used (lower-case, runs of
    letters and digits, everything else is a separator, no stemming). Japanese and Chinese have no
    spaces, and ``rouge_score`` would drop them entirely, so each kana/han/hangul character is a
    token (character-level ROUGE-L, the usual choice for CJK). The rule is applied per character,
    not per language, so mixed text ("Pythonで関数を書く") is handled too. NFKC first, so full-width
    Latin letters and digits match their ASCII forms.
    """
    tokens: list[str] = []
    word: list[str] = []
    for ch in unicodedata.normalize("NFKC", text).lower():
        if _is_cjk_char(ch):
            if word:
                tokens.append("".join(word))
                word = []
            tokens.append(ch)
        elif ch.isalnum():
            word.append(ch)
        elif word:
            tokens.append("".join(word))
            word = []
    if word:
        tokens.append("".join(word))
    return tokens


def _match_masks(tokens: Sequence[str]) -> dict[str, int]:
    masks: dict[str, int] = {}
    for i, t in enumerate(tokens):
        masks[t] = masks.get(t, 0) | (1 << i)
    return masks


def _lcs_with_masks(masks: dict[str, int], length: int, other: Sequence[str]) -> int:
    # Bit-parallel LCS (Allison & Dix 1986; Hyyrö 2004): V has a 0 bit for every row of the DP
    # table's last column where the LCS grew; one add/or/and per token of ``other``.
    full = (1 << length) - 1
    v = full
    for t in other:
        u = v & masks.get(t, 0)
        v = ((v + u) | (v - u)) & full
    return length - v.bit_count()


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences."""
    if not a or not b:
        return 0
    return _lcs_with_masks(_match_masks(a), len(a), b)


def rouge_l(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 between token sequences: P = LCS/|a|, R = LCS/|b|, F = 2PR/(P+R).

    This is ``rouge_score``'s ``rougeL`` fmeasure (β = 1), the score Self-Instruct thresholds at
    0.7. Symmetric in a and b. 0.0 when either side is empty.
    """
    if not a or not b:
        return 0.0
    lcs = lcs_length(a, b)
    if lcs == 0:
        return 0.0
    return 2.0 * lcs / (len(a) + len(b))  # = 2PR/(P+R) with P = lcs/|a|, R = lcs/|b|


@dataclass(frozen=True)
class Match:
    """The most similar earlier text: its key and the similarity score."""

    key: str
    score: float


class RougeIndex:
    """Texts seen so far; ``nearest`` returns the one with the highest ROUGE-L F1.

    Pruning: F1 ≤ 2·min(|a|,|b|)/(|a|+|b|) (LCS is at most the shorter length), so entries whose
    bound cannot beat the best score so far are skipped without computing the LCS.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[str, int, dict[str, int]]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: str, text: str) -> None:
        tokens = rouge_tokens(text)
        if tokens:
            self._entries.append((key, len(tokens), _match_masks(tokens)))

    def nearest(self, text: str) -> Match | None:
        query = rouge_tokens(text)
        if not query:
            return None
        lq = len(query)
        best: Match | None = None
        for key, length, masks in self._entries:
            bound = 2.0 * min(length, lq) / (length + lq)
            if best is not None and bound <= best.score:
                continue
            score = 2.0 * _lcs_with_masks(masks, length, query) / (length + lq)
            if best is None or score > best.score:
                best = Match(key, score)
        return best


class EmbeddingIndex:
    """Cosine-similarity nearest neighbour over embeddings from ``embed(texts) -> (n, d) array``.

    ``prefetch(texts)`` embeds many texts in one call (a block of candidates); ``add`` and
    ``nearest`` then use those vectors instead of calling the embedder once per text.
    """

    def __init__(self, embed: Callable[[Sequence[str]], Any]) -> None:
        self._embed = embed
        self._keys: list[str] = []
        self._vectors: list[Any] = []
        self._matrix: Any = None
        self._cache: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def prefetch(self, texts: Sequence[str]) -> None:
        import numpy as np

        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if not todo:
            return
        vecs = np.asarray(self._embed(todo), dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(todo):
            raise UserError(
                f"the embedder returned shape {vecs.shape} for {len(todo)} texts (expected ({len(todo)}, dim))"
            )
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = np.where(norms > 0, vecs / np.maximum(norms, 1e-12), vecs)
        for text, vec in zip(todo, vecs, strict=True):
            self._cache[text] = vec

    def _vec(self, text: str) -> Any:
        if text not in self._cache:
            self.prefetch([text])
        return self._cache[text]

    def add(self, key: str, text: str) -> None:
        self._keys.append(key)
        self._vectors.append(self._vec(text))
        self._matrix = None

    def nearest(self, text: str) -> Match | None:
        import numpy as np

        if not self._keys:
            return None
        if self._matrix is None:
            self._matrix = np.stack(self._vectors)
        sims = self._matrix @ self._vec(text)
        i = int(np.argmax(sims))
        return Match(self._keys[i], float(sims[i]))

    def clear_cache(self) -> None:
        self._cache.clear()


# --------------------------------------------------------------------------- languages


def weighted_schedule(weights: dict[str, Fraction | int]) -> Iterator[str]:
    """An endless sequence of keys in proportion to their weights (smooth weighted round-robin).

    Each step adds every weight to its key's credit, emits the key with the most credit (ties: the
    first listed) and takes Σw from it. Every prefix is within one item per key of the exact
    ratio, so a stream cut anywhere (or resumed) keeps the ratio. 1:1:1 → a b c a b c …;
    2:1 → a b a a b a ….
    """
    ws = {k: Fraction(v) for k, v in weights.items() if v > 0}
    if not ws:
        raise ValueError("no positive weight")
    total = sum(ws.values(), Fraction(0))
    credit = {k: Fraction(0) for k in ws}
    order = list(ws)
    while True:
        for k in order:
            credit[k] += ws[k]
        pick = max(order, key=lambda k: (credit[k], -order.index(k)))
        credit[pick] -= total
        yield pick


_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_URL = re.compile(r"https?://\S+")
_LATEX_CMD = re.compile(r"\\[A-Za-z]+")


def prose_for_detection(text: str) -> str:
    """The prose of a response: fenced and inline code, URLs and LaTeX command names removed, so
    a Japanese answer that contains Python code is still detected as Japanese."""
    text = _CODE_BLOCK.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    text = _URL.sub(" ", text)
    return _LATEX_CMD.sub(" ", text)


def language_mismatch(text: str, expected: str, *, allow_undetermined: bool = False) -> str | None:
    """The detected language when ``text`` is not in ``expected``, else None.

    Uses ``in2x_cli.langs.detect_lang`` (Unicode script ratios) on ``prose_for_detection(text)``.
    ``allow_undetermined`` accepts text with no letters at all ("408", "x = 3"): right for an
    answer, wrong for an instruction.
    """
    detected = detect_lang(prose_for_detection(text))
    if detected == expected or (allow_undetermined and detected == "und"):
        return None
    return detected


# --------------------------------------------------------------------------- Magpie

_SENTINEL = "\ue000IN2X_USER_QUERY\ue001"


@dataclass(frozen=True)
class PreQuery:
    """Magpie's pre-query template: ``prefix`` is the chat template rendered up to where the user's
    text begins (e.g. ``<|im_start|>user\\n``); ``end`` is what closes the user turn
    (``<|im_end|>``), used as a stop string and to cut the generated query."""

    prefix: str
    end: str


def pre_query_template(render: Callable[[list[dict[str, str]]], str], system: str | None = None) -> PreQuery:
    """Derive the pre-query template from the model's own chat template.

    ``render(messages)`` applies the chat template without a generation prompt. We render a
    conversation whose user message is a sentinel string and cut at the sentinel: what precedes
    it is the prefix (any system turn, or a default system prompt the template inserts, included),
    what follows it up to the first newline-free marker is the end of the user turn.
    """
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": _SENTINEL}
    ]
    rendered = render(messages)
    if rendered.count(_SENTINEL) != 1:
        raise UserError(
            "cannot derive a Magpie pre-query template: the chat template does not place the user message verbatim"
        )
    prefix, _, after = rendered.partition(_SENTINEL)
    end = after.strip().split("\n", 1)[0].strip() if after.strip() else ""
    return PreQuery(prefix=prefix, end=end)


def cut_user_turn(text: str, end: str) -> str:
    """The generated user query: everything before the end-of-turn marker, stripped."""
    if end and end in text:
        text = text.split(end, 1)[0]
    return text.strip()


# --------------------------------------------------------------------------- generated instructions

_TASK_PREFIX = re.compile(
    r"^\s*(?:\*\*)?(?:new\s+task|task|instruction|question|タスク|課題|指示|質問|任务|指令|问题)\s*\d*\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*",
    re.I,
)
_NEXT_TASK = re.compile(r"\n\s*(?:task|タスク|任务)\s*\d+\s*[:：]", re.I)
_QUOTES = [('"', '"'), ("“", "”"), ("「", "」"), ("『", "』"), ("'", "'")]


def clean_instruction(text: str) -> str:
    """Strip what a model wraps around a generated task: a "Task 9:" label, a following
    "Task 10:", and quotes around the whole text."""
    text = text.strip()
    m = _NEXT_TASK.search(text)
    if m:
        text = text[: m.start()]
    text = _TASK_PREFIX.sub("", text, count=1).strip()
    for left, right in _QUOTES:
        inner = text[1:-1]
        if (
            len(text) >= 2
            and text[0] == left
            and text[-1] == right
            and left not in inner
            and right not in inner
        ):
            text = inner.strip()
            break
    return text


# Self-Instruct (bootstrap_instructions.py): tasks a text-only model cannot do, by keyword.
MODALITY_KEYWORDS = {
    "latin": (
        "image",
        "images",
        "graph",
        "graphs",
        "picture",
        "pictures",
        "file",
        "files",
        "map",
        "maps",
        "draw",
        "plot",
        "go to",
        "video",
        "audio",
        "music",
        "flowchart",
        "diagram",
    ),
    "cjk": (
        "画像",
        "写真",
        "グラフ",
        "動画",
        "音声",
        "音楽",
        "地図",
        "ファイル",
        "図を描",
        "图片",
        "图像",
        "照片",
        "图表",
        "视频",
        "音频",
        "音乐",
        "地图",
        "文件",
        "流程图",
        "画图",
    ),
}
MIN_TOKENS = 4  # Self-Instruct drops tasks of <= 3 words
MAX_WORDS = 150  # Self-Instruct drops tasks of > 150 words; a CJK character counts as half a word


def self_instruct_filter(text: str) -> tuple[str, str] | None:
    """Self-Instruct's heuristic filters; returns (reason, detail) for a rejected task, else None.

    - ``too_short``: fewer than 4 ROUGE tokens (Latin words + CJK characters);
    - ``too_long``: more than 150 words, counting a CJK character as half a word;
    - ``unsupported_modality``: asks for images, files, audio, plots … (keyword list above, whole
      words for Latin script, substrings for CJK);
    - ``write_a_program``: starts with "Write a program" (Self-Instruct found these ambiguous:
      write the program or run it?);
    - ``starts_with_punctuation``.
    """
    tokens = rouge_tokens(text)
    if len(tokens) < MIN_TOKENS:
        return "too_short", f"{len(tokens)} tokens"
    cjk = sum(1 for t in tokens if len(t) == 1 and _is_cjk_char(t))
    words = (len(tokens) - cjk) + cjk / 2
    if words > MAX_WORDS:
        return "too_long", f"{words:g} words"
    low = text.lower()
    for kw in MODALITY_KEYWORDS["latin"]:
        if re.search(rf"\b{re.escape(kw)}\b", low):
            return "unsupported_modality", kw
    for kw in MODALITY_KEYWORDS["cjk"]:
        if kw in text:
            return "unsupported_modality", kw
    if low.startswith("write a program"):
        return "write_a_program", text[:40]
    first = text.lstrip()[:1]
    if first and unicodedata.category(first).startswith("P"):
        return "starts_with_punctuation", first
    return None


# A generated query that already carries its answer (Magpie and Self-Instruct models often write the
# question and go on to answer it): an answer marker at the start of a line or right after a sentence
# end, followed by content. Markers in en/zh/ja; "Answer with yes or no" has no colon and passes.
_ANSWER_MARKERS = (
    r"final answer|answer|solution|response|assistant",
    r"答案|答|解答|回答|解|答え|正解|解説",
)
_SELF_ANSWERED = re.compile(
    rf"(?:^|\n|(?<=[?？。.!！]))\s*(?:\*\*|#+\s*)?(?i:{_ANSWER_MARKERS[0]}|{_ANSWER_MARKERS[1]})\s*(?:\*\*)?\s*[:：]\s*\S"
)
_ROLE_TURN = re.compile(r"<\|im_start\|>\s*assistant|<\|assistant\|>|\[/INST\]|### Response", re.I)


def self_answered(text: str) -> str | None:
    """The marker that shows a generated query answering itself (``"Answer: 42"``, ``"答案：…"``,
    ``"答え："``, an assistant turn), else None. The check the paper's synthesis applies to drop
    self-answered queries (arXiv 2508.14472, data synthesis); the markers are ours."""
    m = _ROLE_TURN.search(text) or _SELF_ANSWERED.search(text)
    return m.group(0).strip() if m else None


# --------------------------------------------------------------------------- judge verdicts


CRITIC_FLAGS = ("contradiction", "hallucination", "invalid")


@dataclass(frozen=True)
class CriticVerdict:
    contradiction: bool
    hallucination: bool
    invalid: bool
    reason: str = ""

    @property
    def flags(self) -> list[str]:
        return [f for f in CRITIC_FLAGS if getattr(self, f)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "contradiction": self.contradiction,
            "hallucination": self.hallucination,
            "invalid": self.invalid,
            "reason": self.reason,
        }


def parse_critic_verdict(text: str) -> CriticVerdict:
    """``{"contradiction": bool, "hallucination": bool, "invalid": bool, "reason": str}`` from the
    critic's reply. Exactly one object carrying these keys; all three flags must be JSON booleans
    (``"false"`` or ``0`` is not accepted); ``reason`` optional. Raises ``VerdictError``."""
    obj = one_verdict(text, CRITIC_FLAGS)
    for flag in CRITIC_FLAGS:
        if flag not in obj:
            raise VerdictError(f"verdict lacks {flag!r}")
        if not isinstance(obj[flag], bool):
            raise VerdictError(
                f"{flag!r} must be true or false, got {json.dumps(obj[flag], ensure_ascii=False)[:40]}"
            )
    reason = obj.get("reason", "")
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        raise VerdictError("'reason' must be a string")
    return CriticVerdict(obj["contradiction"], obj["hallucination"], obj["invalid"], reason)


REREAD_VERDICTS = ("keep", "rewrite", "reject")


@dataclass(frozen=True)
class RereadVerdict:
    verdict: str  # keep | rewrite | reject
    rewrite: str | None = None
    reason: str = ""


def parse_reread_verdict(text: str) -> RereadVerdict:
    """``{"verdict": "keep"|"rewrite"|"reject", "rewrite": str, "reason": str}`` from a ReReading
    reply. ``rewrite`` must be a non-empty string when the verdict is ``rewrite`` and is ignored
    otherwise. Raises ``VerdictError``."""
    obj = one_verdict(text, ("verdict",))
    verdict = obj.get("verdict")
    if not isinstance(verdict, str) or verdict.strip().lower() not in REREAD_VERDICTS:
        raise VerdictError(
            f"'verdict' must be one of {', '.join(REREAD_VERDICTS)}, got {json.dumps(verdict, ensure_ascii=False)[:40]}"
        )
    verdict = verdict.strip().lower()
    reason = obj.get("reason") or ""
    if not isinstance(reason, str):
        raise VerdictError("'reason' must be a string")
    rewrite = None
    if verdict == "rewrite":
        rewrite = obj.get("rewrite")
        if not isinstance(rewrite, str) or not rewrite.strip():
            raise VerdictError("verdict 'rewrite' needs a non-empty 'rewrite' string")
        rewrite = rewrite.strip()
    return RereadVerdict(verdict, rewrite, reason)
