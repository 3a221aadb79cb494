"""Fuzzed input for every command: generated malformed inputs must end in a clean failure.

Each command gets a small valid input and a hypothesis strategy of mutations of it — truncated
JSON, wrong types, missing and extra fields, empty files, invalid UTF-8, binary garbage, huge
lines, NaN/Infinity, non-object rows, a missing path, a directory or a path through a file as
input, an output inside a missing directory — fed through the real CLI in this process
(tests.util.invoke), from a file or from stdin. The contract (tests/reliability/helpers.py):
exit 2 with exactly one ``in2x: error:`` line naming the file, and for a mutation of one line
(truncated JSON, a wrong type, a missing field, NaN, invalid UTF-8, ...) naming it as
``FILE:LINE`` with that line's number, or exit 0 when the mutation left the input valid; never a traceback; nothing left in
the output directory after a failure (no output, ``*.partial`` or ``*.meta.json``); inputs
byte-identical. Commands that load a model get the session's tiny model; the scripted stages use
tests/reliability/backends.py.

Case counts: ``examples(N)`` per command (scaled by IN2X_FUZZ_SCALE; bench/reliability.py raises
it); hypothesis runs derandomized, so a run is reproducible. The counts are printed in the
terminal summary ("in2x fuzz cases per command").
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability import backends  # noqa: F401  (registers the scripted replies)
from tests.reliability.helpers import check_contract, count_case, digest_tree, examples
from tests.util import invoke

RELIABLE = ["--backend", "tests.reliability.backends:ReliableBackend"]
WRONG_VALUES = [None, 7, -1.5, True, [], ["x"], {}, {"a": 1}, "", "zz", 10**30]
INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80abc", b"\xf0\x28\x8c\x28"]
HUGE = 1_000_000  # characters in a "huge line" (a quarter of it for commands that tokenize)


@dataclass
class Spec:
    """A command under fuzz: its valid rows, the fields worth breaking, and its argv."""

    name: str
    rows: list[dict[str, Any]]
    fields: list[str]
    argv: Callable[[str, str, dict[str, Any]], list[str]]  # (input path, output base, fixtures) -> argv
    base: int = 20
    stdin: bool = True
    valid_ok: bool = True  # may mutations that keep the input valid run (a model command then trains)
    huge: int = HUGE
    extra_files: dict[str, Any] = field(default_factory=dict)


def _texts(n: int, seed: int = 0) -> list[str]:
    words = ["the", "cat", "sat", "on", "a", "warm", "mat", "rain", "fell", "over", "quiet", "hills", "猫", "雨", "静か"]
    return [" ".join(words[(i * 7 + j * 3 + seed) % len(words)] for j in range(6 + i % 4)) + "." for i in range(n)]


def _model(fx: dict[str, Any]) -> str:
    return str(fx["tiny_model"])


SPECS: dict[str, Spec] = {}


def spec(s: Spec) -> Spec:
    SPECS[s.name] = s
    return s


spec(Spec(
    "cluster",
    [{"id": f"c{i}", "instruction": t, "tag": "t"} for i, t in enumerate(_texts(6))],
    ["instruction", "id"],
    lambda i, o, fx: ["cluster", i, "-o", f"{o}.jsonl", "--no-cache", "--dim", "8", "--reduce-dim", "4"],
    base=24,
))
spec(Spec(
    "sample-difficulty",
    [{"id": i, "lang": ["en", "zh", "ja"][i % 3], "instruction": t, "difficulty": ["hard", "medium", "easy"][i % 3], "cluster": i % 2, "tag": "x"}
     for i, t in enumerate(_texts(6))],
    ["lang", "difficulty", "cluster", "instruction", "tag"],
    lambda i, o, fx: ["sample-difficulty", i, "-o", f"{o}.jsonl", "--total", "3", "--report", f"{o}.report.json"],
    base=40,
))
spec(Spec(
    "sample-difficulty (judge)",
    [{"id": i, "lang": "en", "instruction": t} for i, t in enumerate(_texts(5))],
    ["lang", "instruction", "id"],
    lambda i, o, fx: ["sample-difficulty", i, "-o", f"{o}.jsonl", "--total", "2", "--lang-ratio", "en=1", "--judge-model", "rel-judge",
                      *RELIABLE, "--report", f"{o}.report.json", "--rejects", f"{o}.rejects.jsonl"],
    base=24,
))
spec(Spec(
    "synthesize",
    [{"id": f"s{i}", "lang": "en", "instruction": t} for i, t in enumerate(_texts(5))],
    ["instruction", "lang", "id", "messages"],
    lambda i, o, fx: ["synthesize", "answer", i, "-m", "rel-synth", *RELIABLE, "-o", f"{o}.jsonl", "--critic-model", "rel-synth",
                      "--reread", "--langs", "en,zh,ja", "--batch-size", "2"],
    base=30,
))
spec(Spec(
    "translate",
    [{"id": f"t{i}", "src": t, "src_lang": "en", "tgt_lang": "ja", "domain": "news"} for i, t in enumerate(_texts(5))],
    ["src", "src_lang", "tgt_lang", "id"],
    lambda i, o, fx: ["translate", i, "-m", "rel-translate", *RELIABLE, "-o", f"{o}.jsonl"],
    base=40,
))
spec(Spec(
    "eval",
    [{"id": i, "src": t, "ref": t, "hyp": t[::-1], "src_lang": "en", "tgt_lang": "de"} for i, t in enumerate(_texts(5))],
    ["src", "ref", "hyp", "src_lang", "tgt_lang", "id", "system"],
    lambda i, o, fx: ["eval", i, "-o", f"{o}.json", "--segments", f"{o}.segments.jsonl"],
    base=40,
))
spec(Spec(
    "cpt",
    [{"text": t} for t in _texts(4)],
    ["text"],
    lambda i, o, fx: ["cpt", "--data", i, "--model", _model(fx), "-o", o, "--max-steps", "1", "--seq-len", "16", "--report-to", "none",
                      "--save-steps", "1", "--shuffle-buffer", "0"],
    base=10, stdin=False, valid_ok=False, huge=HUGE // 4,
))
spec(Spec(
    "sft",
    [{"lang": "en", "messages": [{"role": "user", "content": t}, {"role": "assistant", "content": t.upper()}]} for t in _texts(4)],
    ["messages", "lang"],
    lambda i, o, fx: ["sft", i, "--model", _model(fx), "-o", o, "--max-steps", "1", "--max-length", "32", "--report-to", "none"],
    base=10, valid_ok=False, huge=HUGE // 4,
))
spec(Spec(
    "grpo",
    [{"instruction": f"What is {k}+{k}?", "answer": str(2 * k)} for k in range(4)],
    ["instruction", "answer", "messages"],
    lambda i, o, fx: ["grpo", i, "--model", _model(fx), "-o", o, "--reward", "math_exact", "-G", "2", "--rollout-batch", "2", "--minibatch", "1",
                      "--batch-size", "2", "--max-steps", "1", "--max-completion-tokens", "4", "--report-to", "none"],
    base=10, valid_ok=False, huge=HUGE // 4,
))
spec(Spec(
    "merge fisher-stats",
    [{"text": t} for t in _texts(3)],
    ["text"],
    lambda i, o, fx: ["merge", "fisher-stats", _model(fx), "--calibration", i, "-o", o, "--max-examples", "3", "--max-length", "16", "--device", "cpu"],
    base=8, valid_ok=False, huge=HUGE // 4,
))
spec(Spec(
    "merge activation-stats",
    [{"instruction": t, "response": t} for t in _texts(3)],
    ["instruction", "response"],
    lambda i, o, fx: ["merge", "activation-stats", _model(fx), "--calibration", i, "-o", o, "--max-examples", "3", "--max-length", "64",
                      "--device", "cpu"],
    base=8, valid_ok=False, huge=HUGE // 4,
))
spec(Spec(
    "plot",
    [{"step": s, "loss": 5.0 - s / 3, "learning_rate": 1e-3, "grad_norm": 1.0} for s in range(1, 6)],
    ["step", "loss", "learning_rate"],
    # the input is the run directory holding the (mutated) metrics.jsonl
    lambda i, o, fx: ["plot", str(Path(i).parent) if Path(i).name == "metrics.jsonl" else i, "-o", o],
    base=16, stdin=False,
))


# --------------------------------------------------------------------------- mutations


def line_mutations(s: Spec) -> st.SearchStrategy[tuple]:
    k = st.integers(0, len(s.rows) - 1)
    fields = st.sampled_from(s.fields)
    broken = [
        st.tuples(st.just("truncate"), k, st.floats(0.02, 0.98)),
        st.tuples(st.just("wrong_type"), k, fields, st.sampled_from(WRONG_VALUES)),
        st.tuples(st.just("missing"), k, fields),
        st.tuples(st.just("nan"), k, fields, st.sampled_from(["NaN", "Infinity", "-Infinity"])),
        st.tuples(st.just("utf8"), k, st.floats(0, 1), st.sampled_from(INVALID_UTF8)),
        st.tuples(st.just("not_object"), k, st.sampled_from(["[1, 2]", '"text"', "3", "null", "true", "{}"])),
        st.tuples(st.just("garbage"), k, st.binary(min_size=1, max_size=40)),
        st.tuples(st.just("empty"), st.sampled_from([b"", b"\n", b"\n \n\t\n"])),
        st.tuples(st.just("missing_path")),
        st.tuples(st.just("directory")),
        st.tuples(st.just("through_file")),
        st.tuples(st.just("out_missing_dir")),
    ]
    valid = [
        st.tuples(st.just("extra"), k, st.text(min_size=1, max_size=8), st.sampled_from([1, "x", None, [1], {"k": "v"}])),
        st.tuples(st.just("huge"), k, fields),
    ]
    return st.one_of(*broken, *(valid if s.valid_ok else []))


def render(rows: list[dict[str, Any]], mut: tuple, huge: int) -> tuple[bytes, int | None]:
    """The input bytes and the 1-based line the mutation touched (None: file-level)."""
    rows = [dict(r) for r in rows]
    kind = mut[0]
    if kind == "empty":
        return mut[1], None
    lines: list[bytes] = [json.dumps(r, ensure_ascii=False).encode() for r in rows]
    if kind in ("missing_path", "directory", "through_file", "out_missing_dir"):
        return b"".join(x + b"\n" for x in lines), None
    k = mut[1]
    if kind == "truncate":
        lines[k] = lines[k][: max(1, int(len(lines[k]) * mut[2]))]
    elif kind == "wrong_type":
        rows[k][mut[2]] = mut[3]
        lines[k] = json.dumps(rows[k], ensure_ascii=False).encode()
    elif kind == "missing":
        rows[k].pop(mut[2], None)
        lines[k] = json.dumps(rows[k], ensure_ascii=False).encode()
    elif kind == "nan":
        rows[k][mut[2]] = "\x00NAN\x00"
        lines[k] = json.dumps(rows[k], ensure_ascii=False).replace('"\\u0000NAN\\u0000"', mut[3]).encode()
    elif kind == "utf8":
        pos = int(len(lines[k]) * mut[2])
        lines[k] = lines[k][:pos] + mut[3] + lines[k][pos:]
    elif kind == "not_object":
        lines[k] = mut[2].encode()
    elif kind == "garbage":
        lines[k] = mut[2].replace(b"\n", b" ").replace(b"\r", b" ")
    elif kind == "extra":
        rows[k][mut[2]] = mut[3]
        lines[k] = json.dumps(rows[k], ensure_ascii=False).encode()
    elif kind == "huge":
        rows[k][mut[2]] = ("長い文 and a long line. " * (huge // 20 + 1))[:huge]
        lines[k] = json.dumps(rows[k], ensure_ascii=False).encode()
    return b"".join(x + b"\n" for x in lines), k + 1


@dataclass
class Case:
    argv: list[str]
    stdin: bytes | None
    names: list[str]
    line: int | None
    inputs: list[Path]
    out_dir: Path


def prepare(s: Spec, mut: tuple, via_stdin: bool, work: Path, fx: dict[str, Any]) -> Case:
    data, line = render(s.rows, mut, s.huge)
    inp_dir, out_dir = work / "in", work / "out"
    inp_dir.mkdir()
    out_dir.mkdir()
    filename = "metrics.jsonl" if s.name == "plot" else "input.jsonl"
    path = inp_dir / filename
    path.write_bytes(data)
    kind = mut[0]
    out_base = str(out_dir / "result")
    names = [str(path)]
    arg = str(path)
    if kind == "missing_path":
        arg = str(inp_dir / "does-not-exist.jsonl")
        names = [arg]
    elif kind == "directory":
        arg = str(inp_dir)
        names = [arg]
    elif kind == "through_file":
        arg = str(path / "child.jsonl")
        names = [arg]
    elif kind == "out_missing_dir":
        out_base = str(out_dir / "missing" / "result")
        names = [str(out_dir / "missing")]
    stdin = None
    if via_stdin and kind not in ("missing_path", "directory", "through_file"):
        arg, stdin, names = "-", data, ["<stdin>"] + ([str(out_dir / "missing")] if kind == "out_missing_dir" else [])
    if s.name == "plot":  # plot takes a run directory: errors name it or the metrics file in it
        if kind == "directory":
            arg = str(inp_dir / "metrics.jsonl")
        names = [*names, str(inp_dir)]
    argv = s.argv(arg, out_base, fx)
    return Case(argv, stdin, names, line if kind not in ("missing_path", "directory", "through_file", "out_missing_dir") else None,
                [inp_dir], out_dir)


def run_case(label: str, case: Case) -> None:
    before = digest_tree(*case.inputs)
    res = invoke(case.argv, stdin=case.stdin)
    outcome = check_contract(res, out_dir=case.out_dir, inputs_before=before, names=case.names, line=case.line)
    count_case(label, outcome)


def fuzz(s: Spec, fx: dict[str, Any]) -> None:
    root = Path(tempfile.mkdtemp(prefix="in2x-fuzz-"))

    @settings(max_examples=examples(s.base), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(mut=line_mutations(s), via_stdin=st.booleans() if s.stdin else st.just(False))
    def one(mut: tuple, via_stdin: bool) -> None:
        work = Path(tempfile.mkdtemp(dir=root))
        try:
            run_case(s.name, prepare(s, mut, via_stdin, work, fx))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    try:
        one()
    finally:
        shutil.rmtree(root, ignore_errors=True)


CHEAP = ["cluster", "sample-difficulty", "sample-difficulty (judge)", "synthesize", "translate", "eval", "plot"]
MODEL = ["cpt", "sft", "grpo", "merge fisher-stats", "merge activation-stats"]


@pytest.mark.parametrize("name", CHEAP)
def test_fuzz_jsonl_commands(name: str) -> None:
    fuzz(SPECS[name], {})


@pytest.mark.parametrize("name", MODEL)
def test_fuzz_model_commands(name: str, tiny_model: Path) -> None:
    fuzz(SPECS[name], {"tiny_model": tiny_model})


# --------------------------------------------------------------------------- other inputs


def byte_mutations() -> st.SearchStrategy[tuple]:
    """Mutations of a whole file's bytes (documents, configs, side files)."""
    return st.one_of(
        st.tuples(st.just("truncate"), st.floats(0.0, 0.98)),
        st.tuples(st.just("utf8"), st.floats(0, 1), st.sampled_from(INVALID_UTF8)),
        st.tuples(st.just("garbage"), st.binary(min_size=0, max_size=64)),
        st.tuples(st.just("delete")),
    )


