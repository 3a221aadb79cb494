"""GEMBA-ESA: an LLM judge that annotates error spans, then scores the translation 0–100.

The protocol (two chat requests per segment, reference-free):

1. **Error spans** — the GEMBA-MQM error-annotation prompt of Kocmi & Federmann (2023, "GEMBA-MQM:
   Detecting Translation Quality Error Spans with GPT-4", https://aclanthology.org/2023.wmt-1.64)
   with its three fixed few-shot examples (en-de, en-cs, zh-en). The judge answers with a
   ``Major:`` block and a ``Minor:`` block of ``category/subcategory - "span"`` lines.
2. **Score** — the ESA scoring step (Kocmi, Zouhar et al. 2024, "Error Span Annotation",
   https://arxiv.org/abs/2406.11580): given the source, the translation and the step-1 spans,
   a score on a continuous 0–100 scale with the ESA/SQM reference points 0 = "No meaning
   preserved", 33 = "Some meaning preserved", 66 = "Most meaning preserved and few grammar
   mistakes", 100 = "Perfect meaning and grammar" (``ANCHORS``).

Both prompt texts and the few-shot examples are those of the reference implementation,
MicrosoftTranslator/GEMBA ``gemba/gemba_esa.py`` (``TEMPLATE_GEMBA_ESA_ERROR_SPANS``,
``TEMPLATE_GEMBA_ESA_RANKING``); GEMBA-ESA is the LLM judge behind WMT24's and WMT25's automatic
rankings (WMT24 findings, https://aclanthology.org/2024.wmt-1.1). Two deviations, both ours: the
step-2 prompt shows the step-1 spans re-rendered from the parsed annotation (``format_spans``),
not the raw reply; and a text cannot close its triple-backtick block (``quote_block``).

Reading replies (pure; never guessed — an unreadable reply raises ``VerdictError``):

* spans (``parse_spans``): prose before the first severity header is ignored; after it every
  non-blank line must be an error line, ``no-error`` or another header; a header other than
  ``Major``/``Minor`` (``Critical:``) is a wrong severity → invalid. A JSON object
  ``{"errors": [{"severity", "category", "span"}]}`` (``core.judging.one_verdict``) is read too.
* score (``parse_score``): GEMBA's ``validate_number`` rule — exactly one number in the reply
  (after removing an echoed ``(0-100)``), or ``N/100``; or a JSON ``{"score": N}``; the value must
  lie in [0, 100].

``judge_esa`` runs both steps over a batch through any ``generate(conversations, temperature)``
function, retrying unreadable replies at the next, higher temperature (``RETRY_TEMPERATURES``,
ours; GEMBA also raises the temperature on invalid answers); a segment whose replies stay
unreadable gets no score (``EsaResult.score is None``) and says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from in2x_cli.core.judging import VerdictError, find_json_objects, one_verdict

Message = dict[str, str]
Conversation = list[Message]
GenerateFn = Callable[[Sequence[Conversation], float], list[str]]

SEVERITIES = ("major", "minor")
ANCHORS = {0: "No meaning preserved", 33: "Some meaning preserved", 66: "Most meaning preserved and few grammar mistakes", 100: "Perfect meaning and grammar"}
RETRY_TEMPERATURES = (0.0, 0.5, 1.0)  # first try greedy, then two retries (ours)

SYSTEM = "Your task is to identify machine translation errors and assess the quality of the translation."

SPAN_TEMPLATE = (
    "{source_lang} source:\n```{source_seg}```\n{target_lang} translation:\n```{target_seg}```\n\n"
    "Based on the source segment and machine translation surrounded with triple backticks, identify error types in the "
    "translation and classify them. The categories of errors are: accuracy (addition, mistranslation, omission, "
    "untranslated text), fluency (character encoding, grammar, inconsistency, punctuation, register, spelling), style "
    "(awkward), terminology (inappropriate for context, inconsistent use), non-translation, other, or no-error.\n"
    "Each error is classified as one of two categories: major or minor. Major errors disrupt the flow and make the "
    "understandability of text difficult or impossible. Minor errors are errors that do not disrupt the flow "
    "significantly and what the text is trying to say is still understandable."
)

SCORE_TEMPLATE = (
    "Given the translation from {source_lang} to {target_lang} and the annotated error spans, assign a score on a "
    'continuous scale from 0 to 100. The scale has following reference points: 0="No meaning preserved", '
    '33="Some meaning preserved", 66="Most meaning preserved and few grammar mistakes", up to 100="Perfect meaning '
    'and grammar".\n\nScore the following translation from {source_lang} source:\n```{source_seg}```\n'
    "{target_lang} translation:\n```{target_seg}```\nAnnotated error spans:\n```{error_spans}```\nScore (0-100): "
)

# The three few-shot examples of GEMBA-MQM / GEMBA-ESA (source, translation, annotation).
FEW_SHOTS: tuple[dict[str, str], ...] = (
    {
        "source_lang": "English",
        "source_seg": "I do apologise about this, we must gain permission from the account holder to discuss an order with another person, I apologise if this was done previously, however, I would not be able to discuss this with yourself without the account holders permission.",
        "target_lang": "German",
        "target_seg": "Ich entschuldige mich dafür, wir müssen die Erlaubnis einholen, um eine Bestellung mit einer anderen Person zu besprechen. Ich entschuldige mich, falls dies zuvor geschehen wäre, aber ohne die Erlaubnis des Kontoinhabers wäre ich nicht in der Lage, dies mit dir involvement.",
        "answer": 'Major:\naccuracy/mistranslation - "involvement"\naccuracy/omission - "the account holder"\nMinor:\nfluency/grammar - "wäre"\nfluency/register - "dir"\n',
    },
    {
        "source_lang": "English",
        "source_seg": "Talks have resumed in Vienna to try to revive the nuclear pact, with both sides trying to gauge the prospects of success after the latest exchanges in the stop-start negotiations.",
        "target_lang": "Czech",
        "target_seg": "Ve Vídni se ve Vídni obnovily rozhovory o oživení jaderného paktu, přičemž obě partaje se snaží posoudit vyhlídky na úspěch po posledních výměnách v jednáních.",
        "answer": 'Major:\naccuracy/addition - "ve Vídni"\naccuracy/omission - "the stop-start"\nMinor:\nterminology/inappropriate for context - "partaje"\n',
    },
    {
        "source_lang": "Chinese",
        "source_seg": "大众点评乌鲁木齐家居卖场频道为您提供高铁居然之家地址，电话，营业时间等最新商户信息，找装修公司，就上大众点评",
        "target_lang": "English",
        "target_seg": "Urumqi Home Furnishing Store Channel provides you with the latest business information such as the address, telephone number, business hours, etc., of high-speed rail, and find a decoration company, and go to the reviews.",
        "answer": 'Major:\naccuracy/addition - "of high-speed rail"\naccuracy/mistranslation - "go to the reviews"\nMinor:\nstyle/awkward - "etc.,"\n',
    },
)


@dataclass(frozen=True)
class ErrorSpan:
    """One annotated error: severity (major|minor), category (``accuracy/omission``), the quoted
    text, and its character offset in the translation (None when the quote is not found there)."""

    severity: str
    category: str
    span: str
    start: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "category": self.category, "span": self.span, "start": self.start}


@dataclass
class EsaResult:
    """The judgement of one segment. ``score`` None = no valid score (``error`` says why)."""

    score: float | None = None
    spans: tuple[ErrorSpan, ...] | None = None
    attempts: dict[str, int] = field(default_factory=lambda: {"spans": 0, "score": 0})
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"score": self.score, "attempts": dict(self.attempts)}
        out["spans"] = None if self.spans is None else [s.to_dict() for s in self.spans]
        if self.error:
            out["error"] = self.error
        return out


def quote_block(text: str) -> str:
    """The text as it goes between triple backticks: a ``````` inside it is broken up (`` `` ` ``)
    so the judged text cannot end its block early and pose as prompt text."""
    return (text or "").replace("```", "`` `")


def span_messages(src: str, hyp: str, src_lang: str, tgt_lang: str) -> Conversation:
    """Step 1: system turn, the three few-shot exchanges, then this segment (language *names*)."""
    msgs: Conversation = [{"role": "system", "content": SYSTEM}]
    for shot in FEW_SHOTS:
        msgs.append({"role": "user", "content": SPAN_TEMPLATE.format(**shot)})
        msgs.append({"role": "assistant", "content": shot["answer"]})
    msgs.append({"role": "user", "content": SPAN_TEMPLATE.format(source_lang=src_lang, target_lang=tgt_lang, source_seg=quote_block(src), target_seg=quote_block(hyp))})
    return msgs


def score_messages(src: str, hyp: str, src_lang: str, tgt_lang: str, spans: Sequence[ErrorSpan]) -> Conversation:
    """Step 2: one user turn with the anchors, the segment and the step-1 annotation."""
    text = SCORE_TEMPLATE.format(
        source_lang=src_lang, target_lang=tgt_lang, source_seg=quote_block(src), target_seg=quote_block(hyp), error_spans=quote_block(format_spans(spans))
    )
    return [{"role": "user", "content": text}]


def format_spans(spans: Sequence[ErrorSpan]) -> str:
    """Spans in GEMBA's answer format (``Major:`` / ``Minor:`` blocks); ``no-error`` when empty."""
    if not spans:
        return "no-error"
    lines: list[str] = []
    for severity in SEVERITIES:
        chosen = [s for s in spans if s.severity == severity]
        if chosen:
            lines.append(f"{severity.capitalize()}:")
            lines.extend(f'{s.category} - "{s.span}"' for s in chosen)
    return "\n".join(lines)


