"""``in2x cluster`` end to end through the real CLI."""

import json
from collections import Counter

import numpy as np
import pytest

from in2x_cli.core.cluster import tag_recapture
from in2x_cli.tiny import corpus_dir
from tests.util import assert_user_error, invoke, write_jsonl

INSTRUCTIONS = corpus_dir() / "instructions.jsonl"


def _rows(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_cluster_file_adds_fields_and_reuses_cache(tmp_path):
    out = tmp_path / "c.jsonl"
    args = ["cluster", str(INSTRUCTIONS), "--k", "12", "--dim", "32", "--cache-dir", str(tmp_path / "cache"), "-o", str(out)]
    res = invoke(args)
    assert res.code == 0, res.stderr
    rows = _rows(out)
    source = _rows(INSTRUCTIONS)
    assert len(rows) == 180 and [r["id"] for r in rows] == [r["id"] for r in source]
    assert all({k: v for k, v in r.items() if k not in ("cluster", "centroid_distance")} == s for r, s in zip(rows, source, strict=True))
    sizes = Counter(r["cluster"] for r in rows)
    assert set(sizes) == set(range(12))
    assert [sizes[c] for c in range(12)] == sorted(sizes.values(), reverse=True)  # 0 = largest
    assert all(0.0 <= r["centroid_distance"] <= 2.0 for r in rows)
    # clusters carry topic signal: tag recapture well above the same cluster sizes shuffled
    tag_ids = {t: i for i, t in enumerate(sorted({r["tag"] for r in rows}))}
    tags = [tag_ids[r["tag"]] for r in rows]
    labels = [r["cluster"] for r in rows]
    shuffled = [labels[i] for i in np.random.default_rng(0).permutation(180)]
    assert tag_recapture(labels, tags) >= tag_recapture(shuffled, tags) + 0.1
    meta = json.loads((tmp_path / "c.jsonl.meta.json").read_text())
    assert meta["command"] == "cluster" and meta["clustering"]["n_clusters"] == 12 and meta["embedding"]["cached"] is False
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    # second run: embeddings come from the cache, output identical
    res2 = invoke(args)
    assert res2.code == 0 and "embeddings from cache" in res2.stderr
    assert _rows(out) == rows
    assert json.loads((tmp_path / "c.jsonl.meta.json").read_text())["embedding"]["cached"] is True


def test_cluster_stdin_representatives_and_kmeans(tmp_path):
    text = INSTRUCTIONS.read_text(encoding="utf-8")
    res = invoke(["cluster", "-", "-a", "kmeans", "--k", "6", "--dim", "32", "--no-cache", "--representatives", "2"], stdin=text)
    assert res.code == 0, res.stderr
    rows = res.rows()
    assert len(rows) == 12 and Counter(r["cluster"] for r in rows) == {c: 2 for c in range(6)}
    full = invoke(["cluster", "-", "-a", "kmeans", "--k", "6", "--dim", "32", "--no-cache"], stdin=text).rows()
    for c in range(6):  # the kept rows are the two nearest each centre
        nearest = sorted(r["centroid_distance"] for r in full if r["cluster"] == c)[:2]
        assert sorted(r["centroid_distance"] for r in rows if r["cluster"] == c) == nearest
    assert not list(tmp_path.iterdir())


def test_sweep_prints_one_report_per_threshold(tmp_path):
    res = invoke(["cluster", str(INSTRUCTIONS), "--dim", "32", "--cache-dir", str(tmp_path), "--sweep-threshold", "0.3,0.7"])
    assert res.code == 0, res.stderr
    reports = res.rows()
    assert [r["threshold"] for r in reports] == [0.3, 0.7]
    assert reports[0]["n_clusters"] > reports[1]["n_clusters"] >= 1
    assert all(0 < r["tag_recapture"] <= 1 and 0 <= r["smoothness"] <= 1 for r in reports)


def test_two_level_and_messages_rows(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"{w} question number {i}"}]} for i in range(30) for w in ("apple", "東京")]
    src = write_jsonl(tmp_path / "m.jsonl", rows)
    res = invoke(["cluster", str(src), "-a", "two-level", "--partitions", "2", "--k", "2", "--dim", "8", "--no-cache"])
    assert res.code == 0, res.stderr
    out = res.rows()
    assert len(out) == 60 and "instruction" not in out[0]
    by_script = {(r["messages"][0]["content"].startswith("apple"), r["cluster"]) for r in out}
    assert len(by_script) == 2  # the two scripts split into the two clusters


