"""The ``in2x eval`` (score) stage, read top to bottom in ``run_eval``:

1. check the options and outputs, parse ``--metrics`` (``core.metrics``);
2. read the test sets (``inputs``: JSONL rows, line-aligned files or a WMT24 directory);
3. per test set: check references and sources, build the metrics, score, test and rank
   (``scoring``);
4. write the segment scores (``--segments``), print the tables (``tables``) and write the
   ``in2x.eval/1`` document (``io.documents.EVAL_SCHEMA_DOC``).

``in2x eval autorank`` is ``autorank.run_autorank``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from in2x_cli import console
from in2x_cli.errors import UserError
from in2x_cli.evaluate.config import BY_FIELDS, EvalConfig
from in2x_cli.evaluate.gemba_report import report_judgements
from in2x_cli.evaluate.inputs import load_test_sets, split_named
from in2x_cli.evaluate.overfit import flag_reward_overlap
from in2x_cli.evaluate.scoring import check_references, check_sources, score_test_set
from in2x_cli.evaluate.tables import render_tables
from in2x_cli.io.documents import EVAL_SCHEMA


def _comet_opener(batch_size: int, matmul_precision: str = "highest", half: bool = False) -> Callable[[str], Any]:
    def open_client(model: str) -> Any:
        from in2x_cli.comet import get_client

        return get_client(model, batch_size=batch_size, matmul_precision=matmul_precision, half=half)

    return open_client


def _judge_opener(cfg: EvalConfig) -> Callable[[str], Any]:
    """gemba-esa's judge: one ``EsaJudge`` per model, its backend loaded on first use."""
    judges: dict[str, Any] = {}

    def open_judge(model: str) -> Any:
        from in2x_cli.evaluate.gemba import EsaJudge, JudgeSettings

        if model not in judges:
            judges[model] = EsaJudge(JudgeSettings(model, cfg.judge_backend, cfg.judge_max_tokens, cfg.judge_retries, cfg.seed))
        return judges[model]

    return open_judge


# A MetricError's ``setting`` (a MetricContext field) as the user sets it: the option to use instead.
SETTING_HINTS = {"tokenize": "use --tokenize to pick a tokenizer"}


def _metric_user_error(exc: Exception) -> UserError:
    hint = SETTING_HINTS.get(getattr(exc, "setting", None) or "")
    return UserError(f"{exc}; {hint}" if hint else str(exc))


# --comet-numerics: how the COMET worker computes (torch float32 matmul precision, float16 weights)
COMET_NUMERICS = {"float32": ("highest", False), "comet-score": ("high", True)}


def _comet_numerics(name: str) -> tuple[str, bool]:
    if name not in COMET_NUMERICS:
        raise UserError(f"--comet-numerics must be one of {', '.join(COMET_NUMERICS)}, got {name!r}")
    return COMET_NUMERICS[name]


JUDGE_OPTIONS = {"judge_model": "--judge-model", "judge_backend": "--judge-backend", "judge_max_tokens": "--judge-max-tokens",
                 "judge_retries": "--judge-retries"}
COMET_METRICS = ("comet", "cometkiwi", "xcomet")