def mutate_bytes(data: bytes, mut: tuple) -> bytes | None:
    """The mutated content, or None to delete the file."""
    kind = mut[0]
    if kind == "truncate":
        return data[: int(len(data) * mut[1])]
    if kind == "utf8":
        pos = int(len(data) * mut[1])
        return data[:pos] + mut[2] + data[pos:]
    if kind == "garbage":
        return mut[1]
    return None


def json_value_mutations(keys: list[str]) -> st.SearchStrategy[tuple]:
    return st.one_of(
        st.tuples(st.just("set"), st.sampled_from(keys), st.sampled_from(WRONG_VALUES + [float("nan"), "NaN", -1, 0, 1e308])),
        st.tuples(st.just("drop"), st.sampled_from(keys)),
        st.tuples(st.just("bytes"), byte_mutations()),
    )


def _run_generic(label: str, base: int, strategy: st.SearchStrategy, build: Callable[[Any, Path], Case]) -> None:
    root = Path(tempfile.mkdtemp(prefix="in2x-fuzz-"))

    @settings(max_examples=examples(base), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(mut=strategy)
    def one(mut: Any) -> None:
        work = Path(tempfile.mkdtemp(dir=root))
        try:
            run_case(label, build(mut, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    try:
        one()
    finally:
        shutil.rmtree(root, ignore_errors=True)


MODEL_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]


def _model_commands(model: str, good: str, out: str, data: Path) -> dict[str, list[str]]:
    return {
        "translate": ["translate", str(data / "tr.jsonl"), "-m", model, "--backend", "transformers", "--max-tokens", "2", "-o", f"{out}.jsonl"],
        "sft": ["sft", str(data / "chat.jsonl"), "--model", model, "-o", out, "--max-steps", "1", "--max-length", "32", "--report-to", "none"],
        "merge": ["merge", "--method", "linear", "-m", model, "-m", good, "-o", out],
        "fisher-stats": ["merge", "fisher-stats", model, "--calibration", str(data / "text.jsonl"), "-o", out, "--max-examples", "2",
                         "--max-length", "16", "--device", "cpu"],
        "cluster --embed-model": ["cluster", str(data / "text.jsonl"), "--embed-model", model, "--no-cache", "-o", f"{out}.jsonl"],
    }


def test_fuzz_corrupt_model_directory(tiny_model: Path) -> None:
    """A half-copied or damaged model directory (truncated weights, broken config or tokenizer, a
    missing file) is reported with its path, before any library gets to raise a traceback."""
    data = Path(tempfile.mkdtemp(prefix="in2x-fuzz-data-"))
    (data / "tr.jsonl").write_text(json.dumps({"id": 1, "src": "Hello.", "src_lang": "en", "tgt_lang": "ja"}) + "\n")
    (data / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in SPECS["sft"].rows))
    (data / "text.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in _texts(3)))
    commands = list(_model_commands("m", "g", "o", data))

    def build(mut: tuple, work: Path) -> Case:
        target, change, command = mut
        model = work / "in" / "model"
        shutil.copytree(tiny_model, model)
        content = mutate_bytes((model / target).read_bytes(), change)
        if content is None:
            (model / target).unlink()
        else:
            (model / target).write_bytes(content)
        (work / "out").mkdir()
        argv = _model_commands(str(model), str(tiny_model), str(work / "out" / "result"), data)[command]
        return Case(argv, None, [str(model)], None, [work / "in", data], work / "out")

    try:
        _run_generic("corrupt model directory", 24, st.tuples(st.sampled_from(MODEL_FILES), byte_mutations(), st.sampled_from(commands)), build)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_fuzz_eval_text_mode() -> None:
    """Line-aligned --src/--ref/--hyp files: mismatched line counts, empty, invalid UTF-8, missing."""
    texts = _texts(6)

    def build(mut: tuple, work: Path) -> Case:
        which, change, delta = mut
        (work / "in").mkdir()
        (work / "out").mkdir()
        files = {}
        for name, lines in (("src", texts), ("ref", texts), ("hyp", [t[::-1] for t in texts])):
            f = work / "in" / f"{name}.txt"
            f.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
            files[name] = f
        f = files[which]
        if change == "lines":  # drop or add lines: the counts no longer match
            lines = f.read_text(encoding="utf-8").splitlines()
            lines = lines[: max(0, len(lines) + delta)] if delta < 0 else lines + ["extra"] * delta
            f.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
        else:
            content = mutate_bytes(f.read_bytes(), change)
            if content is None:
                f.unlink()
            else:
                f.write_bytes(content)
        out = work / "out" / "scores"
        argv = ["eval", "--src", str(files["src"]), "--ref", str(files["ref"]), "--hyp", f"sys={files['hyp']}", "-o", f"{out}.json",
                "--segments", f"{out}.segments.jsonl", "-l", "en-de"]
        return Case(argv, None, [str(f)], None, [work / "in"], work / "out")

    strategy = st.tuples(st.sampled_from(["src", "ref", "hyp"]), st.one_of(st.just("lines"), byte_mutations()),
                         st.sampled_from([-6, -3, -1, 1, 2]))
    _run_generic("eval (text mode)", 30, strategy, build)


def _eval_doc(work: Path) -> Path:
    rows = SPECS["eval"].rows
    inp = work / "rows.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(json.dumps({**r, "system": "B", "hyp": r["ref"]}) + "\n" for r in rows))
    doc = work / "scores.json"
    res = invoke(["eval", str(inp), "-o", str(doc), "--autorank", "--by", "domain", "--paired", "bs", "--paired-n", "20"])
    assert res.code == 0, res.stderr
    return doc


def _json_mutate(doc: Any, mut: tuple, rng_path: list[str]) -> bytes | None:
    kind = mut[0]
    if kind == "bytes":
        return mutate_bytes(json.dumps(doc).encode(), mut[1])
    target = doc
    for key in rng_path[:-1]:
        target = target[key]
    last = rng_path[-1]
    if kind == "set":
        target[last] = mut[2]
    else:
        target.pop(last, None) if isinstance(target, dict) else target.pop(last)
    return json.dumps(doc, allow_nan=True).encode()


def test_fuzz_result_documents_for_autorank_and_plot() -> None:
    """``eval autorank`` and ``plot`` read in2x eval JSON documents: broken ones (wrong types,
    missing keys, truncated, not UTF-8) are errors naming the file."""
    base_dir = Path(tempfile.mkdtemp(prefix="in2x-fuzz-doc-"))
    doc_path = _eval_doc(base_dir)
    original = json.loads(doc_path.read_text())
    paths = [["schema"], ["results"], ["results", 0], ["results", 0, "systems"], ["results", 0, "systems", 0],
             ["results", 0, "systems", 0, "scores"], ["results", 0, "systems", 0, "scores", "bleu"], ["results", 0, "systems", 0, "system"],
             ["results", 0, "metrics"], ["results", 0, "pair"], ["results", 0, "autorank"], ["results", 0, "systems", 0, "by"]]

    def build(mut: tuple, work: Path) -> Case:
        command, path_i, change = mut
        (work / "in").mkdir()
        (work / "out").mkdir()
        doc = json.loads(json.dumps(original))
        content = _json_mutate(doc, change, paths[path_i])
        f = work / "in" / "scores.json"
        if content is not None:
            f.write_bytes(content)
        if command == "autorank":
            argv = ["eval", "autorank", str(f), "-o", str(work / "out" / "rank.json")]
        else:
            argv = ["plot", str(work / "in"), "-o", str(work / "out" / "plots")]
        return Case(argv, None, [str(f), str(work / "in")], None, [work / "in"], work / "out")

    keys = ["k"]
    strategy = st.tuples(st.sampled_from(["autorank", "plot"]), st.integers(0, len(paths) - 1),
                         st.one_of(st.tuples(st.just("set"), st.just(keys[0]), st.sampled_from(WRONG_VALUES + [float("nan"), "NaN"])),
                                   st.tuples(st.just("drop"), st.just(keys[0])), st.tuples(st.just("bytes"), byte_mutations())))
    try:
        _run_generic("autorank / plot documents", 30, strategy, build)
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)


MERGE_RECIPE_KEYS = ["merge_method", "base_model", "models", "parameters", "dtype", "tokenizer_source", "seed"]


def test_fuzz_merge_recipe(tiny_model: Path) -> None:
    """mergekit-shaped YAML recipes with wrong types, missing keys, unknown methods, missing
    models, out-of-range parameters, broken YAML or bytes."""
    import yaml

    def recipe(model: str) -> dict[str, Any]:
        return {"merge_method": "ties", "base_model": model,
                "models": [{"model": model, "parameters": {"weight": 1.0, "density": 0.5}}, {"model": model, "parameters": {"weight": 0.5, "density": 0.5}}],
                "parameters": {"normalize": True}, "dtype": "float32", "seed": 0}

    def build(mut: tuple, work: Path) -> Case:
        target, change = mut
        (work / "in").mkdir()
        (work / "out").mkdir()
        doc = recipe(str(tiny_model))
        names = []
        if change[0] == "bytes":
            content = mutate_bytes(yaml.safe_dump(doc).encode(), change[1])
        else:
            where: Any = doc
            key: Any = target
            if target == "weight":
                where, key = doc["models"][1]["parameters"], "weight"
            elif target == "density":
                where, key = doc["models"][0]["parameters"], "density"
            elif target == "model":
                where, key = doc["models"][0], "model"
            if change[0] == "set":
                where[key] = change[2]
                if isinstance(change[2], str) and change[2]:
                    names.append(change[2])  # a model path that does not exist
            else:
                where.pop(key, None)
            content = yaml.safe_dump(doc, allow_unicode=True).encode()
        f = work / "in" / "recipe.yaml"
        if content is not None:
            f.write_bytes(content)
        argv = ["merge", "-c", str(f), "-o", str(work / "out" / "merged")]
        # a recipe that parses but names a model that is not there (a truncated path, a wrong type
        # read as a name) is reported with that model's name rather than the recipe's
        missing_model = ["model directory not found", "no such local directory", "is listed twice", "must be a model directory",
                         "no *.safetensors weights"]
        return Case(argv, None, [str(f), *names, *missing_model], None, [work / "in"], work / "out")

    strategy = st.tuples(st.sampled_from([*MERGE_RECIPE_KEYS, "weight", "density", "model"]), json_value_mutations(["k"]))
    _run_generic("merge (recipe)", 24, strategy, build)


def test_fuzz_side_files() -> None:
    """The small files commands read besides their data: translate --prompt-file (JSON and text),
    synthesize --prompt-file / --rules, grpo --principles."""

    def build(mut: tuple, work: Path) -> Case:
        which, change = mut
        (work / "in").mkdir()
        (work / "out").mkdir()
        data = work / "in" / "data.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in SPECS["translate"].rows[:2]))
        tasks = work / "in" / "tasks.jsonl"
        tasks.write_text("".join(json.dumps(r) + "\n" for r in SPECS["synthesize"].rows[:2]))
        prompts = work / "in" / "prompts.jsonl"
        prompts.write_text("".join(json.dumps(r) + "\n" for r in SPECS["grpo"].rows))
        out = str(work / "out" / "result")
        if which == "translate --prompt-file .json":
            f, content = work / "in" / "p.json", json.dumps({"ja": "Translate into {tgt_name}:\n\n{src}", "*": "{src}"}).encode()
            argv = ["translate", str(data), "-m", "rel-translate", *RELIABLE, "--prompt-file", str(f), "-o", f"{out}.jsonl"]
        elif which == "translate --prompt-file .txt":
            f, content = work / "in" / "p.txt", b"Translate from {src_name} into {tgt_name}:\n\n{src}\n"
            argv = ["translate", str(data), "-m", "rel-translate", *RELIABLE, "--prompt-file", str(f), "-o", f"{out}.jsonl"]
        elif which == "synthesize --rules":
            f, content = work / "in" / "rules.txt", "Be concise.\n答えは短く。\n".encode()
            argv = ["synthesize", "answer", str(tasks), "-m", "rel-synth", *RELIABLE, "--rules", str(f), "-o", f"{out}.jsonl", "--langs", "en"]
        elif which == "synthesize --prompt-file":
            f, content = work / "in" / "prompts.yaml", b"answer_system: You answer well.\n"
            argv = ["synthesize", "answer", str(tasks), "-m", "rel-synth", *RELIABLE, "--prompt-file", str(f), "-o", f"{out}.jsonl", "--langs", "en"]
        else:
            f, content = work / "in" / "principles.txt", b"The answer is correct.\nThe answer is short.\n"
            argv = ["grpo", str(prompts), "--model", str(work / "in" / "no-model"), "-o", out, "--reward", "generative_judge",
                    "--judge-model", "rel-judge", "--judge-backend", "tests.reliability.backends:ReliableBackend", "--principles", str(f),
                    "-G", "2", "--rollout-batch", "2", "--minibatch", "1", "--batch-size", "2"]
        new = mutate_bytes(content, change)
        if new is not None:
            f.write_bytes(new)
        # a surviving side file is valid, and then the command fails later on something else (grpo:
        # the missing model) or succeeds; either way the error must name a file the user gave
        names = [str(f), str(work / "in" / "no-model")]
        return Case(argv, None, names, None, [work / "in"], work / "out")

    which = ["translate --prompt-file .json", "translate --prompt-file .txt", "synthesize --rules", "synthesize --prompt-file", "grpo --principles"]
    _run_generic("side files", 30, st.tuples(st.sampled_from(which), byte_mutations()), build)


def test_fuzz_tiny_model_options(tmp_path: Path) -> None:
    """tiny-model with an output path it cannot use: inside a missing directory, an existing file,
    a non-empty directory (no --overwrite), a negative step count."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("keep")
    before = digest_tree(tmp_path)
    cases = [
        ([str(tmp_path / "missing" / "m")], [str(tmp_path / "missing")]),
        ([str(tmp_path / "file")], [str(tmp_path / "file")]),
        ([str(tmp_path / "busy")], [str(tmp_path / "busy")]),
        ([str(tmp_path / "new"), "--train-steps", "-3"], ["--train-steps"]),
    ]
    for args, names in cases:
        res = invoke(["tiny-model", *args])
        assert "Traceback" not in res.stderr and res.code == 2, res.stderr
        assert any(n in res.stderr for n in names), res.stderr
        count_case("tiny-model", "error")
    assert digest_tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["busy", "file"]


def _last_row_broken(rows: list[dict[str, Any]], path: Path) -> int:
    """Valid rows, then one with a wrong type in its last field: its line number."""
    bad = dict(rows[-1])
    bad[next(iter(k for k in ("instruction", "src", "text", "messages") if k in bad))] = {"not": "text"}
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*rows, bad]), encoding="utf-8")
    return len(rows) + 1


EXPLODING = ["--backend", "tests.reliability.backends:ExplodingBackend"]


@pytest.mark.parametrize(
    "name",
    ["translate", "synthesize", "sample-difficulty (judge)", "cpt", "sft", "grpo", "merge fisher-stats", "merge activation-stats"],
)
def test_input_is_validated_before_any_model_loads(name: str, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad row at the very end of the input fails before any model is loaded: the scripted
    stages get a backend that raises when constructed, the others a from_pretrained that raises."""
    import transformers

    def no_model(*a: Any, **k: Any) -> Any:
        raise RuntimeError("a model was loaded before the input was validated")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_model)
    s = SPECS[name]
    inp = tmp_path / "in.jsonl"
    line = _last_row_broken(s.rows[:2] if name.startswith("merge") else s.rows, inp)  # (within --max-examples 3)
    (tmp_path / "out").mkdir()
    argv = [("tests.reliability.backends:ExplodingBackend" if a == "tests.reliability.backends:ReliableBackend" else a)
            for a in s.argv(str(inp), str(tmp_path / "out" / "result"), {"tiny_model": tiny_model})]
    before = digest_tree(inp)
    res = invoke(argv)
    check_contract(res, out_dir=tmp_path / "out", inputs_before=before, names=[str(inp)], line=line, allow_success=False)
    assert f"{inp}:{line}" in res.stderr


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root reads files whatever their mode; the suite covers unreadable paths with a directory and a path through a file")
@pytest.mark.parametrize("name", ["cluster", "sample-difficulty", "translate", "eval", "synthesize"])
def test_unreadable_input_file(name: str, tmp_path: Path) -> None:
    s = SPECS[name]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in s.rows))
    inp.chmod(0)
    (tmp_path / "out").mkdir()
    res = invoke(s.argv(str(inp), str(tmp_path / "out" / "result"), {}))
    check_contract(res, out_dir=tmp_path / "out", inputs_before={}, names=[str(inp)], allow_success=False)
    assert "permission denied" in res.stderr