def test_embed_model_and_dotted_embedder(tmp_path):
    from tests.cluster.test_cluster_embed import build_tiny_encoder

    enc = build_tiny_encoder(tmp_path / "enc")
    src = write_jsonl(tmp_path / "in.jsonl", [{"instruction": t} for t in ("hello", "world", "今日は", "明日", "sea", "海")])
    res = invoke(["cluster", str(src), "--embed-model", str(enc), "--device", "cpu", "--k", "2", "--cache-dir", str(tmp_path / "c")])
    assert res.code == 0, res.stderr
    assert len(res.rows()) == 6
    meta = json.loads(next((tmp_path / "c").glob("*.npy.json")).read_text())
    assert meta["info"]["embedder"]["embedder"] == "hf" and meta["shape"] == [6, 32]
    res = invoke(["cluster", str(src), "--embedder", "tests.cluster.test_cluster_embed:fake_embed", "-a", "kmeans", "--k", "2", "--no-cache"])
    assert res.code == 0, res.stderr
    assert {r["cluster"] for r in res.rows()} == {0, 1}



def test_embed_model_with_custom_code_needs_trust_remote_code(tmp_path, monkeypatch):
    """An encoder whose architecture exists only as code in its directory is refused (exit 2,
    the message names the flag), and is loaded, its code run, with --trust-remote-code."""
    import sys

    import transformers.dynamic_module_utils as dynamic

    from tests.cluster.test_cluster_embed import build_tiny_encoder

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))  # not ~/.cache
    monkeypatch.setattr(sys, "path", list(sys.path))
    enc = build_tiny_encoder(tmp_path / "custom_enc")
    marker = tmp_path / "custom_code_ran"
    cfg = json.loads((enc / "config.json").read_text())
    cfg.update(model_type="in2x-custom-bert", auto_map={"AutoConfig": "modeling_custom.CustomConfig", "AutoModel": "modeling_custom.CustomModel"})
    (enc / "config.json").write_text(json.dumps(cfg))
    (enc / "modeling_custom.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "from transformers import BertConfig, BertModel\n\n\n"
        "class CustomConfig(BertConfig):\n    model_type = 'in2x-custom-bert'\n\n\n"
        "class CustomModel(BertModel):\n    config_class = CustomConfig\n"
    )
    src = write_jsonl(tmp_path / "in.jsonl", [{"instruction": t} for t in ("hello", "world", "今日は", "明日", "sea", "海")])
    args = ["cluster", str(src), "--embed-model", str(enc), "--device", "cpu", "-a", "kmeans", "--k", "2", "--no-cache"]
    assert_user_error(invoke(args), str(enc), "--trust-remote-code")
    assert not marker.exists()
    res = invoke([*args, "--trust-remote-code"])
    assert res.code == 0, res.stderr
    assert marker.exists() and len(res.rows()) == 6 and {r["cluster"] for r in res.rows()} == {0, 1}


@pytest.mark.parametrize(
    ("lines", "extra", "where"),
    [
        ('{"instruction": "a"}\n{"instruction": "b"}\n{"instruction": \n', [], "in.jsonl:3"),
        ('{"instruction": "a"}\n{"id": 2}\n', [], "in.jsonl:2"),
        ('{"instruction": "a"}\n{"body": 2}\n', ["--field", "body"], "in.jsonl:1"),
        ("", [], "in.jsonl"),
    ],
    ids=["bad-json", "no-text", "bad-field", "empty"],
)
def test_bad_input_exits_2_with_file_line(tmp_path, lines, extra, where):
    src = tmp_path / "in.jsonl"
    src.write_text(lines, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    res = invoke(["cluster", str(src), "--no-cache", "-o", str(out), *extra])
    assert_user_error(res, where)
    assert not out.exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_bad_options_exit_2(tmp_path):
    assert_user_error(invoke(["cluster", str(INSTRUCTIONS), "-a", "kmeans", "--no-cache"]), "kmeans needs k")
    assert_user_error(invoke(["cluster", str(INSTRUCTIONS), "--sweep-threshold", "0.3,x"]), "--sweep-threshold")
    assert_user_error(invoke(["cluster", str(INSTRUCTIONS), "-o", str(tmp_path / "no" / "out.jsonl")]), "does not exist")
    res = invoke(["cluster", str(INSTRUCTIONS), "--no-cache", "--dim", "8", "-a", "kmeans", "--k", "500"])
    assert_user_error(res, "larger than the number of rows")
