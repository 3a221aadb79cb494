"""No surprise network: every command given local paths runs without reaching for a hub.

All commands run in one subprocess (tests/reliability/net_driver.py) with HF_HUB_OFFLINE and
TRANSFORMERS_OFFLINE removed from the environment and an empty HF_HOME, so nothing tells the
libraries to stay offline and nothing is cached. The network is taken away for real — a new
network namespace (``unshare -rn``: only a down loopback) where the machine allows it, else
HTTP(S)_PROXY pointing at a closed local port — and an audit hook in the process records every
socket connect and DNS lookup: there must be none, and each command must finish in well under a
hub client's retry time.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.util import REPO, write_jsonl

PER_COMMAND_LIMIT_S = 60  # a hub lookup that waited would take minutes (retries with back-off)


def _network_jail() -> tuple[list[str], dict[str, str], str]:
    """(command prefix, extra env, description): a netns without network, or a dead proxy."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"], {}, "unshare -rn (no network interfaces)"
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: every proxied request is refused at once
    proxy = f"http://127.0.0.1:{port}"
    return [], {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy, "NO_PROXY": ""}, f"proxy {proxy} (closed)"


def plan(tiny: Path, work: Path) -> list[tuple[str, list[str]]]:
    from in2x_cli.tiny import load_corpus

    d = work / "data"
    d.mkdir()
    out = work / "out"
    out.mkdir()
    m = str(tiny)
    text = write_jsonl(d / "text.jsonl", [{"text": r["text"]} for r in load_corpus("pretrain")[:8]])
    chat = write_jsonl(d / "chat.jsonl", [{"messages": [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["response"]}]}
                                          for r in load_corpus("instructions")[:4]])
    prompts = write_jsonl(d / "prompts.jsonl", [{"instruction": "What is 2+2?", "answer": "4"}] * 2)
    tasks = write_jsonl(d / "tasks.jsonl", [{"instruction": "Say hello.", "lang": "en"}])
    pool = write_jsonl(d / "pool.jsonl", [{"id": i, "lang": "en", "instruction": f"Question {i}?"} for i in range(3)])
    rows = write_jsonl(d / "rows.jsonl", [{"id": 1, "src": "Hello.\n\nHow are you?", "src_lang": "en", "tgt_lang": "ja"}])
    ev = write_jsonl(d / "ev.jsonl", [{"id": i, "src": "a b", "ref": "the cat sat", "hyp": "the cat", "src_lang": "en", "tgt_lang": "de"} for i in range(3)])
    small = ["--report-to", "none", "--max-steps", "1"]
    steps = [
        ("tiny-model", ["tiny-model", str(out / "tiny2")]),
        ("cluster", ["cluster", str(text), "--no-cache", "-o", str(out / "clusters.jsonl")]),
        ("cluster --embed-model", ["cluster", str(text), "--embed-model", m, "--no-cache", "-o", str(out / "clusters2.jsonl")]),
        ("sample-difficulty --judge-model", ["sample-difficulty", str(pool), "--total", "1", "--lang-ratio", "en=1", "--judge-model", m,
                                             "--judge-max-tokens", "4", "-o", str(out / "picked.jsonl")]),
        ("synthesize answer", ["synthesize", "answer", str(tasks), "-m", m, "--critic-model", m, "--reread", "--answer-max-tokens", "4",
                               "--judge-max-tokens", "4", "--langs", "en", "-o", str(out / "synth.jsonl")]),
        ("cpt", ["cpt", "--data", str(text), "--model", m, "-o", str(out / "cpt"), "--seq-len", "32", *small]),
        ("sft", ["sft", str(chat), "--model", m, "-o", str(out / "sft"), "--max-length", "64", *small]),
        ("grpo", ["grpo", str(prompts), "--model", m, "-o", str(out / "grpo"), "--reward", "math_exact", "-G", "2", "--rollout-batch", "2",
                  "--minibatch", "1", "--batch-size", "2", "--max-completion-tokens", "4", *small]),
        ("merge", ["merge", "--method", "linear", "-m", m, "-m", str(out / "sft"), "-o", str(out / "merged")]),
        ("merge fisher-stats", ["merge", "fisher-stats", m, "--calibration", str(text), "-o", str(out / "fisher"), "--max-examples", "2",
                                "--device", "cpu"]),
        ("merge activation-stats", ["merge", "activation-stats", m, "--calibration", str(text), "-o", str(out / "act"), "--max-examples", "2",
                                    "--device", "cpu"]),
        ("translate (auto backend)", ["translate", str(rows), "-m", m, "--max-tokens", "4", "-o", str(out / "tr.jsonl")]),
        ("translate --mbr", ["translate", str(rows), "-m", m, "--max-tokens", "4", "--mbr", "2", "-o", str(out / "tr2.jsonl")]),
        ("eval", ["eval", str(ev), "-m", "bleu,chrf,ter", "--paired", "bs", "--paired-n", "20", "-o", str(out / "cpt" / "scores.json")]),
        ("eval autorank", ["eval", "autorank", str(out / "cpt" / "scores.json"), "-o", str(out / "rank.json")]),
        ("plot", ["plot", str(out / "cpt"), "-o", str(out / "plots")]),
    ]
    return steps


