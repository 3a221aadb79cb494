"""Translation metrics behind one small interface: sacreBLEU's BLEU, chrF++ and TER, the COMET
family, and any user function, all reduced to *sufficient statistics per segment*.

Why statistics: a corpus score is ``score_from_stats(sum of segment statistics)`` for every
metric here, so the same per-segment array gives the system score, any subset's score (``--by
domain``), and the resampled scores of the significance tests (core/significance.py) without
re-tokenising anything. This is how sacreBLEU itself works (``_extract_corpus_statistics`` /
``_compute_score_from_stats``, mjpost/sacrebleu, Post 2018, https://aclanthology.org/W18-6319):

  BLEU   stats = [hyp_len, ref_len, correct_1..4, total_1..4]   score = BP · exp(mean log p_n) · 100
  chrF++ stats = [hyp, ref, match] counts per char order 1..6 and word order 1..2 (β = 2)
  TER    stats = [edits, ref_len]                               score = 100 · edits / ref_len
  COMET  stats = [segment score, 1]                             score = Σ scores / n  (the mean)

Hooks a metric implements (``Metric``): ``segment_stats(hyps, refs, srcs) -> array[n, k]``,
``score_from_stats(totals) -> float``, ``segment_scores(stats)`` (default: the score of each row
alone) and ``signature()``. Registry: ``METRICS`` maps a name to a class; a spec ``NAME[=ARG]``
builds one (``comet=path/to/checkpoint``); ``module:attr`` names a user metric class or a plain
function ``(srcs, hyps, refs) -> list[float]`` whose system score is the mean.

numpy and sacrebleu are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from in2x_cli import __version__
from in2x_cli.plugins import import_dotted

if TYPE_CHECKING:
    import numpy as np


class MetricError(ValueError):
    """A bad metric spec or an impossible metric configuration (the CLI turns it into exit 2).

    ``setting``, when given, names the ``MetricContext`` field that does what the rejected spec
    tried (``tokenize``): the caller points the user at its own option for it."""

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


def tokenizer_for(tgt_lang: str | None) -> str:
    """sacreBLEU tokenizer by target language: ``ja`` → ja-mecab, ``zh`` → zh, otherwise 13a
    (the choice sacreBLEU makes itself from ``-l SRC-TGT``)."""
    return {"ja": "ja-mecab", "zh": "zh"}.get(tgt_lang or "", "13a")


CJK = ("ja", "zh")
DEFAULT_COMET_MODEL = "Unbabel/wmt22-comet-da"  # WMT22 COMET-DA: eval's `comet` and translate's MBR utility


class CometScorer(Protocol):
    """What a COMET metric needs from the worker client (in2x_cli.comet.CometClient)."""

    requires_references: bool

    def score(self, rows: Sequence[dict[str, str]]) -> list[float]: ...


class EsaScorer(Protocol):
    """What gemba-esa needs from the judge (in2x_cli.evaluate.gemba.EsaJudge)."""

    signature: str

    def judge(self, srcs: Sequence[str], hyps: Sequence[str], src_lang: str | None, tgt_lang: str | None) -> list[Any]: ...


@dataclass(frozen=True)
class MetricContext:
    """Everything a metric factory may need: the target language, a tokenizer override, and a
    function that opens a COMET scorer for a model name or path (None: COMET unavailable)."""

    tgt_lang: str | None = None
    tokenize: str | None = None
    comet: Callable[[str], CometScorer] | None = None
    src_lang: str | None = None
    judge: Callable[[str], EsaScorer] | None = None  # opens an LLM judge for a model (gemba-esa)
    judge_model: str | None = None  # --judge-model: gemba-esa's judge unless gemba-esa=MODEL names one


class Metric:
    """Base class. Subclasses set ``name`` and implement the hooks below."""

    name: ClassVar[str] = "metric"
    higher_is_better: bool = True
    # dtype of the statistics when resampled by the significance tests. sacreBLEU resamples
    # float32 copies of its statistics (sacrebleu/significance.py); we mirror that for its
    # metrics so that p-values and confidence intervals match sacreBLEU's to the last digit.
    resample_dtype: ClassVar[str] = "float64"
    needs_reference: bool = True

    @classmethod
    def build(cls, arg: str | None, ctx: MetricContext) -> Metric:
        if arg is not None:
            raise MetricError(f"metric {cls.name!r} takes no '=' argument (got {arg!r})")
        return cls()

    # -- hooks -------------------------------------------------------------------------------
    def segment_stats(self, hyps: Sequence[str], refs: Sequence[str] | None, srcs: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def score_from_stats(self, totals: Sequence[float]) -> float:
        raise NotImplementedError

    def segment_scores(self, stats: np.ndarray) -> list[float]:
        return [self.score_from_stats(row.tolist()) for row in stats]

    def detail(self, totals: Sequence[float]) -> str | None:
        """A human-readable breakdown of a corpus score (BLEU's precisions and brevity penalty)."""
        return None

    def signature(self) -> str:
        return f"version:in2x-{__version__}"

    def segment_signature(self) -> str:
        return self.signature()

    # -- derived -----------------------------------------------------------------------------
    def corpus_score(self, stats: np.ndarray) -> float:
        """The score of all rows of ``stats`` together (a system or any subset of it)."""
        return self.score_from_stats(stats.sum(axis=0).tolist())


# --------------------------------------------------------------------------- sacreBLEU


REF_CACHE_SEGMENTS = 1000  # references whose sacreBLEU cache is held at once (bounded eval memory)


class SacreMetric(Metric):
    """A sacreBLEU metric object with the references cached once (``prepare``), then used for
    every system: exactly what ``sacrebleu -i sys1 sys2 ...`` does, minus the re-reading.

    Lines are right-stripped like the sacreBLEU command line does (``line.rstrip()``), so scores
    equal ``sacrebleu REF -i HYP`` on the same files. The statistics hooks are sacreBLEU's own
    ``_extract_corpus_statistics`` / ``_compute_score_from_stats`` (what its significance module
    uses): private API, hence the ``sacrebleu<3`` pin; tests/core/test_metrics.py checks them."""

    resample_dtype = "float32"
    _segment_metric: Any = None

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._metric: Any = None
        self._refs: Sequence[str] | None = None  # the list the cache was built from

    def _make(self, **overrides: Any) -> Any:
        raise NotImplementedError

    def prepare(self, refs: Sequence[str]) -> None:
        if self._metric is not None and self._refs is refs:
            return
        self._metric = self._make(references=[[r.rstrip() for r in refs]])
        self._refs = refs

    def segment_stats(self, hyps: Sequence[str], refs: Sequence[str] | None, srcs: Sequence[str]) -> np.ndarray:
        """Per-segment statistics. sacreBLEU caches every reference's n-gram counts (tens of KB per
        segment for chrF), so a large test set is processed ``REF_CACHE_SEGMENTS`` segments at a
        time: memory stays bounded and the statistics are the same (they are per segment)."""
        import numpy as np

        if refs is None:
            raise MetricError(f"{self.name} needs references")
        if len(refs) <= REF_CACHE_SEGMENTS:  # one cache, reused by every system of the test set
            self.prepare(refs)
            return np.asarray(self._metric._extract_corpus_statistics([h.rstrip() for h in hyps], None))
        parts = []
        for a in range(0, len(refs), REF_CACHE_SEGMENTS):
            self.prepare(list(refs[a : a + REF_CACHE_SEGMENTS]))
            parts.append(np.asarray(self._metric._extract_corpus_statistics([h.rstrip() for h in hyps[a : a + REF_CACHE_SEGMENTS]], None)))
        return np.concatenate(parts)

    def score_from_stats(self, totals: Sequence[float]) -> float:
        return float(self._metric._compute_score_from_stats(list(totals)).score)

    def signature(self) -> str:
        if self._metric is None:
            raise RuntimeError("signature() before prepare()")
        return self._metric.get_signature().format()


class Bleu(SacreMetric):
    """BLEU (Papineni et al. 2002) via sacreBLEU, tokenizer by target language.
    Segment scores are sentence-BLEU with effective order, as ``sacrebleu -sl`` computes them."""

    name = "bleu"

    @classmethod
    def build(cls, arg: str | None, ctx: MetricContext) -> Metric:
        if arg is not None:
            raise MetricError(f"bleu takes no '=' argument (got {arg!r})", setting="tokenize")
        return cls(tokenize=ctx.tokenize or tokenizer_for(ctx.tgt_lang))

    def _make(self, **overrides: Any) -> Any:
        from sacrebleu.metrics import BLEU

        return BLEU(**self.options, **overrides)

    def prepare(self, refs: Sequence[str]) -> None:
        super().prepare(refs)
        from sacrebleu.metrics import BLEU

        if self._segment_metric is None:
            self._segment_metric = BLEU(**self.options, effective_order=True)
        self._segment_metric.num_refs = self._metric.num_refs

    def segment_scores(self, stats: np.ndarray) -> list[float]:
        seg = self._segment_metric
        return [float(seg._compute_score_from_stats(row.tolist()).score) for row in stats]

    def segment_signature(self) -> str:
        return self._segment_metric.get_signature().format()

    def detail(self, totals: Sequence[float]) -> str | None:
        s = self._metric._compute_score_from_stats(list(totals))
        return s._verbose


class ChrF(SacreMetric):
    """chrF++ (Popović 2017): character 6-grams plus word 1–2-grams, β = 2, via sacreBLEU."""

    name = "chrf"

    @classmethod
    def build(cls, arg: str | None, ctx: MetricContext) -> Metric:
        if arg is not None:
            raise MetricError(f"chrf takes no '=' argument (got {arg!r})")
        return cls(word_order=2)

    def _make(self, **overrides: Any) -> Any:
        from sacrebleu.metrics import CHRF

        return CHRF(**self.options, **overrides)


class Ter(SacreMetric):
    """TER (Snover et al. 2006) via sacreBLEU with its TERCOM defaults; lower is better.

    TER splits words on whitespace only, so on unsegmented Japanese/Chinese a sentence is a few
    "words". ``ter=asian`` turns on sacreBLEU's ``--ter-normalized --ter-asian-support`` (CJK
    split into characters): meaningful for ja/zh, but its shift search is slow on character
    sequences (about a minute per 50 WMT24 en-ja segments on one CPU core), hence opt-in."""

    name = "ter"
    higher_is_better = False

    @classmethod
    def build(cls, arg: str | None, ctx: MetricContext) -> Metric:
        if arg not in (None, "asian"):
            raise MetricError(f"ter takes no argument or 'asian' (ter=asian), got {arg!r}")
        asian = arg == "asian"
        return cls(normalized=asian, asian_support=asian)

    def _make(self, **overrides: Any) -> Any:
        from sacrebleu.metrics import TER

        return TER(**self.options, **overrides)


# --------------------------------------------------------------------------- COMET


class Comet(Metric):
    """COMET (Rei et al. 2020, https://aclanthology.org/2020.emnlp-main.213): a neural metric
    run by the COMET worker (in2x_cli/comet.py). The model is a name (downloaded when online)
    or a local checkpoint (``…/checkpoints/model.ckpt`` or the directory holding it). Reference-
    free models (CometKiwi) score (src, mt); the others (src, mt, ref). System score = mean."""

    name = "comet"
    default_model: ClassVar[str] = DEFAULT_COMET_MODEL

    def __init__(self, model: str, scorer: CometScorer) -> None:
        self.model = model
        self.scorer = scorer
        self.needs_reference = bool(scorer.requires_references)

    @classmethod
    def build(cls, arg: str | None, ctx: MetricContext) -> Metric:
        model = arg or cls.default_model
        if ctx.comet is None:
            raise MetricError(f"{cls.name} needs the COMET environment, which is not available")
        return cls(model, ctx.comet(model))

    def segment_stats(self, hyps: Sequence[str], refs: Sequence[str] | None, srcs: Sequence[str]) -> np.ndarray:
        import numpy as np

        if self.needs_reference:
            if refs is None:
                raise MetricError(f"{self.name} ({self.model}) is reference-based and needs references")
            rows = [{"src": s, "mt": h, "ref": r} for s, h, r in zip(srcs, hyps, refs, strict=True)]
        else:
            rows = [{"src": s, "mt": h} for s, h in zip(srcs, hyps, strict=True)]
        scores = np.asarray(self.scorer.score(rows), dtype=np.float64)
        return np.column_stack([scores, np.ones_like(scores)])

    def score_from_stats(self, totals: Sequence[float]) -> float:
        return float(totals[0] / totals[1]) if totals[1] else float("nan")

    def segment_scores(self, stats: np.ndarray) -> list[float]:
        return [float(x) for x in stats[:, 0]]

    def signature(self) -> str:
        # the COMET library version and torch's float32 matmul precision change the scores (≤3e-4 for the
        # precision: docs/eval.md), so they are part of what the number means
        comet = getattr(self.scorer, "comet_version", None)
        precision = getattr(self.scorer, "matmul_precision", None)
        dtype = getattr(self.scorer, "dtype", None)
        extra = (f"|comet:{comet}" if comet else "") + (f"|matmul:{precision}" if precision else "") + (f"|dtype:{dtype}" if dtype else "")
        return f"model:{model_label(self.model)}|nrefs:{1 if self.needs_reference else 0}{extra}|version:in2x-{__version__}"


class CometKiwi(Comet):
    """CometKiwi (Rei et al. 2022): reference-free COMET (quality estimation)."""

    name = "cometkiwi"
    default_model = "Unbabel/wmt22-cometkiwi-da"


class XComet(Comet):
    """xCOMET (Guerreiro et al. 2024), reference-based, used by WMT25's AutoRank (XCOMET-XL)."""

    name = "xcomet"
    default_model = "Unbabel/XCOMET-XL"


# --------------------------------------------------------------------------- LLM judge


class GembaEsa(Metric):
    """GEMBA-ESA (core/gemba.py): an LLM judge marks error spans, then scores 0–100 against the
    ESA anchors; reference-free. A segment whose judge replies stay unreadable gets no score:
    its statistics are [0, 0], so the system score is the mean over the *scored* segments and the
    segment score is NaN (null in JSON). ``judgements()`` hands the spans of each scored system
    to the caller (``--segments``), one list per ``segment_stats`` call, in order."""

    name = "gemba-esa"
    needs_reference = False
    needs_source = True

    def __init__(self, model: str, judge: EsaScorer, src_lang: str | None, tgt_lang: str | None) -> None:
        self.model = model
        self.judge = judge
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self._judgements: list[list[Any]] = []

    @classmethod
    def build(cls, arg: str | None, ctx: MetricContext) -> Metric:
        model = arg or ctx.judge_model
        if not model:
            raise MetricError("gemba-esa needs a judge model: pass --judge-model MODEL (or gemba-esa=MODEL)")
        if ctx.judge is None:
            raise MetricError("gemba-esa needs an LLM judge, which is not available here")
        return cls(model, ctx.judge(model), ctx.src_lang, ctx.tgt_lang)

    def segment_stats(self, hyps: Sequence[str], refs: Sequence[str] | None, srcs: Sequence[str]) -> np.ndarray:
        import numpy as np

        results = self.judge.judge(list(srcs), list(hyps), self.src_lang, self.tgt_lang)
        self._judgements.append(results)
        rows = [[r.score, 1.0] if r.score is not None else [0.0, 0.0] for r in results]
        return np.asarray(rows, dtype=np.float64).reshape(len(results), 2)

    def score_from_stats(self, totals: Sequence[float]) -> float:
        return float(totals[0] / totals[1]) if totals[1] else float("nan")

    def segment_scores(self, stats: np.ndarray) -> list[float]:
        return [float(s) if n else float("nan") for s, n in stats.tolist()]

    def judgements(self) -> list[list[Any]]:
        """The ``EsaResult`` lists since the last call, one per scored system (then cleared)."""
        out, self._judgements = self._judgements, []
        return out

    def signature(self) -> str:
        return f"judge:{model_label(self.model)}|{self.judge.signature}|nrefs:0|version:in2x-{__version__}"


# --------------------------------------------------------------------------- user functions


class FunctionMetric(Metric):
    """A plain function ``(srcs, hyps, refs) -> list[float]`` as a metric; system score = mean."""

    def __init__(self, name: str, fn: Callable[..., Sequence[float]]) -> None:
        self.key = name
        self.fn = fn
        # optional attributes on the function: needs_reference (default True), higher_is_better
        self.needs_reference = bool(getattr(fn, "needs_reference", True))
        self.higher_is_better = bool(getattr(fn, "higher_is_better", True))

    def segment_stats(self, hyps: Sequence[str], refs: Sequence[str] | None, srcs: Sequence[str]) -> np.ndarray:
        import numpy as np

        scores = [float(x) for x in self.fn(list(srcs), list(hyps), None if refs is None else list(refs))]
        if len(scores) != len(hyps):
            raise MetricError(f"metric function {self.key!r} returned {len(scores)} scores for {len(hyps)} segments")
        arr = np.asarray(scores, dtype=np.float64)
        return np.column_stack([arr, np.ones_like(arr)])

    def score_from_stats(self, totals: Sequence[float]) -> float:
        return float(totals[0] / totals[1]) if totals[1] else float("nan")

    def segment_scores(self, stats: np.ndarray) -> list[float]:
        return [float(x) for x in stats[:, 0]]

    def signature(self) -> str:
        mod = getattr(self.fn, "__module__", "?")
        return f"fn:{mod}.{getattr(self.fn, '__qualname__', self.key)}|version:in2x-{__version__}"


# --------------------------------------------------------------------------- registry

# Plain registry. Extend it by passing ``module:attr`` in --metrics instead of editing this.
METRICS: dict[str, type[Metric]] = {
    "bleu": Bleu,
    "chrf": ChrF,
    "ter": Ter,
    "comet": Comet,
    "cometkiwi": CometKiwi,
    "xcomet": XComet,
    "gemba-esa": GembaEsa,
}
ALIASES = {"gemba_esa": "gemba-esa", "gemba": "gemba-esa", "chrf++": "chrf", "chrf2++": "chrf", "sacrebleu": "bleu", "comet-kiwi": "cometkiwi", "xcomet-xl": "xcomet"}


@dataclass(frozen=True)
class MetricSpec:
    """One entry of ``--metrics``: ``name`` (registry key or module:attr), optional ``arg``
    (after '='), and the ``key`` the scores are reported under."""

    name: str
    arg: str | None = None
    key: str = ""


def model_label(model: str) -> str:
    """A short, stable label for a model name or checkpoint path (``…/wmt22-comet-da``)."""
    path = model.rstrip("/")
    if path.endswith(".ckpt"):
        parent = os.path.dirname(path)
        path = os.path.dirname(parent) if os.path.basename(parent) == "checkpoints" else parent
    return os.path.basename(path.rstrip("/")) or model


def parse_metric_specs(text: str | Sequence[str]) -> list[MetricSpec]:
    """``"bleu,chrf,comet=/ckpt"`` → specs with unique keys.

    The key is the metric name; if two specs share a name, each key gets ``:LABEL`` with the
    short model label of its argument (``comet:wmt22-comet-da``, ``comet:tiny``)."""
    items = [text] if isinstance(text, str) else list(text)
    raw: list[tuple[str, str | None]] = []
    for chunk in items:
        for part in chunk.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, arg = part.partition("=")
            name = name.strip()
            name = ALIASES.get(name.lower(), name.lower()) if ":" not in name else name
            if sep and not arg.strip():
                raise MetricError(f"metric spec {part!r} has an empty argument after '='")
            raw.append((name, arg.strip() if sep else None))
    if not raw:
        raise MetricError("no metrics given")
    for name, _ in raw:
        if ":" not in name and name not in METRICS:
            raise MetricError(f"unknown metric {name!r} (known: {', '.join(METRICS)}; or module:attr for your own)")
    base_keys = [name.rsplit(":", 1)[-1] if ":" in name else name for name, _ in raw]
    specs = []
    for (name, arg), key in zip(raw, base_keys, strict=True):
        if base_keys.count(key) > 1:
            key = f"{key}:{model_label(arg) if arg else 'default'}"
        specs.append(MetricSpec(name, arg, key))
    keys = [s.key for s in specs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise MetricError(f"metric {dup[0]!r} is given twice")
    return specs


def resolve(name: str) -> Any:
    """``module:attr`` → the object (a Metric subclass or a scoring function)."""
    return import_dotted(name, what="metric", error=MetricError)


def build_metric(spec: MetricSpec, ctx: MetricContext) -> Metric:
    if ":" not in spec.name:
        return METRICS[spec.name].build(spec.arg, ctx)
    obj = resolve(spec.name)
    if isinstance(obj, type) and issubclass(obj, Metric):
        return obj.build(spec.arg, ctx)
    if callable(obj):
        if spec.arg is not None:
            raise MetricError(f"metric function {spec.name!r} takes no '=' argument")
        return FunctionMetric(spec.key, obj)
    raise MetricError(f"{spec.name!r} is neither a Metric subclass nor a function")


@dataclass
class SystemScores:
    """One system's statistics and scores for one metric."""

    stats: Any  # np.ndarray [n_segments, k]
    score: float
    segments: list[float] = field(default_factory=list)


def score_system(
    metric: Metric, hyps: Sequence[str], refs: Sequence[str] | None, srcs: Sequence[str], *, segments: bool = True
) -> SystemScores:
    """Statistics, corpus score and (unless ``segments=False``) segment scores of one system."""
    stats = metric.segment_stats(hyps, refs, srcs)
    return SystemScores(stats=stats, score=metric.corpus_score(stats), segments=metric.segment_scores(stats) if segments else [])


def score_systems(
    metric: Metric, systems: Sequence[Sequence[str]], refs: Sequence[str] | None, srcs: Sequence[str], *, segments: bool = True
) -> list[SystemScores]:
    """``score_system`` for several systems of one test set. For sacreBLEU metrics on a large test
    set the work goes chunk by chunk, each chunk's reference cache shared by every system, so
    memory stays bounded without re-reading the references once per system."""
    import numpy as np

    if not isinstance(metric, SacreMetric) or refs is None or len(refs) <= REF_CACHE_SEGMENTS:
        return [score_system(metric, hyps, refs, srcs, segments=segments) for hyps in systems]
    parts: list[list[np.ndarray]] = [[] for _ in systems]
    for a in range(0, len(refs), REF_CACHE_SEGMENTS):
        metric.prepare(list(refs[a : a + REF_CACHE_SEGMENTS]))
        for part, hyps in zip(parts, systems, strict=True):
            part.append(np.asarray(metric._metric._extract_corpus_statistics([h.rstrip() for h in hyps[a : a + REF_CACHE_SEGMENTS]], None)))
    out = []
    for part in parts:
        stats = np.concatenate(part)
        out.append(SystemScores(stats=stats, score=metric.corpus_score(stats), segments=metric.segment_scores(stats) if segments else []))
    return out