def _check_options_used(cfg: EvalConfig, names: set[str]) -> None:
    """An option that only a metric not asked for reads would change nothing: say so, never ignore it."""
    import dataclasses

    defaults = {f.name: f.default for f in dataclasses.fields(EvalConfig)}
    if "gemba-esa" not in names:
        given = [flag for field, flag in JUDGE_OPTIONS.items() if getattr(cfg, field) != defaults[field]]
        if given:
            raise UserError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to -m gemba-esa, which is not among the metrics")
    if cfg.comet_numerics != defaults["comet_numerics"] and not names & set(COMET_METRICS):
        raise UserError(f"--comet-numerics only applies to COMET metrics ({', '.join(COMET_METRICS)}), none of which is among the metrics")


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Parse metrics, read inputs, score, test, rank; write the segment scores, the tables and the
    JSON document (returned)."""
    from in2x_cli import provenance
    from in2x_cli.core.metrics import MetricContext, MetricError, build_metric, parse_metric_specs
    from in2x_cli.io import JsonlWriter, check_output_path, write_json

    check_output_path(cfg.output)
    if cfg.segments:
        check_output_path(cfg.segments)
        if cfg.segments == "-" and cfg.output == "-":
            raise UserError("--segments - and the JSON document would both go to stdout: give -o FILE or --segments FILE")
    _comet_numerics(cfg.comet_numerics)
    if cfg.paired not in (None, "bs", "ar"):
        raise UserError(f"--paired must be bs (bootstrap) or ar (approximate randomisation), got {cfg.paired!r}")
    unknown_by = [b for b in cfg.by if b not in BY_FIELDS]
    if unknown_by:
        raise UserError(f"--by {unknown_by[0]!r}: expected domain or doc")
    if cfg.tokenize is not None:
        from sacrebleu.metrics import BLEU

        if cfg.tokenize not in BLEU.TOKENIZERS:
            raise UserError(f"--tokenize {cfg.tokenize!r}: expected one of {', '.join(BLEU.TOKENIZERS)}")
    try:
        specs = parse_metric_specs(cfg.metrics)
    except MetricError as exc:
        raise _metric_user_error(exc) from None
    _check_options_used(cfg, {s.name for s in specs})
    test_sets = load_test_sets(cfg)
    sacre = [s.key for s in specs if s.name in ("bleu", "chrf", "ter")]  # known before any worker starts
    results, rows = [], []
    judge_opener = _judge_opener(cfg)
    for ts in test_sets:
        if sacre and cfg.hyps and cfg.ref is None and cfg.wmt24 is None:
            raise UserError(f"{', '.join(sacre)} compare with references: pass --ref FILE (or use a reference-free metric: cometkiwi)")
        check_references(ts, sacre)
        for name, (cut, total) in ts.truncated.items():
            console.warn(f"{name}: {cut} of {total} hypotheses were truncated (cut at --max-tokens, marked by in2x translate): "
                         "its scores measure the cut text")
        ctx = MetricContext(
            tgt_lang=ts.tgt_lang, tokenize=cfg.tokenize, comet=_comet_opener(cfg.comet_batch_size, *_comet_numerics(cfg.comet_numerics)),
            src_lang=ts.src_lang, judge=judge_opener, judge_model=cfg.judge_model,
        )  # fmt: skip
        try:
            metrics = {s.key: build_metric(s, ctx) for s in specs}
        except MetricError as exc:
            raise _metric_user_error(exc) from None
        check_references(ts, [k for k, m in metrics.items() if m.needs_reference])
        check_sources(ts, metrics, text_mode_without_src=bool(cfg.hyps) and cfg.src is None and cfg.wmt24 is None)
        total = len(metrics) * len(ts.systems) + (len(metrics) if cfg.paired else 0)
        with console.progress() as bar:
            task = bar.add_task(f"eval {ts.pair or ts.source}", total=total)
            try:
                result, seg_rows = score_test_set(ts, metrics, cfg, lambda d, t=task: bar.update(t, advance=1, description=d))
            except MetricError as exc:
                raise _metric_user_error(exc) from None
        report_judgements(result)
        flag_reward_overlap(result, cfg)
        results.append(result)
        rows.extend(seg_rows)
    named = [split_named(p)[1] if p != "-" else p for p in (cfg.input, *cfg.more_inputs, *cfg.hyps) if p]
    inputs = [p for p in (cfg.src, cfg.ref, cfg.wmt24) if p] + named
    doc = {"schema": EVAL_SCHEMA, "results": results, "provenance": provenance.collect(command="eval", config=cfg, inputs=inputs, seed=cfg.seed)}
    if cfg.segments:
        # the metrics' directions travel with the segment file, so `eval autorank` can negate TER & co.
        directions = {k: info["higher_is_better"] for r in doc["results"] for k, info in r["metrics"].items()}
        signatures = {k: info["segment_signature"] for r in doc["results"] for k, info in r["metrics"].items()}
        meta = {**doc["provenance"], "metrics_higher_is_better": directions, "metric_signatures": signatures}
        with JsonlWriter(cfg.segments, meta=meta) as writer:
            writer.write_many(rows)
    for result in doc["results"]:
        render_tables(result)
    write_json(cfg.output, doc)
    return doc