_HEADER = re.compile(r"^\s*\**\s*([A-Za-z-]+)(?:\s+errors?)?\s*\**\s*:\s*\**\s*$", re.I)
_ERROR_LINE = re.compile(r'^\s*(?:[-*•]\s+)?(?P<category>[^"\n]*?[^\s"-])\s*[-–—:]\s*"(?P<span>.*)"\s*$')
_NO_ERROR = re.compile(r"^\s*(?:[-*•]\s+)?(?:no-?error|no errors?|none|n/a)\s*\.?\s*$", re.I)


def _span(severity: Any, category: Any, text: Any, hyp: str) -> ErrorSpan:
    sev = str(severity).strip().lower() if isinstance(severity, str) else None
    if sev not in SEVERITIES:
        raise VerdictError(f"severity {severity!r} is not major or minor")
    if not isinstance(category, str) or not category.strip():
        raise VerdictError("an error without a category")
    if not isinstance(text, str):
        raise VerdictError("an error without a quoted span")
    start = hyp.find(text) if text else -1
    return ErrorSpan(sev, category.strip().lower(), text, start if start >= 0 else None)


def parse_spans(reply: str, hyp: str = "") -> tuple[ErrorSpan, ...]:
    """The step-1 annotation (module docstring); ``VerdictError`` when it cannot be read."""
    text = reply or ""
    if not text.strip():
        raise VerdictError("empty reply")
    if "{" in text and any("errors" in o for o in find_json_objects(text)):
        obj = one_verdict(text, ("errors",))
        errors = obj["errors"]
        if not isinstance(errors, list):
            raise VerdictError("'errors' is not a list")
        out = []
        for e in errors:
            if not isinstance(e, dict):
                raise VerdictError("an entry of 'errors' is not an object")
            out.append(_span(e.get("severity"), e.get("category"), e.get("span"), hyp))
        return tuple(out)
    lines = text.strip().strip("`").splitlines()
    content = [ln for ln in lines if ln.strip()]
    if len(content) == 1 and _NO_ERROR.match(content[0]):
        return ()
    spans: list[ErrorSpan] = []
    severity: str | None = None
    seen_header = False
    for line in lines:
        if not line.strip():
            continue
        header = _HEADER.match(line)
        if header:
            word = header.group(1).lower()
            if word not in SEVERITIES:
                if seen_header or word in ("critical", "severe", "neutral", "trivial"):
                    raise VerdictError(f"severity {header.group(1)!r} is not major or minor")
                continue  # a prose label before the annotation ("Answer:")
            severity, seen_header = word, True
            continue
        if not seen_header:
            continue  # prose before the first header
        if _NO_ERROR.match(line):
            continue
        m = _ERROR_LINE.match(line)
        if not m:
            raise VerdictError(f"unreadable line in the annotation: {line.strip()[:80]!r}")
        spans.append(_span(severity, m.group("category"), m.group("span"), hyp))
    if not seen_header:
        raise VerdictError("no Major:/Minor: annotation in the reply")
    return tuple(spans)


