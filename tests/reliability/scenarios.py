"""Kill-and-resume scenarios, shared by tests/reliability/test_kill_resume.py (one or two kill
points per stage) and bench/reliability.py (many).

A scenario runs the real command (``python -m in2x_cli``) in a subprocess, stops it with a signal
at a seeded random point — after the Nth output row / grade / checkpoint, plus a random delay —
resumes it with the stage's ``--resume`` and compares the result with an uninterrupted run of
the same arguments: the same bytes for JSONL stages (so the same rows, in order, none lost or
repeated), bit-identical safetensors for training on CPU. SIGTERM / SIGINT must also end with
exit 143 / 130 and leave a resumable state (a flushed partial file, a complete checkpoint).
Reference and resumed runs go through ``tests.util.invoke`` in this process; the reference runs
while the subprocess does, which halves the wall time on a two-core machine.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability import backends  # noqa: F401  (registers the scripted replies in this process)
from tests.reliability.helpers import (
    cli_env,
    count_lines,
    jsonl_rows,
    safetensors_equal,
    spawn,
    stop,
    wait_for,
)
from tests.util import invoke, write_jsonl

RELIABLE = ["--backend", "tests.reliability.backends:ReliableBackend"]
EXPECTED_EXIT = {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 143, signal.SIGINT: 130}


@dataclass
class Outcome:
    """What one kill point did (the bench prints these)."""

    stage: str
    signal: str
    seed: int
    kill_point: str
    interrupted: bool  # False: the command had finished before the signal (nothing to resume)
    exit_code: int | None = None
    progress_at_kill: int = 0  # rows / grades / checkpoints on disk after the kill
    identical: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in ([], None)}


# --------------------------------------------------------------------------- JSONL stages


@dataclass(frozen=True)
class JsonlStage:
    make_input: Callable[[Path], Path]
    argv: Callable[[Path, Path, bool], list[str]]  # (input, output, resume) -> argv
    progress: Callable[[Path], Path]  # the partial file whose lines show progress
    artefacts: Callable[[Path], list[Path]]  # files that must equal the uninterrupted run's
    kill_after: tuple[int, int]  # kill after this many progress lines (inclusive range)
    delay: str  # IN2X_TEST_DELAY: seconds per prompt in the killed subprocess
    resume_in_killed_run: bool = True  # translate/synthesize keep their partial only with --resume


def _translate_input(work: Path) -> Path:
    rows = [{"id": f"d{i}", "src": f"Paragraph {i} one.\n\nParagraph {i} two, the second.", "src_lang": "en", "tgt_lang": "ja"} for i in range(14)]
    rows += [{"id": f"s{i}", "src": f"Sentence number {i}.", "src_lang": "en", "tgt_lang": "zh"} for i in range(14)]
    return write_jsonl(work / "docs.jsonl", rows)


def _synth_input(work: Path) -> Path:
    rows = [{"id": f"t{i}", "lang": "en", "instruction": f"Explain idea number {i} in two sentences."} for i in range(24)]
    return write_jsonl(work / "tasks.jsonl", rows)


def _pool_input(work: Path) -> Path:
    rows = [{"id": f"p{i}", "lang": "en", "instruction": f"Question {i}: what is {i} times {i + 3}?"} for i in range(40)]
    rows += [{"id": "given", "lang": "en", "instruction": "Already graded.", "difficulty": "easy"}]
    return write_jsonl(work / "pool.jsonl", rows)


JSONL_STAGES: dict[str, JsonlStage] = {
    "translate": JsonlStage(
        _translate_input,
        lambda i, o, r: ["translate", str(i), "-m", "rel-translate", *RELIABLE, "-o", str(o), "--chunk-rows", "1", *(["--resume"] if r else [])],
        lambda o: Path(f"{o}.partial"),
        lambda o: [o],
        (2, 22),
        "0.04",
    ),
    "synthesize": JsonlStage(
        _synth_input,
        lambda i, o, r: ["synthesize", "answer", str(i), "-m", "rel-synth", *RELIABLE, "--critic-model", "rel-synth", "--reread",
                         "--langs", "en", "--batch-size", "2", "-o", str(o), *(["--resume"] if r else [])],
        lambda o: Path(f"{o}.partial"),
        lambda o: [o, o.with_name(o.name.replace(".jsonl", ".rejects.jsonl"))],
        (2, 14),
        "0.02",
    ),
    "sample-difficulty": JsonlStage(
        _pool_input,
        lambda i, o, r: ["sample-difficulty", str(i), "--total", "12", "--lang-ratio", "en=1", "--judge-model", "rel-judge", *RELIABLE,
                         "--batch-size", "2", "-o", str(o), "--rejects", f"{o}.rejects.jsonl", *(["--resume"] if r else [])],
        lambda o: Path(f"{o}.grades.jsonl.partial"),
        lambda o: [o, Path(f"{o}.rejects.jsonl")],
        (2, 34),
        "0.03",
        resume_in_killed_run=False,  # the grades file is always kept; --resume is for the rerun
    ),
}


def _check_flushed(partial: Path, notes: list[str]) -> None:
    """After SIGTERM/SIGINT every line of the kept partial file is complete JSON (flushed, not torn)."""
    data = partial.read_bytes()
    assert data.endswith(b"\n") or not data, "a graceful stop left a torn last line"
    lines = data.splitlines()
    for line in lines:
        json.loads(line)
    notes.append(f"partial flushed: {len(lines)} complete rows")


def run_jsonl(stage: str, work: Path, *, seed: int, sig: int = signal.SIGKILL) -> Outcome:
    s = JSONL_STAGES[stage]
    rng = random.Random(f"{stage}:{seed}")
    work.mkdir(parents=True, exist_ok=True)
    inp = s.make_input(work)
    target = rng.randint(*s.kill_after)
    out = work / "out.jsonl"
    ref = work / "ref.jsonl"
    outcome = Outcome(stage, signal.Signals(sig).name, seed, f"after {target} rows of {s.progress(out).name.replace('out.jsonl', 'OUTPUT')}", True)

    proc = spawn(s.argv(inp, out, s.resume_in_killed_run), env=cli_env(IN2X_TEST_DELAY=s.delay))
    res = invoke(s.argv(inp, ref, False))  # the uninterrupted reference, while the subprocess runs
    assert res.code == 0, res.stderr[-2000:]
    reached = wait_for(proc, lambda: count_lines(s.progress(out)) >= target)
    code, err = stop(proc, sig)
    outcome.exit_code = code
    if not reached and code == 0:
        outcome.interrupted = False
        outcome.notes.append("finished before the kill point")
    else:
        assert code == EXPECTED_EXIT[sig], (code, err[-2000:])
        assert "Traceback" not in err, err[-3000:]
        outcome.progress_at_kill = count_lines(s.progress(out))
        if sig != signal.SIGKILL:
            assert "in2x: interrupted" in err, err[-2000:]
            _check_flushed(s.progress(out), outcome.notes)
        elif rng.random() < 0.5 and s.progress(out).exists():
            with open(s.progress(out), "a", encoding="utf-8") as fh:  # as if killed in the middle of a write
                fh.write('{"id": "torn-by-the-kill", "hy')
            outcome.notes.append("torn last line appended")
        assert not out.exists(), "an interrupted run left a finished-looking output"
    res = invoke(s.argv(inp, out, True))
    assert res.code == 0, res.stderr[-3000:]
    for got, want in zip(s.artefacts(out), s.artefacts(ref), strict=True):
        assert got.read_bytes() == want.read_bytes(), f"{got} differs from the uninterrupted run"
        rows = jsonl_rows(got)
        keys = [json.dumps(r, sort_keys=True) for r in rows]
        assert len(keys) == len(set(keys)), f"duplicate rows in {got}"
    if stage == "sample-difficulty":  # every prompt graded exactly once over both runs
        grades = [r["key"] for r in jsonl_rows(Path(f"{out}.grades.jsonl"))]
        assert len(grades) == len(set(grades)) == 40, len(grades)
    assert not list(work.glob("*.partial")), list(work.glob("*.partial"))
    outcome.identical = True
    return outcome


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainStage:
    make_input: Callable[[Path], list[str]]  # data arguments
    argv: Callable[[list[str], str, Path], list[str]]  # (data args, model, output dir) -> argv
    steps: int
    kill_after_checkpoint: tuple[int, int]
    max_delay: float  # seconds after that checkpoint
    step_delay: float = 0.1  # seconds of sleep before each micro-step of the killed run (slow_cli.py)


def _cpt_data(work: Path) -> list[str]:
    from in2x_cli.tiny import load_corpus

    rows = load_corpus("pretrain")
    a = write_jsonl(work / "knowledge.jsonl", [r for r in rows if r["kind"] == "knowledge"])
    b = write_jsonl(work / "creative.jsonl", [r for r in rows if r["kind"] == "creative"])
    return ["--data", f"{a}:0.75", "--data", f"{b}:0.25"]


def _sft_data(work: Path) -> list[str]:
    from in2x_cli.tiny import load_corpus

    rows = [{"id": r["id"], "lang": r["lang"], "messages": [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["response"]}]}
            for r in load_corpus("instructions")[:24]]
    return [str(write_jsonl(work / "chat.jsonl", rows))]


def _grpo_data(work: Path) -> list[str]:
    from in2x_cli.tiny import load_corpus

    rows = [{"instruction": r["instruction"], "answer": r["answer"]} for r in load_corpus("instructions") if r.get("answer")][:6]
    # judge: true so the generative judge (which skips rows with a reference by default) scores these too
    rows += [{"src": r["en"], "ref": r["ja"], "src_lang": "en", "tgt_lang": "ja", "judge": True} for r in load_corpus("parallel")[:2]]
    return [str(write_jsonl(work / "prompts.jsonl", rows))]


TRAIN_STAGES: dict[str, TrainStage] = {
    "cpt": TrainStage(
        _cpt_data,
        lambda d, m, o: ["cpt", *d, "--model", m, "-o", str(o), "--seq-len", "64", "--batch-size", "2", "--max-steps", "12", "--save-steps", "1",
                         "--save-total-limit", "0", "--logging-steps", "1", "--lr", "3e-3", "--lr-schedule", "linear", "--report-to", "none",
                         "--seed", "0"],
        12, (1, 8), 0.25,
    ),
    "sft": TrainStage(
        _sft_data,
        lambda d, m, o: ["sft", *d, "--model", m, "-o", str(o), "--max-steps", "12", "--save-steps", "2", "--max-length", "64",
                         "--batch-size", "2", "--lr", "1e-3", "--logging-steps", "1", "--report-to", "none", "--seed", "0"],
        12, (2, 8), 0.25,
    ),
    "grpo": TrainStage(
        _grpo_data,
        lambda d, m, o: ["grpo", *d, "--model", m, "--output", str(o), "--reward", "math_exact", "--reward", "language_match:0.5",
                         "--reward", "translation_chrf:0.5", "--reward", "generative_judge:0.2", "--judge-model", "rel-grpo-judge",
                         "--judge-backend", "tests.reliability.backends:ReliableBackend", "-G", "2", "--rollout-batch", "2",
                         "--minibatch", "1", "--batch-size", "2", "--max-steps", "8", "--max-completion-tokens", "8", "--lr", "1e-3",
                         "--temperature-end", "0.5", "--save-steps", "1", "--save-total-limit", "0", "--report-to", "none", "--seed", "3"],
        8, (1, 5), 0.2,
    ),
}


def _checkpoints(out: Path) -> list[int]:
    from in2x_cli.train.rundir import checkpoint_step, is_complete_checkpoint

    if not out.is_dir():
        return []
    return sorted(checkpoint_step(p) or 0 for p in out.iterdir() if checkpoint_step(p) is not None and is_complete_checkpoint(p))


def reference_run(stage: str, model: Path, work: Path) -> Path:
    s = TRAIN_STAGES[stage]
    work.mkdir(parents=True, exist_ok=True)
    ref = work / "ref"
    res = invoke(s.argv(s.make_input(work), str(model), ref))
    assert res.code == 0, res.stderr[-3000:]
    return ref


def run_training(stage: str, model: Path, work: Path, *, seed: int, sig: int = signal.SIGKILL, ref: Path | None = None) -> Outcome:
    """Kill a training run after a seeded checkpoint plus a seeded delay, resume, compare."""
    import torch

    s = TRAIN_STAGES[stage]
    rng = random.Random(f"{stage}:{seed}")
    work.mkdir(parents=True, exist_ok=True)
    data = s.make_input(work)
    after = rng.randint(*s.kill_after_checkpoint)
    delay = round(rng.uniform(0, s.max_delay), 3)
    out = work / "run"
    outcome = Outcome(stage, signal.Signals(sig).name, seed, f"{delay}s after checkpoint-{after}", True)
    # the killed run's steps must be bit-identical to this process's: same number of threads
    env = cli_env(OMP_NUM_THREADS=str(torch.get_num_threads()), IN2X_TEST_STEP_DELAY=str(s.step_delay))
    proc = spawn(s.argv(data, str(model), out), env=env, module="tests.reliability.slow_cli")
    killed: dict[str, Any] = {}

    def killer() -> None:
        reached = wait_for(proc, lambda: bool(_checkpoints(out)) and _checkpoints(out)[-1] >= after, timeout=300)
        if reached:
            time.sleep(delay)
        killed["code"], killed["err"] = stop(proc, sig, timeout=300)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        if ref is None:
            ref = reference_run(stage, model, work / "reference")
    finally:
        thread.join()
    code, err = killed["code"], killed["err"]
    outcome.exit_code = code
    if code == 0 or (out / "in2x_provenance.json").exists():  # (killed while the interpreter shut down)
        outcome.interrupted = False
        outcome.notes.append("finished before the kill point")
    else:
        assert code == EXPECTED_EXIT[sig], (code, err[-3000:])
        assert "Traceback" not in err, err[-3000:]
        done = _checkpoints(out)
        outcome.progress_at_kill = done[-1] if done else 0
        if sig != signal.SIGKILL:
            assert "in2x: interrupted" in err and "checkpoint saved" in err, err[-2000:]
            state = json.loads((out / f"checkpoint-{done[-1]}" / "trainer_state.json").read_text())
            assert state["global_step"] == done[-1]  # saved at the step it stopped on
            outcome.notes.append(f"graceful stop saved checkpoint-{done[-1]}")
    res = invoke([*s.argv(data, str(model), out), "--resume"])
    assert res.code == 0, res.stderr[-3000:]
    if outcome.interrupted:
        assert "resume: continuing from" in res.stderr or outcome.progress_at_kill == 0, res.stderr[-2000:]
    differing = safetensors_equal(ref, out)
    assert not differing, f"resumed weights differ from the uninterrupted run: {differing[:5]}"
    from in2x_cli.train.rundir import read_metrics

    steps = [r["step"] for r in read_metrics(out) if "loss" in r]
    assert steps == list(range(1, s.steps + 1)), steps  # no step logged twice or lost
    outcome.identical = True
    return outcome


# --------------------------------------------------------------------------- memory workloads


def _sentence(i: int, words: int) -> str:
    vocab = ["the", "river", "ran", "past", "quiet", "hills", "while", "light", "fell", "over", "old", "stone", "bridges", "and", "fields"]
    return " ".join(vocab[(i * 7 + j * 3 + (i >> j % 5)) % len(vocab)] for j in range(words)) + f" {i}."


def _pool_rows(n: int, graded: bool) -> Any:
    levels = ["very_hard", "hard", "medium", "easy"]
    for i in range(n):
        row = {"id": i, "lang": ["en", "zh", "ja"][i % 3], "instruction": _sentence(i, 160), "cluster": i % 40, "tag": f"t{i % 7}"}
        if graded:
            row["difficulty"] = levels[i % 4]
        yield row


def _write_rows(path: Path, rows: Any) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


@dataclass(frozen=True)
class MemoryWorkload:
    """A command whose peak memory must not grow with its input (rows of about 1 KB)."""

    make_input: Callable[[Path, int], Path]
    argv: Callable[[Path, Path], list[str]]
    bound: str  # "streaming": growth a small fraction of the added input; "texts": holds the texts


MEMORY_WORKLOADS: dict[str, MemoryWorkload] = {
    "cluster (assign)": MemoryWorkload(
        lambda d, n: _write_rows(d / "pool.jsonl", ({"id": i, "instruction": _sentence(i, 160)} for i in range(n))),
        lambda i, d: ["cluster", str(i), "--no-cache", "--embedder", "tests.reliability.backends:tiny_embed", "-a", "kmeans", "--k", "16",
                      "-o", str(d / "clusters.jsonl")],
        "streaming",
    ),
    "sample-difficulty": MemoryWorkload(
        lambda d, n: _write_rows(d / "pool.jsonl", _pool_rows(n, graded=True)),
        lambda i, d: ["sample-difficulty", str(i), "--total", "300", "--rounds", "2", "-o", str(d / "picked.jsonl"), "--report", str(d / "r.json")],
        "streaming",
    ),
    "sample-difficulty (grading)": MemoryWorkload(
        lambda d, n: _write_rows(d / "pool.jsonl", _pool_rows(n, graded=False)),
        lambda i, d: ["sample-difficulty", str(i), "--total", "300", "--judge-model", "rel-judge", *RELIABLE, "--batch-size", "64",
                      "-o", str(d / "picked.jsonl"), "--report", str(d / "r.json")],
        "streaming",
    ),
    "translate": MemoryWorkload(
        lambda d, n: _write_rows(d / "docs.jsonl", ({"id": f"d{i}", "src": f"{_sentence(i, 80)}\n\n{_sentence(i + 1, 80)}", "src_lang": "en",
                                                      "tgt_lang": "ja"} for i in range(n))),
        lambda i, d: ["translate", str(i), "-m", "rel-translate", *RELIABLE, "-o", str(d / "out.jsonl")],
        "streaming",
    ),
    "eval": MemoryWorkload(
        lambda d, n: _write_rows(d / "rows.jsonl", ({"id": i, "src": _sentence(i, 55), "ref": _sentence(i + 1, 55), "hyp": _sentence(i + 2, 55),
                                                      "src_lang": "en", "tgt_lang": "de"} for i in range(n))),
        lambda i, d: ["eval", str(i), "-m", "bleu,chrf", "-o", str(d / "scores.json")],
        "texts",
    ),
}


def measure_memory(name: str, work: Path, sizes: tuple[int, ...]) -> dict[str, Any]:
    """Peak memory of ``name`` at each input size (fresh interpreters), with the input sizes."""
    from tests.reliability.helpers import peak_memory

    w = MEMORY_WORKLOADS[name]
    out: dict[str, Any] = {"bound": w.bound, "runs": []}
    for n in sizes:
        d = work / f"{n}"
        d.mkdir(parents=True, exist_ok=True)
        inp = w.make_input(d, n)
        r = peak_memory(w.argv(inp, d), d / "peak.json")
        assert r["exit"] == 0, r["stderr"]
        out["runs"].append({"rows": n, "input_bytes": inp.stat().st_size, "peak_rss_kb": r["peak_rss_kb"], "peak_anon_kb": r["peak_anon_kb"]})
    return out
