"""core/metrics.py: sacreBLEU equality on real WMT24 files, specs, COMET and function metrics."""

from __future__ import annotations

import pytest

from in2x_cli.core.metrics import (
    Bleu,
    ChrF,
    Comet,
    CometKiwi,
    MetricContext,
    MetricError,
    MetricSpec,
    Ter,
    build_metric,
    model_label,
    parse_metric_specs,
    score_system,
    tokenizer_for,
)


def length_ratio(srcs, hyps, refs):
    """A user metric for the module:attr path: hypothesis/reference length ratio."""
    return [len(h) / max(1, len(r)) for h, r in zip(hyps, refs, strict=True)]


def _wmt24(shared_data, pair, systems):
    d = shared_data / "wmt24" / pair
    read = lambda p: p.read_text(encoding="utf-8").split("\n")[1:-1]  # noqa: E731 - drop canary and final newline
    ref, src = read(d / f"{pair}.refA.txt"), read(d / f"{pair}.txt")
    return src, ref, {s: read(d / "system-outputs" / f"{s}.txt") for s in systems}


def test_tokenizer_follows_the_target_language():
    assert tokenizer_for("ja") == "ja-mecab"
    assert tokenizer_for("zh") == "zh"
    assert tokenizer_for("en") == tokenizer_for("de") == tokenizer_for(None) == "13a"
    assert "tok:ja-mecab" in _prepared(Bleu.build(None, MetricContext(tgt_lang="ja"))).signature()
    assert "tok:zh" in _prepared(Bleu.build(None, MetricContext(tgt_lang="zh"))).signature()
    assert "tok:13a" in _prepared(Bleu.build(None, MetricContext(tgt_lang="de"))).signature()
    assert "tok:char" in _prepared(Bleu.build(None, MetricContext(tgt_lang="ja", tokenize="char"))).signature()


def _prepared(metric):
    metric.prepare(["a b c"])
    return metric


@pytest.mark.parametrize(
    ("pair", "systems"),
    [("en-ja", ["GPT-4", "Aya23", "Team-J"]), ("ja-zh", ["Claude-3.5", "IOL-Research", "ONLINE-W"])],
)
def test_corpus_scores_equal_sacrebleu_api_on_wmt24(shared_data, pair, systems):
    from sacrebleu.metrics import BLEU, CHRF, TER

    src, ref, outputs = _wmt24(shared_data, pair, systems)
    tgt = pair.split("-")[1]
    ctx = MetricContext(tgt_lang=tgt)
    ours = {"bleu": Bleu.build(None, ctx), "chrf": ChrF.build(None, ctx), "ter": Ter.build(None, ctx)}
    theirs = {"bleu": BLEU(tokenize=tokenizer_for(tgt), references=[ref]), "chrf": CHRF(word_order=2, references=[ref]), "ter": TER(references=[ref])}
    for name, hyps in outputs.items():
        for key, metric in ours.items():
            got = score_system(metric, hyps, ref, src)
            want = theirs[key].corpus_score(hyps, None)
            assert got.score == want.score, (pair, name, key)
            assert metric.signature() == theirs[key].get_signature().format(), key
            assert len(got.segments) == len(hyps)
    if pair == "ja-zh":
        assert "" in outputs["ONLINE-W"]  # its empty hypothesis line is scored like any other


def test_segment_scores_equal_sacrebleu_sentence_scores(shared_data):
    from sacrebleu.metrics import BLEU, CHRF, TER

    src, ref, outputs = _wmt24(shared_data, "en-ja", ["Phi-3-Medium"])
    hyps = outputs["Phi-3-Medium"][120:180]
    src, ref = src[120:180], ref[120:180]
    assert "" in hyps  # an empty translation: a valid (bad) hypothesis with a score
    ctx = MetricContext(tgt_lang="ja")
    pairs = [
        (Bleu.build(None, ctx), BLEU(tokenize="ja-mecab", effective_order=True)),
        (ChrF.build(None, ctx), CHRF(word_order=2)),
        (Ter.build(None, ctx), TER()),
    ]
    for ours, theirs in pairs:
        got = score_system(ours, hyps, ref, src).segments
        want = [theirs.sentence_score(h, [r]).score for h, r in zip(hyps, ref, strict=True)]
        assert got == want, ours.name
    bleu = pairs[0][0]
    assert "eff:yes" in bleu.segment_signature() and "eff:no" in bleu.signature()


def test_subset_scores_equal_sacrebleu_on_the_subset(shared_data):
    """--by domain: a group's score comes from its rows of the statistics, no re-tokenising."""
    import numpy as np
    from sacrebleu.metrics import BLEU

    src, ref, outputs = _wmt24(shared_data, "en-ja", ["GPT-4"])
    hyps = outputs["GPT-4"]
    metric = Bleu.build(None, MetricContext(tgt_lang="ja"))
    stats = score_system(metric, hyps, ref, src).stats
    idx = np.arange(100, 300)
    want = BLEU(tokenize="ja-mecab").corpus_score([hyps[i] for i in idx], [[ref[i] for i in idx]]).score
    assert metric.corpus_score(stats[idx]) == want


