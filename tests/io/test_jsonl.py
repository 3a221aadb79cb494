import gzip
import json
import os

import pytest

from in2x_cli.errors import InputError, UserError
from in2x_cli.io import JsonlWriter, iter_jsonl, read_jsonl, write_json
from in2x_cli.io.jsonl import STDIN_DIGEST, meta_path
from in2x_cli.records import TranslationRow


def test_reads_rows_with_line_numbers_and_skips_blank_lines(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    lines = read_jsonl(p)
    assert [(ln.lineno, ln.data) for ln in lines] == [(1, {"a": 1}), (3, {"a": 2})]
    assert lines[1].where == f"{p}:3"


def test_gz_is_transparent_both_ways(tmp_path):
    src = tmp_path / "in.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.write('{"t": "猫"}\n{"t": "犬"}\n')
    out = tmp_path / "out.jsonl.gz"
    with JsonlWriter(out) as w:
        for line in iter_jsonl(src):
            w.write(line.data)
    with gzip.open(out, "rt", encoding="utf-8") as fh:
        assert [json.loads(x)["t"] for x in fh] == ["猫", "犬"]


def test_malformed_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        list(iter_jsonl(p))
    assert str(err.value).startswith(f"{p}:2: invalid JSON")


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("[1, 2]\n", "expected a JSON object, got list"),
        ('{"a": NaN}\n', "NaN is not valid JSON"),
        ('{"a": Infinity}\n', "Infinity is not valid JSON"),
        ('"text"\n', "expected a JSON object, got str"),
    ],
)
def test_non_object_and_non_json_values_are_rejected(tmp_path, content, fragment):
    p = tmp_path / "x.jsonl"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=fragment):
        list(iter_jsonl(p))


def test_invalid_utf8_names_the_line(tmp_path):
    p = tmp_path / "u.jsonl"
    p.write_bytes(b'{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(InputError, match=r"u.jsonl:2: invalid UTF-8"):
        list(iter_jsonl(p))


def test_empty_input_is_an_error_unless_allowed(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty input"):
        list(iter_jsonl(p))
    assert list(iter_jsonl(p, require_rows=False)) == []


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        list(iter_jsonl(tmp_path / "nope.jsonl"))
    with pytest.raises(UserError, match="is a directory"):
        list(iter_jsonl(tmp_path))


def test_unknown_fields_pass_through_in_order(tmp_path):
    row = {"zzz": 1, "src_text": "Hello", "tgt_lang": "ja", "nested": {"k": [1, 2]}}
    rec = TranslationRow.from_dict(row, "f:1")
    rec.hyp = "こんにちは"
    assert list(rec.to_dict()) == ["zzz", "src_text", "tgt_lang", "nested", "hyp"]
    assert rec.to_dict()["nested"] == {"k": [1, 2]}


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"old": true}\n', encoding="utf-8")
    with pytest.raises(RuntimeError):
        with JsonlWriter(out, meta={"x": 1}) as w:
            w.write({"a": 1})
            raise RuntimeError("boom")
    assert out.read_text(encoding="utf-8") == '{"old": true}\n'  # previous output untouched
    assert not (tmp_path / "out.jsonl.partial").exists()
    assert not os.path.exists(meta_path(out))


def test_success_writes_output_and_provenance_sidecar(tmp_path):
    out = tmp_path / "out.jsonl"
    with JsonlWriter(out, meta=lambda: {"command": "test"}) as w:
        w.write({"a": 1, "score": float("nan")})
    assert out.read_text(encoding="utf-8") == '{"a": 1, "score": null}\n'
    meta = json.loads(open(meta_path(out), encoding="utf-8").read())
    assert meta["command"] == "test" and meta["output"]["rows"] == 1


def test_output_in_missing_directory_fails_before_writing(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        JsonlWriter(tmp_path / "missing" / "out.jsonl")


def test_resume_keeps_partial_and_drops_torn_line(tmp_path):
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        with JsonlWriter(out, resume=True) as w:
            w.write({"id": 1})
            w.write({"id": 2})
            raise KeyboardInterrupt
    partial = tmp_path / "out.jsonl.partial"
    assert partial.exists() and not out.exists()
    with open(partial, "a", encoding="utf-8") as fh:
        fh.write('{"id": 3, "trunc')  # what a SIGKILL mid-write leaves
    with JsonlWriter(out, resume=True) as w:
        assert w.rows_resumed == 2
        assert [r["id"] for r in w.existing()] == [1, 2]
        w.write({"id": 3})
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [1, 2, 3]


def test_resume_of_a_finished_output_continues_it(tmp_path):
    out = tmp_path / "out.jsonl"
    with JsonlWriter(out, resume=True) as w:
        w.write({"id": 1})
    with JsonlWriter(out, resume=True) as w:
        assert [r["id"] for r in w.existing()] == [1]
    assert out.read_text().count("\n") == 1


def test_stdin_is_read_and_digested(monkeypatch):
    import io
    import sys

    data = b'{"a": 1}\n{"a": 2}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert [ln.data["a"] for ln in iter_jsonl("-")] == [1, 2]
    import hashlib

    assert STDIN_DIGEST["-"] == hashlib.sha256(data).hexdigest()


def test_write_json_is_atomic_and_pretty(tmp_path):
    p = tmp_path / "r.json"
    write_json(p, {"b": [1, 2], "x": float("inf")})
    assert json.loads(p.read_text()) == {"b": [1, 2], "x": None}