_RANGE_ECHO = re.compile(r"\(?\s*0\s*[-–]\s*100\s*\)?")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_OVER_100 = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*/\s*100\s*\.?\s*$")


def _in_range(value: float) -> float:
    if not 0.0 <= value <= 100.0:
        raise VerdictError(f"score {value:g} is outside 0-100")
    return float(value)


def parse_score(reply: str) -> float:
    """The step-2 score (module docstring); ``VerdictError`` when there is no single valid one."""
    text = reply or ""
    if not text.strip():
        raise VerdictError("empty reply")
    if "{" in text and any("score" in o for o in find_json_objects(text)):
        value = one_verdict(text, ("score",))["score"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise VerdictError(f"'score' is not a number: {value!r}")
        return _in_range(float(value))
    over = _OVER_100.match(text)
    if over:
        return _in_range(float(over.group(1)))
    numbers = _NUMBER.findall(_RANGE_ECHO.sub(" ", text))
    if len(numbers) != 1:
        raise VerdictError(f"{len(numbers)} numbers in the reply (expected exactly one score)")
    return _in_range(float(numbers[0]))


@dataclass(frozen=True)
class EsaItem:
    """One segment to judge; languages as names (``English``, ``Japanese``)."""

    src: str
    hyp: str
    src_lang: str
    tgt_lang: str


def _ladder(
    todo: list[int], build: Callable[[int], Conversation], parse: Callable[[int, str], Any], generate: GenerateFn,
    temperatures: Sequence[float], on_attempt: Callable[[int], None], on_fail: Callable[[int, str], None],
) -> None:
    """Ask for every index in ``todo``; re-ask the unreadable ones at each next temperature."""
    last_error: dict[int, str] = {}
    for temperature in temperatures:
        if not todo:
            return
        replies = generate([build(i) for i in todo], temperature)
        if len(replies) != len(todo):
            raise ValueError(f"judge returned {len(replies)} replies for {len(todo)} requests")
        retry = []
        for i, reply in zip(todo, replies, strict=True):
            on_attempt(i)
            try:
                parse(i, reply)
            except VerdictError as exc:
                last_error[i] = str(exc)
                retry.append(i)
        todo = retry
    for i in todo:
        on_fail(i, last_error[i])


def judge_esa(items: Sequence[EsaItem], generate: GenerateFn, temperatures: Sequence[float] = RETRY_TEMPERATURES) -> list[EsaResult]:
    """Both GEMBA-ESA steps for every item, batched per step and attempt (module docstring)."""
    if not temperatures:
        raise ValueError("at least one temperature")
    results = [EsaResult() for _ in items]

    def count(step: str) -> Callable[[int], None]:
        return lambda i: results[i].attempts.__setitem__(step, results[i].attempts[step] + 1)

    def fail(step: str) -> Callable[[int, str], None]:
        def record(i: int, why: str) -> None:
            results[i].error = f"{step}: {why}"

        return record

    def read_spans(i: int, reply: str) -> None:
        results[i].spans = parse_spans(reply, items[i].hyp)

    def read_score(i: int, reply: str) -> None:
        results[i].score = parse_score(reply)

    span_conv = lambda i: span_messages(items[i].src, items[i].hyp, items[i].src_lang, items[i].tgt_lang)  # noqa: E731
    _ladder(list(range(len(items))), span_conv, read_spans, generate, temperatures, count("spans"), fail("spans"))
    scored = [i for i, r in enumerate(results) if r.spans is not None]
    score_conv = lambda i: score_messages(items[i].src, items[i].hyp, items[i].src_lang, items[i].tgt_lang, results[i].spans or ())  # noqa: E731
    _ladder(scored, score_conv, read_score, generate, temperatures, count("score"), fail("score"))
    return results


def retry_temperatures(retries: int, step: float = 0.5) -> tuple[float, ...]:
    """Greedy first, then ``retries`` more attempts each ``step`` hotter: 2 → (0.0, 0.5, 1.0)."""
    if retries < 0:
        raise ValueError("retries must be >= 0")
    return tuple(round(step * k, 6) for k in range(retries + 1))


__all__ = [
    "ANCHORS", "EsaItem", "EsaResult", "ErrorSpan", "FEW_SHOTS", "RETRY_TEMPERATURES", "SEVERITIES", "format_spans",
    "judge_esa", "parse_score", "parse_spans", "quote_block", "retry_temperatures", "score_messages", "span_messages",
]
