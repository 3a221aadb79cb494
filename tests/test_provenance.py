import hashlib
from dataclasses import dataclass

from in2x_cli import __version__
from in2x_cli.provenance import collect, digest_path


@dataclass(frozen=True)
class Cfg:
    k: int = 3
    name: str = "x"


def test_collect_records_config_inputs_and_version(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_bytes(b'{"a": 1}\n')
    prov = collect(command="cluster", config=Cfg(), inputs=[f], seed=7)
    assert prov["tool"] == "in2x" and prov["version"] == __version__
    assert prov["config"] == {"k": 3, "name": "x"} and prov["seed"] == 7
    assert prov["inputs"][0]["sha256"] == hashlib.sha256(b'{"a": 1}\n').hexdigest()


def test_directory_digest_changes_with_content(tmp_path):
    (tmp_path / "a").write_text("1")
    d1 = digest_path(tmp_path)["sha256"]
    (tmp_path / "a").write_text("2")
    assert digest_path(tmp_path)["sha256"] != d1
