"""Documents one stage writes and another reads back: their schemas and the checks on reading.

- ``in2x.eval/1``: ``in2x eval`` writes it (``EVAL_SCHEMA_DOC``); ``eval autorank`` and ``plot``
  read it back;
- ``in2x.autorank/1``: ``in2x eval autorank`` writes it; ``plot`` reads it back;
- ``metrics.jsonl``: training (cpt / sft / grpo) writes one row per logging step; ``plot`` reads it.

A reader gets the document with the fields it uses type-checked, else an InputError naming the
file and the JSON path (``results[0].systems[1].scores.bleu must be a number or null, got 'x'``),
so no stage imports another to check what that stage wrote.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from in2x_cli.errors import InputError
from in2x_cli.io.jsonl import read_json

EVAL_SCHEMA = "in2x.eval/1"
AUTORANK_SCHEMA = "in2x.autorank/1"

EVAL_SCHEMA_DOC = """\
JSON on stdout (schema "in2x.eval/1"):
  {"schema": "in2x.eval/1",
   "results": [                       one entry per language pair
     {"pair": "en-ja", "src_lang": "en", "tgt_lang": "ja", "source": "<input>", "segments": 997,
      "segment_set": "<digest of the (id, src, ref) triples: AutoRank ranks only like with like>",
      "metrics": {"bleu": {"name": "bleu", "signature": "nrefs:1|case:mixed|eff:no|tok:ja-mecab-...",
                           "segment_signature": "...", "higher_is_better": true}, ...},
      "baseline": "<first system>",
      "significance": null | {"test": "bs"|"ar"|"bootstrap-ci" (one system), "samples": 1000,
                              "confidence_samples": 1000 (ar), "seed": 12345, "level": 0.95},
      "systems": [
        {"system": "A", "segments": 997, "truncated": 3 (rows in2x translate marked as cut at --max-tokens; absent: none),
         "scores": {"bleu": 26.76, "chrf": 31.98, ...},          corpus (system) scores
         "segment_means": {"bleu": 24.85, "chrf": 30.85, ...},   mean segment scores (AutoRank's x)
         "verbose_score": {"bleu": "60.7/32.8/20.1/12.8 (BP = ...)"},   as sacreBLEU's
         "significance": {"bleu": {"score", "mean", "ci", "low", "high", "p_value"}},  with --paired
         "by": {"domain": {"news": {"segments": 149, "segment_set": "...", "scores": {...}, "segment_means": {...}}}}}],  with --by
      "autorank": [{"system", "autorank", "mean_z", "scores", "z"}, ...]}],        with --autorank
                   (ranked on segment_means, as WMT25; "scores" there are those means)
   "provenance": {...}}
Segment scores (--segments FILE): one JSONL row per (system, segment): id, system, src_lang,
tgt_lang, doc_id, domain, src, ref, hyp, scores {metric: segment score}."""


def sniff_schema(path: Path) -> str | None:
    """The ``schema`` of a JSON document (None: not JSON, not an object, or no schema near its start)."""
    try:
        with open(path, encoding="utf-8") as fh:
            head = fh.read(4096)
        if '"schema"' not in head:
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc.get("schema") if isinstance(doc, dict) else None


def read_eval_doc(path: str | Path) -> dict[str, Any]:
    """An ``in2x eval`` JSON output, checked (``check_eval_doc``)."""
    return check_eval_doc(read_json(path), str(path))


def read_autorank_doc(path: str | Path) -> dict[str, Any]:
    """An ``in2x eval autorank`` JSON output, checked (``check_autorank_doc``)."""
    return check_autorank_doc(read_json(path), str(path))


def _shape_error(where: str, path: str, expected: str, value: Any) -> InputError:
    shown = repr(value)
    return InputError(f"{path} must be {expected}, got {shown[:40] + ('…' if len(shown) > 40 else '')}", where)


def _want(value: Any, kind: str, where: str, path: str) -> Any:
    """``value`` if it has the JSON ``kind`` (object, list, string, number, number?), else InputError."""
    ok = {
        "object": isinstance(value, dict),
        "list": isinstance(value, list),
        "string": isinstance(value, str),
        "string?": value is None or isinstance(value, str),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "number?": value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)),
        "bool": isinstance(value, bool),
    }[kind]
    if not ok:
        raise _shape_error(where, path, {"object": "a JSON object", "list": "a list", "string?": "a string or null",
                                         "number?": "a number or null"}.get(kind, f"a {kind}"), value)
    return value


def check_eval_doc(doc: Any, where: str) -> dict[str, Any]:
    """An ``in2x.eval/1`` document read back (``eval autorank``, ``plot``): the fields those readers
    use have the types EVAL_SCHEMA_DOC gives, else an InputError naming the file and the JSON path."""
    if not isinstance(doc, dict) or doc.get("schema") != EVAL_SCHEMA:
        raise InputError(f"not an in2x eval output (schema {EVAL_SCHEMA!r})", where)
    for i, res in enumerate(_want(doc.get("results"), "list", where, "results")):
        p = f"results[{i}]"
        _want(res, "object", where, p)
        _want(res.get("pair"), "string?", where, f"{p}.pair")
        for name, info in _want(res.get("metrics", {}), "object", where, f"{p}.metrics").items():
            _want(info, "object", where, f"{p}.metrics.{name}")
            _want(info.get("higher_is_better", True), "bool", where, f"{p}.metrics.{name}.higher_is_better")
        for j, sys_ in enumerate(_want(res.get("systems"), "list", where, f"{p}.systems")):
            q = f"{p}.systems[{j}]"
            _want(sys_, "object", where, q)
            _want(sys_.get("system"), "string", where, f"{q}.system")
            _check_scores(sys_, where, q)
            for name, est in _want(sys_.get("significance") or {}, "object", where, f"{q}.significance").items():
                if est is None:
                    continue
                _want(est, "object", where, f"{q}.significance.{name}")
                for key in ("low", "high"):
                    _want(est.get(key), "number?", where, f"{q}.significance.{name}.{key}")
            for by, groups in _want(sys_.get("by") or {}, "object", where, f"{q}.by").items():
                for g, info in _want(groups, "object", where, f"{q}.by.{by}").items():
                    _want(info, "object", where, f"{q}.by.{by}.{g}")
                    _check_scores(info, where, f"{q}.by.{by}.{g}")
        _check_ranked(res.get("autorank") or [], where, f"{p}.autorank")
    return doc


def _check_scores(entry: dict[str, Any], where: str, path: str) -> None:
    """``scores`` (required) and ``segment_means`` (absent from older outputs): {metric: number or null}."""
    for field_ in ("scores", "segment_means"):
        for name, v in _want(entry.get(field_, {} if field_ == "segment_means" else None), "object", where, f"{path}.{field_}").items():
            _want(v, "number?", where, f"{path}.{field_}.{name}")


def _check_ranked(rows: Any, where: str, path: str) -> None:
    """A ranked-systems list as ``core.autorank`` results are written (eval's "autorank", autorank's
    "systems"): objects with a string ``system`` and a number ``autorank``."""
    for j, r in enumerate(_want(rows, "list", where, path)):
        _want(r, "object", where, f"{path}[{j}]")
        _want(r.get("system"), "string", where, f"{path}[{j}].system")
        _want(r.get("autorank"), "number", where, f"{path}[{j}].autorank")


def check_autorank_doc(doc: Any, where: str) -> dict[str, Any]:
    """An ``in2x.autorank/1`` document read back (``plot``): pairs → metrics and ranked systems
    with the types ``run_autorank`` writes, else an InputError naming the file and JSON path."""
    if not isinstance(doc, dict) or doc.get("schema") != AUTORANK_SCHEMA:
        raise InputError(f"not an in2x AutoRank output (schema {AUTORANK_SCHEMA!r})", where)
    for i, pair in enumerate(_want(doc.get("pairs"), "list", where, "pairs")):
        p = f"pairs[{i}]"
        _want(pair, "object", where, p)
        _want(pair.get("pair"), "string?", where, f"{p}.pair")
        for j, m in enumerate(_want(pair.get("metrics", []), "list", where, f"{p}.metrics")):
            _want(m, "string", where, f"{p}.metrics[{j}]")
        _check_ranked(pair.get("systems"), where, f"{p}.systems")
    return doc


def read_train_metrics(path: Path) -> list[dict[str, Any]]:
    """A training ``metrics.jsonl`` (cpt / sft / grpo): its rows with a numeric ``step``. A torn
    last line (a killed run) is skipped; any other line that is not a JSON object, or a ``step``
    that is not a number, is an error naming file:line."""
    rows = []
    lines = path.read_bytes().split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            if i == len(lines):
                break  # a torn last line of a killed run
            raise InputError(f"not a JSON metrics row ({type(exc).__name__})", f"{path}:{i}") from None
        if isinstance(row, dict) and "step" in row:
            step = row["step"]
            if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
                raise InputError(f"'step' must be a number, got {step!r}"[:120], f"{path}:{i}")
            rows.append(row)
    return rows
