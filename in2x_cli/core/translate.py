"""Translation prompts, output cleaning, paragraph alignment and context-sized document splitting.

WMT25 General MT (https://www2.statmt.org/wmt25/translation-task.html) is document-level: a test
row is a document whose ~100-word paragraphs are joined by a blank line, and a system must
return the same number of paragraphs (scores are computed per paragraph). The In2x submission
(arXiv 2508.14472) translated zero-shot with an instruction-tuned LLM. This module holds the pure
parts of that: everything here is string and integer arithmetic, no model and no I/O. The user-
facing account of the templates and rules is docs/translate.md, checked against this module by
tests/test_docs_translate.py (change both together).

Prompts
-------
One zero-shot user turn per request, written in the *target* language (an instruction in the
language the model must answer in steers it away from answering in the source language) and
asking for that language's conventions. Placeholders, filled in one pass (a source text that
itself contains ``{src}`` is never re-expanded; other braces are left alone):

``{src}`` source text · ``{src_lang}``/``{tgt_lang}`` codes · ``{src_name}``/``{tgt_name}`` language
names in the target language · ``{paragraphs}`` paragraph count · ``{structure}`` a sentence (in the
target language) asking to keep that many blank-line separated paragraphs, empty for one paragraph.

Built-in templates, chosen by the target language (``TEMPLATES``; a key ``src-tgt`` would take
precedence over ``tgt``, and ``*`` is the fallback):

- ``ja``: 以下の{src_name}の文章を自然な日本語に翻訳してください。句読点は「、」「。」を使ってください。{structure}訳文のみを出力してください。
- ``zh``: 请将以下{src_name}文本翻译成自然流畅的简体中文，使用中文全角标点。{structure}只输出译文。
- ``en``: Translate the following {src_name} text into natural, idiomatic English. {structure}Output only the translation.
- ``*``:  Translate the following {src_name} text into {tgt_name}, following {tgt_name} punctuation and typographic conventions. {structure}Output only the translation.

each followed by a blank line and ``{src}``. ``--prompt-file`` replaces them: a ``.json`` file maps
keys (``en-ja``, ``ja``, ``*``) to templates; any other file is one template for every direction.

Output cleaning (``clean_output``)
----------------------------------
Chat models wrap translations in chatter. These rules run in order, repeatedly until nothing
changes; each is *source-aware* — it does not fire when the source itself has the same shape
(a source that starts with "Translation:" keeps its translated label):

1. ``think``     drop ``<think>…</think>`` reasoning blocks (and an unclosed block's closing tag).
2. ``preamble``  drop a first line that announces the translation and ends with a colon:
                 "Here is the translation:", "Sure! Here's the Japanese version:", "Translation:",
                 "以下が翻訳です：", "翻译如下：", "下面是译文：" …
3. ``fence``     unwrap a text that is entirely one Markdown code fence (```` ```lang … ``` ````).
4. ``label``     drop a leading language label on the first line: "Japanese: …", "日本語：…",
                 "译文：…", "Translation: …".
5. ``quotes``    unwrap a text entirely enclosed in one pair of quotes (" ", “ ”, ' ', 「 」, 『 』,
                 « ») that does not occur inside it, when the source is not quoted.
6. ``note``      drop a trailing paragraph that is a translator's note ("Note: …", "(Note: …)",
                 "注：…", "注意：…", "※…", "（注：…）") when the source has no such paragraph.
7. ``whitespace`` (last, once) CRLF → LF, strip trailing spaces on lines, collapse 3+ newlines to
                 a blank line, strip the ends.

Paragraph alignment (``align_paragraphs``)
------------------------------------------
A document translation is *aligned* when it splits into exactly as many paragraphs as the
source: (a) blocks separated by blank lines, as WMT25 defines them, or (b) when (a) fails and no
source paragraph contains a line break, non-empty lines (models often answer with single
newlines between paragraphs). Otherwise the document is re-translated paragraph by paragraph.

Splitting for the context (``plan_chunks``)
-------------------------------------------
A document whose prompt plus output budget exceeds the model's context is cut at paragraph
boundaries into the fewest contiguous chunks that fit, balanced so the largest chunk is as small
as possible (linear partition by binary search on the chunk cap); each chunk is translated as a
document of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from in2x_cli.langs import LANG_NAMES

PARAGRAPH_SEP = "\n\n"

# ---------------------------------------------------------------------------------- prompts

# Language names as written in the target language (the prompt is in the target language).
NAMES_IN: dict[str, dict[str, str]] = {
    "ja": {"en": "英語", "ja": "日本語", "zh": "中国語", "ko": "韓国語", "de": "ドイツ語", "fr": "フランス語", "es": "スペイン語", "ru": "ロシア語"},
    "zh": {"en": "英语", "ja": "日语", "zh": "中文", "ko": "韩语", "de": "德语", "fr": "法语", "es": "西班牙语", "ru": "俄语"},
}

STRUCTURE: dict[str, str] = {
    "ja": "原文は空行で区切られた{paragraphs}段落からなります。訳文も同じ{paragraphs}段落を空行で区切って出力してください。",
    "zh": "原文共{paragraphs}段，段落之间以空行分隔；译文也须保持{paragraphs}段，并以空行分隔。",
    "*": "The text has {paragraphs} paragraphs separated by blank lines; keep the same {paragraphs} paragraphs, separated by blank lines. ",
}

TEMPLATES: dict[str, str] = {
    "ja": "以下の{src_name}の文章を自然な日本語に翻訳してください。句読点は「、」「。」を使ってください。{structure}訳文のみを出力してください。\n\n{src}",
    "zh": "请将以下{src_name}文本翻译成自然流畅的简体中文，使用中文全角标点。{structure}只输出译文。\n\n{src}",
    "en": "Translate the following {src_name} text into natural, idiomatic English. {structure}Output only the translation.\n\n{src}",
    "*": (
        "Translate the following {src_name} text into {tgt_name}, following {tgt_name} punctuation and "
        "typographic conventions. {structure}Output only the translation.\n\n{src}"
    ),
}

PLACEHOLDERS = ("src", "src_lang", "tgt_lang", "src_name", "tgt_name", "paragraphs", "structure")
_PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def name_in(lang: str, in_lang: str) -> str:
    """The name of ``lang`` written in ``in_lang`` (English when we have no native name)."""
    return NAMES_IN.get(in_lang, {}).get(lang, LANG_NAMES.get(lang, lang))


def select_template(templates: Mapping[str, str], src_lang: str, tgt_lang: str) -> str:
    """``src-tgt`` first, then ``tgt``, then ``*``."""
    for key in (f"{src_lang}-{tgt_lang}", tgt_lang, "*"):
        if key in templates:
            return templates[key]
    raise KeyError(f"no prompt template for {src_lang}-{tgt_lang} (add a '*' entry)")


def render_prompt(template: str, src: str, src_lang: str, tgt_lang: str, paragraphs: int = 1) -> str:
    """Fill the placeholders of ``template`` (one pass: the source is never re-expanded)."""
    structure = ""
    if paragraphs > 1:
        structure = STRUCTURE.get(tgt_lang, STRUCTURE["*"]).replace("{paragraphs}", str(paragraphs))
    values = {
        "src": src,
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
        "src_name": name_in(src_lang, tgt_lang),
        "tgt_name": name_in(tgt_lang, tgt_lang),
        "paragraphs": str(paragraphs),
        "structure": structure,
    }
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)


def validate_template(template: str) -> str | None:
    """An error message for an unusable template, or None."""
    if "{src}" not in template:
        return "a prompt template must contain {src}"
    return None


def build_messages(user_prompt: str, system: str | None = None) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": user_prompt})
    return msgs


# ---------------------------------------------------------------------------------- cleaning

_THINK_RE = re.compile(r"<think>.*?</think>\s*", re.S)
_PREAMBLE_RE = re.compile(
    r"""^\s*(?:
        (?:sure|certainly|of\ course|okay|ok)[!,.]?\s*)?
        (?:
            here(?:'s|’s|\ is|\ are)\b[^\n]*(?:translat|version|rendition)[^\n]*
          | (?:the\ )?(?:\w+\ )?translation(?:\ (?:of|into|in)\b[^\n]*)?
          | (?:translated|japanese|english|chinese)\ (?:text|version)[^\n]*
          | 以下(?:は|が|に)[^\n]*(?:翻訳|訳文|訳)[^\n]*
          | (?:翻訳|訳文|日本語訳)(?:です|は以下の通りです|結果)?
          | (?:翻译|译文)(?:如下|结果)?[^\n]*
          | 下面是[^\n]*(?:翻译|译文)[^\n]*
          | 以下是[^\n]*(?:翻译|译文)[^\n]*
        )\s*[:：]\s*$""",
    re.I | re.X,
)
_FENCE_RE = re.compile(r"^\s*```[\w+-]*[ \t]*\n(.*?)\n?```\s*$", re.S)
_LABEL_RE = re.compile(
    r"^\s*(?:japanese|english|chinese|simplified\ chinese|translation|target|output"
    r"|日本語訳?|英語|中国語|中文|英文|日文|汉语|译文|翻译|訳文|翻訳)\s*[:：]\s*",
    re.I | re.X,
)
_QUOTE_PAIRS = (('"', '"'), ("“", "”"), ("'", "'"), ("「", "」"), ("『", "』"), ("«", "»"), ("‘", "’"))
_NOTE_RE = re.compile(r"^\s*(?:\(|（)?\s*(?:note|translator'?s note|注|注意|備考|译注|訳注)\s*[:：]|^\s*※", re.I)


def _first_line(text: str) -> str:
    return text.lstrip().split("\n", 1)[0]


def _rule_think(text: str, src: str) -> str:
    out = _THINK_RE.sub("", text)
    if "</think>" in out and "<think>" not in out and "</think>" not in src:
        out = out.split("</think>", 1)[1]
    return out


def _rule_preamble(text: str, src: str) -> str:
    stripped = text.lstrip()
    if "\n" not in stripped:
        return text
    first, rest = stripped.split("\n", 1)
    if not rest.strip() or not _PREAMBLE_RE.match(first) or _PREAMBLE_RE.match(_first_line(src)):
        return text
    return rest


def _rule_fence(text: str, src: str) -> str:
    m = _FENCE_RE.match(text)
    if not m or _FENCE_RE.match(src):
        return text
    return m.group(1)


def _rule_label(text: str, src: str) -> str:
    m = _LABEL_RE.match(text)
    if not m or _LABEL_RE.match(src) or not text[m.end() :].strip():
        return text
    return text[m.end() :]


def _is_quoted(text: str) -> tuple[str, str] | None:
    t = text.strip()
    for left, right in _QUOTE_PAIRS:
        if len(t) >= 2 and t.startswith(left) and t.endswith(right):
            inner = t[len(left) : len(t) - len(right)]
            if left not in inner and right not in inner:
                return left, right
    return None


def _src_quoted(src: str) -> bool:
    s = src.strip()
    return any(s.startswith(left) for left, _ in _QUOTE_PAIRS) or any(s.endswith(right) for _, right in _QUOTE_PAIRS)


def _rule_quotes(text: str, src: str) -> str:
    pair = _is_quoted(text)
    if pair is None or _src_quoted(src):
        return text
    t = text.strip()
    return t[len(pair[0]) : len(t) - len(pair[1])]


def _rule_note(text: str, src: str) -> str:
    paras = text.strip().split(PARAGRAPH_SEP)
    if len(paras) < 2 or not _NOTE_RE.match(paras[-1]):
        return text
    if any(_NOTE_RE.match(p) for p in src.strip().split(PARAGRAPH_SEP)):
        return text
    return PARAGRAPH_SEP.join(paras[:-1])


def _rule_whitespace(text: str, src: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", PARAGRAPH_SEP, text)
    return text.strip()


CleanRule = Callable[[str, str], str]

# Plain registry, in application order (whitespace runs once, at the end).
CLEAN_RULES: dict[str, CleanRule] = {
    "think": _rule_think,
    "preamble": _rule_preamble,
    "fence": _rule_fence,
    "label": _rule_label,
    "quotes": _rule_quotes,
    "note": _rule_note,
}


def clean_output_rules(text: str, src: str = "") -> tuple[str, list[str]]:
    """Apply the cleaning rules; return the cleaned text and the names of the rules that fired."""
    fired: list[str] = []
    for _ in range(4):  # wrappers nest at most a few deep ("Here is…:\n```\n"…"\n```")
        changed = False
        for name, rule in CLEAN_RULES.items():
            new = rule(text, src)
            if new != text:
                fired.append(name)
                text = new.strip("\n") if name != "quotes" else new
                changed = True
        if not changed:
            break
    return _rule_whitespace(text, src), fired


def clean_output(text: str, src: str = "") -> str:
    """The cleaned translation (see the module docstring for the rules)."""
    return clean_output_rules(text, src)[0]


# ---------------------------------------------------------------------------------- paragraphs


def split_output_paragraphs(text: str) -> list[str]:
    """A model output's paragraphs: blocks separated by blank lines (lines of only spaces count
    as blank), each stripped. Sources are split with ``in2x_cli.wmt.split_paragraphs``."""
    out = []
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        block = block.strip("\n")
        if block.strip():
            out.append(block.strip())
    return out


def align_paragraphs(hyp: str, src_paragraphs: Sequence[str]) -> list[str] | None:
    """The translation's paragraphs when they align one-to-one with the source's, else None."""
    n = len(src_paragraphs)
    paras = split_output_paragraphs(hyp)
    if len(paras) == n:
        return paras
    if n > 1 and not any("\n" in p for p in src_paragraphs):
        lines = [ln.strip() for ln in hyp.split("\n") if ln.strip()]
        if len(lines) == n:
            return lines
    return None


def as_single_paragraph(text: str) -> str:
    """A paragraph translation must stay one paragraph: inner blank lines become line breaks."""
    return re.sub(r"\n\s*\n+", "\n", text.strip())


# ---------------------------------------------------------------------------------- sentences

# Sentence ends: CJK 。！？ outside 「」『』（）brackets (a quoted exclamation does not end the
# sentence that quotes it), or Latin .!? followed by whitespace and a capital/digit/opening quote.
_CJK_OPEN, _CJK_CLOSE, _CJK_END = "「『（(“", "」』）)”", "。！？!?"
_LATIN_END = re.compile(r"(?<=[.!?])([\"”’)\]]*)\s+(?=[\"“‘(\[]?[A-Z0-9À-Ý])")
_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|vs|etc|e\.g|i\.e|Inc|Ltd|Co|No|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|U\.S)\.$")


def _split_cjk(text: str) -> list[str]:
    parts, start, depth = [], 0, 0
    for i, ch in enumerate(text):
        if ch in _CJK_OPEN:
            depth += 1
        elif ch in _CJK_CLOSE:
            depth = max(0, depth - 1)
        elif ch in _CJK_END and depth == 0:
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt and nxt not in _CJK_END and nxt not in _CJK_CLOSE:
                parts.append(text[start : i + 1])
                start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def split_sentences(text: str, lang: str) -> list[str]:
    """Rule-based sentence splitting of a paragraph (for ``--granularity sentence`` and for
    paragraphs too long for the context). Japanese/Chinese: after 。！？ outside brackets.
    Other languages: after . ! ? (and closing quotes) followed by a space and a capital or digit,
    except after common abbreviations (Mr., e.g., Jan.)."""
    text = text.strip()
    if not text:
        return []
    if lang in ("ja", "zh"):
        return _split_cjk(text)
    out: list[str] = []
    start = 0
    for m in _LATIN_END.finditer(text):
        cut = m.start() + len(m.group(1))
        piece = text[start:cut]
        if _ABBREV.search(piece):
            continue
        out.append(piece.strip())
        start = m.end()
    out.append(text[start:].strip())
    return [p for p in out if p]


def sentence_joiner(lang: str) -> str:
    """How translated sentences are glued back into a paragraph."""
    return "" if lang in ("ja", "zh") else " "


# ---------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class ContextBudget:
    """Token arithmetic for one request: prompt + output must fit ``context``.

    ``output_ratio``/``output_extra`` bound the output by ``ratio × source tokens + extra`` when
    ``max_tokens`` is 0 (auto); with a fixed ``max_tokens`` that is the output budget.
    """

    context: int
    overhead: int  # tokens of the rendered prompt around the source (template, chat markup)
    max_tokens: int = 0
    output_ratio: float = 2.0
    output_extra: int = 64

    def output_tokens(self, src_tokens: int) -> int:
        if self.max_tokens > 0:
            return self.max_tokens
        return int(self.output_ratio * src_tokens) + self.output_extra

    def source_budget(self) -> int:
        """The most source tokens one request may carry."""
        room = self.context - self.overhead
        if self.max_tokens > 0:
            return max(0, room - self.max_tokens)
        return max(0, int((room - self.output_extra) / (1.0 + self.output_ratio)))


def plan_chunks(lengths: Sequence[int], budget: int, sep_tokens: int = 2) -> list[tuple[int, int]]:
    """Cut a sequence of paragraph lengths (tokens) into contiguous ``[start, end)`` chunks whose
    totals (plus ``sep_tokens`` per paragraph break) stay within ``budget``.

    Uses the fewest chunks a greedy fill needs, then balances them: the smallest cap C ≤ budget
    for which greedy filling still needs no more chunks (binary search). A paragraph longer than
    the budget becomes a chunk of its own (the caller splits it further).
    """
    n = len(lengths)
    if n == 0:
        return []

    def greedy(cap: int) -> list[tuple[int, int]]:
        chunks, start, total = [], 0, 0
        for i, length in enumerate(lengths):
            add = length + (sep_tokens if i > start else 0)
            if i > start and total + add > cap:
                chunks.append((start, i))
                start, total = i, length
            else:
                total += add
        chunks.append((start, n))
        return chunks

    best = greedy(budget)
    if len(best) == 1:
        return best
    k = len(best)
    lo, hi = 1, budget  # greedy's chunk count never grows with the cap: binary search is sound
    while lo < hi:
        mid = (lo + hi) // 2
        if len(greedy(mid)) <= k:
            hi = mid
        else:
            lo = mid + 1
    balanced = greedy(lo)
    return balanced if len(balanced) <= k else best