def test_golden_values_by_hand():
    ctx = MetricContext(tgt_lang="en")
    ref = ["the cat sat on the mat", "a dog ran"]
    for metric, perfect in ((Bleu.build(None, ctx), 100.0), (ChrF.build(None, ctx), 100.0), (Ter.build(None, ctx), 0.0)):
        assert score_system(metric, ref, ref, ["", ""]).score == pytest.approx(perfect)
    # TER by hand: "the cat sat" vs "the cat sat on the mat": 3 insertions / 6 reference words
    ter = Ter.build(None, ctx)
    assert score_system(ter, ["the cat sat"], ["the cat sat on the mat"], [""]).score == pytest.approx(50.0)
    # an empty hypothesis scores 0 BLEU and 100 TER (all deletions), it is not dropped
    assert score_system(Bleu.build(None, ctx), [""], ["a dog ran"], [""]).score == 0.0
    assert score_system(ter, [""], ["a dog ran"], [""]).score == pytest.approx(100.0)
    # trailing whitespace is stripped like the sacrebleu command line does
    stripped = score_system(Bleu.build(None, ctx), ["the cat sat on the mat  "], ["the cat sat on the mat\t"], [""])
    assert stripped.score == pytest.approx(100.0)


def test_ter_asian_option_splits_cjk_characters():
    metric = Ter.build("asian", MetricContext(tgt_lang="ja"))
    res = score_system(metric, ["猫が座った"], ["猫が座る"], [""])
    assert "asian:yes" in metric.signature() and "norm:yes" in metric.signature()
    assert res.score == pytest.approx(25.0)  # one substitution over four characters
    with pytest.raises(MetricError, match="asian"):
        Ter.build("fast", MetricContext())


def test_metric_specs_parse_alias_and_key():
    specs = parse_metric_specs("bleu, chrF++ ,ter,cometkiwi")
    assert [(s.name, s.key) for s in specs] == [("bleu", "bleu"), ("chrf", "chrf"), ("ter", "ter"), ("cometkiwi", "cometkiwi")]
    two = parse_metric_specs(["comet=/x/wmt22-comet-da/checkpoints/model.ckpt", "comet=runs/tiny"])
    assert [s.key for s in two] == ["comet:wmt22-comet-da", "comet:tiny"]
    assert parse_metric_specs("tests.core.test_metrics:length_ratio")[0] == MetricSpec(
        "tests.core.test_metrics:length_ratio", None, "length_ratio"
    )
    assert model_label("Unbabel/wmt22-comet-da") == "wmt22-comet-da"
    with pytest.raises(MetricError, match="unknown metric 'blue'"):
        parse_metric_specs("blue")
    with pytest.raises(MetricError, match="given twice"):
        parse_metric_specs("bleu,bleu")
    with pytest.raises(MetricError, match="empty argument"):
        parse_metric_specs("comet=")
    with pytest.raises(MetricError, match="no metrics"):
        parse_metric_specs(" , ")
    with pytest.raises(MetricError, match="takes no"):
        build_metric(MetricSpec("bleu", "x", "bleu"), MetricContext())


class FakeComet:
    def __init__(self, requires_references: bool) -> None:
        self.requires_references = requires_references
        self.calls: list[list[dict[str, str]]] = []

    def score(self, rows):
        self.calls.append(list(rows))
        return [len(r["mt"]) / 10 for r in rows]


def test_comet_metric_mean_of_segments_with_an_injected_scorer():
    ref_based = FakeComet(True)
    metric = build_metric(MetricSpec("comet", "some/model", "comet"), MetricContext(comet=lambda model: ref_based))
    assert isinstance(metric, Comet) and metric.model == "some/model" and metric.needs_reference
    res = score_system(metric, ["abcd", "ab"], ["x", "y"], ["s1", "s2"])
    assert res.segments == [0.4, 0.2] and res.score == pytest.approx(0.3)
    assert ref_based.calls[0] == [{"src": "s1", "mt": "abcd", "ref": "x"}, {"src": "s2", "mt": "ab", "ref": "y"}]
    assert metric.corpus_score(res.stats[[0]]) == pytest.approx(0.4)
    with pytest.raises(MetricError, match="reference-based"):
        metric.segment_stats(["a"], None, ["s"])
    kiwi = build_metric(MetricSpec("cometkiwi", None, "cometkiwi"), MetricContext(comet=lambda model: FakeComet(False)))
    assert isinstance(kiwi, CometKiwi) and kiwi.model == "Unbabel/wmt22-cometkiwi-da" and not kiwi.needs_reference
    assert score_system(kiwi, ["abc"], None, ["s"]).score == pytest.approx(0.3)
    assert "nrefs:0" in kiwi.signature() and "model:wmt22-cometkiwi-da" in kiwi.signature()
    with pytest.raises(MetricError, match="COMET environment"):
        build_metric(MetricSpec("comet", None, "comet"), MetricContext(comet=None))


def test_user_function_metric_by_dotted_path():
    spec = parse_metric_specs("tests.core.test_metrics:length_ratio")[0]
    metric = build_metric(spec, MetricContext())
    res = score_system(metric, ["abcd", ""], ["ab", "abc"], ["", ""])
    assert res.segments == [2.0, 0.0] and res.score == pytest.approx(1.0)
    assert metric.higher_is_better
    with pytest.raises(MetricError, match="cannot import"):
        build_metric(MetricSpec("no_such_module_xyz:f", None, "f"), MetricContext())
    with pytest.raises(MetricError, match="has no"):
        build_metric(MetricSpec("tests.core.test_metrics:nope", None, "nope"), MetricContext())