def test_local_paths_never_reach_for_the_network(tiny_model: Path, tmp_path: Path) -> None:
    prefix, extra_env, how = _network_jail()
    steps = plan(tiny_model, tmp_path)
    plan_file, report_file = tmp_path / "plan.json", tmp_path / "report.json"
    plan_file.write_text(json.dumps(steps))
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(extra_env, PYTHONPATH=str(REPO), HF_HOME=str(tmp_path / "hf-home"), IN2X_CACHE_DIR=str(tmp_path / "cache"),
               IN2X_NO_PROGRESS="1", MPLBACKEND="Agg")
    proc = subprocess.run([*prefix, sys.executable, "-m", "tests.reliability.net_driver", str(plan_file), str(report_file)],
                          env=env, cwd=str(REPO), capture_output=True, timeout=PER_COMMAND_LIMIT_S * len(steps), stdin=subprocess.DEVNULL)
    assert report_file.exists(), proc.stderr.decode()[-3000:]
    report = json.loads(report_file.read_text())
    assert [r["command"] for r in report] == [label for label, _ in steps], proc.stderr.decode()[-3000:]
    for r in report:
        assert r["exit"] == 0, (how, r, proc.stderr.decode()[-3000:])
        assert r["network_attempts"] == [], (how, r)
        assert r["seconds"] < PER_COMMAND_LIMIT_S, (how, r)
    if os.environ.get("IN2X_RELIABILITY_NET_REPORT"):
        Path(os.environ["IN2X_RELIABILITY_NET_REPORT"]).write_text(json.dumps({"jail": how, "commands": report}, indent=1))


def test_the_audit_hook_sees_a_hub_lookup(tmp_path: Path) -> None:
    """The detector works: a hub id (not a path) with HF_HUB_OFFLINE unset is a network attempt,
    and it fails fast inside the jail instead of hanging."""
    prefix, extra_env, how = _network_jail()
    plan_file, report_file = tmp_path / "plan.json", tmp_path / "report.json"
    plan_file.write_text(json.dumps([["sft hub id", ["sft", str(tmp_path / "none.jsonl"), "--model", "some-org/some-model", "-o", str(tmp_path / "o")]],
                                     ["translate hub id", ["translate", "-", "-m", "some-org/some-model", "--src-lang", "en", "--tgt-lang", "ja"]]]))
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(extra_env, PYTHONPATH=str(REPO), HF_HOME=str(tmp_path / "hf-home"), HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="2")
    write_jsonl(tmp_path / "none.jsonl", [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}])
    subprocess.run([*prefix, sys.executable, "-m", "tests.reliability.net_driver", str(plan_file), str(report_file)], env=env, cwd=str(REPO),
                   capture_output=True, timeout=120, input=b"Hello.\n")
    report = json.loads(report_file.read_text())
    for r in report:
        assert r["exit"] == 2, (how, r)  # a clean "cannot fetch" error
        assert r["network_attempts"], (how, r)  # seen by the hook
        assert r["seconds"] < PER_COMMAND_LIMIT_S, (how, r)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare(1) not installed")
def test_jail_has_no_network() -> None:
    prefix, _, how = _network_jail()
    if not prefix:
        pytest.skip(f"network namespaces unavailable here; the proxy jail is used instead ({how})")
    code = "import socket; s = socket.socket(); s.settimeout(3); s.connect(('1.1.1.1', 443))"
    proc = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, timeout=30)
    assert proc.returncode != 0 and b"unreachable" in proc.stderr.lower() or b"OSError" in proc.stderr, proc.stderr


def _with_hub_encoder(checkpoint: Path, out: Path, encoder: str) -> Path:
    """A copy of the tiny COMET checkpoint whose encoder is named by hub id, as in every published
    COMET checkpoint (``pretrained_model: xlm-roberta-large``), and not shipped beside it."""
    import torch

    shutil.copytree(checkpoint, out, ignore=shutil.ignore_patterns("encoder"))
    ckpt = out / "checkpoints" / "model.ckpt"
    content = torch.load(ckpt, map_location="cpu", weights_only=True)
    old = content["hyper_parameters"]["pretrained_model"]
    content["hyper_parameters"]["pretrained_model"] = encoder
    torch.save(content, ckpt)
    hparams = out / "hparams.yaml"
    hparams.write_text(hparams.read_text(encoding="utf-8").replace(json.dumps(old), json.dumps(encoder)), encoding="utf-8")
    return out


def _put_in_hub_cache(directory: Path, hf_home: Path, repo_id: str) -> None:
    """Lay ``directory`` out as a downloaded hub snapshot of ``repo_id`` under HF_HOME."""
    revision = "0" * 40
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(directory, repo / "snapshots" / revision)


def test_comet_checkpoint_paths_never_wait_on_the_hub(tiny_comet: Path, tmp_path: Path) -> None:
    """COMET inside the same jail, HF_HUB_OFFLINE unset. A checkpoint given as a path runs the
    worker hub-offline: an encoder named by hub id comes from the local cache (exit 0) or the
    command stops at once naming the checkpoint and the missing encoder (exit 2; before, the worker
    sat in hub retries for minutes). A model *name* fails at once saying the hub is unreachable."""
    prefix, extra_env, how = _network_jail()
    hf_home = tmp_path / "hf-home"
    cached = _with_hub_encoder(tiny_comet, tmp_path / "cached-encoder", "in2x-test/tiny-xlmr")
    _put_in_hub_cache(tiny_comet / "encoder", hf_home, "in2x-test/tiny-xlmr")
    absent = _with_hub_encoder(tiny_comet, tmp_path / "absent-encoder", "in2x-test/absent-xlmr")
    ev = write_jsonl(tmp_path / "ev.jsonl", [{"id": i, "src": "the cat", "ref": "猫 が", "hyp": "猫", "src_lang": "en", "tgt_lang": "ja"} for i in range(3)])
    steps = [
        ("eval comet=tiny checkpoint", ["eval", str(ev), "-m", f"chrf,comet={tiny_comet}", "-o", str(tmp_path / "a.json")]),
        ("eval comet=checkpoint, cached hub encoder", ["eval", str(ev), "-m", f"comet={cached}", "-o", str(tmp_path / "b.json")]),
        ("eval comet=checkpoint, missing hub encoder", ["eval", str(ev), "-m", f"comet={absent}", "-o", str(tmp_path / "c.json")]),
        ("eval comet=model name", ["eval", str(ev), "-m", "comet=Unbabel/wmt22-comet-da", "-o", str(tmp_path / "d.json")]),
    ]
    plan_file, report_file = tmp_path / "plan.json", tmp_path / "report.json"
    plan_file.write_text(json.dumps(steps))
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(extra_env, PYTHONPATH=str(REPO), HF_HOME=str(hf_home), IN2X_NO_PROGRESS="1")
    proc = subprocess.run([*prefix, sys.executable, "-m", "tests.reliability.net_driver", str(plan_file), str(report_file)],
                          env=env, cwd=str(REPO), capture_output=True, timeout=PER_COMMAND_LIMIT_S * len(steps), stdin=subprocess.DEVNULL)
    stderr = proc.stderr.decode()
    report = json.loads(report_file.read_text())
    assert [r["exit"] for r in report] == [0, 0, 2, 2], (how, report, stderr[-3000:])
    for r in report:
        assert r["network_attempts"] == [], (how, r)
        assert r["seconds"] < PER_COMMAND_LIMIT_S, (how, r)
    assert report[2]["seconds"] < 30 and report[3]["seconds"] < 30, (how, report)
    assert "needs its encoder 'in2x-test/absent-xlmr'" in stderr and str(absent / "checkpoints" / "model.ckpt") in stderr, stderr[-3000:]
    assert "hub is unreachable" in stderr and "local checkpoint" in stderr, stderr[-3000:]
    assert json.loads((tmp_path / "b.json").read_text())["results"][0]["systems"][0]["scores"]["comet"] is not None
