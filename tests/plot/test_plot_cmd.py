import json

from PIL import Image

from in2x_cli.io.jsonl import file_sha256
from in2x_cli.plot.render import PROVENANCE_KEY
from tests.util import assert_user_error, invoke


def _metrics(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 9, "lo', encoding="utf-8")  # torn last line


def test_plot_draws_training_eval_and_autorank(tmp_path):
    run = tmp_path / "run"
    _metrics(
        run / "grpo" / "metrics.jsonl",
        [{"step": s, "loss": 1.0 / s, "learning_rate": 1e-6, "rewards/chrf/mean": 0.1 * s, "clip/high_fraction": 0.0} for s in range(1, 5)],
    )
    eval_doc = {
        "schema": "in2x.eval/1",
        "results": [
            {
                "pair": "en-ja",
                "metrics": {"bleu": {}, "chrf": {}},
                "systems": [
                    {"system": "a", "scores": {"bleu": 10.0, "chrf": 30.0}, "by": {"domain": {"news": {"scores": {"bleu": 9.0}}}}},
                    {"system": "b", "scores": {"bleu": 12.0, "chrf": 31.0}, "by": {"domain": {"news": {"scores": {"bleu": 11.0}}}}},
                ],
                "autorank": [{"system": "b", "autorank": 1.0}, {"system": "a", "autorank": 2.0}],
            }
        ],
    }
    (run / "eval.json").write_text(json.dumps(eval_doc))
    rank_doc = {"schema": "in2x.autorank/1", "pairs": [{"pair": "en-ja_JP", "metrics": ["x"], "systems": [{"system": "s", "autorank": 1.0}]}]}
    (run / "rank.json").write_text(json.dumps(rank_doc))
    (run / "other.json").write_text('{"not": "ours"}')
    res = invoke(["plot", str(run), "--highlight", "s"])
    assert res.code == 0, res.stderr
    kinds = sorted(r["kind"] for r in res.rows())
    assert kinds == ["autorank", "eval", "train"]
    for r in res.rows():
        png = open(r["png"], "rb").read()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
        # each picture carries its provenance: drawn by `plot` from this source, whose sha256 it names
        prov = json.loads(Image.open(r["png"]).text[PROVENANCE_KEY])
        assert prov["tool"] == "in2x" and prov["command"] == "plot" and prov["config"]["kind"] == r["kind"]
        assert prov["inputs"] == [{"path": r["source"], "bytes": len(open(r["source"], "rb").read()), "sha256": file_sha256(r["source"])}]


def test_training_series_are_grouped_into_panels():
    from in2x_cli.plot.render import train_series

    rows = [{"step": 1, "loss": 2.0, "rewards/math/mean": 0.5, "completions/clipped_ratio": 1.0, "clip/dual_fraction": 0.1, "tokens_per_second": float("nan")}]
    panels = train_series(rows)
    assert panels["loss"] == {"loss": ([1.0], [2.0])}
    assert set(panels["clip fraction"]) == {"clip/dual_fraction"}  # truncation ratio is not a clip fraction
    assert "rewards/math/mean" in panels["reward per function"]
    assert "tokens / s" not in panels  # NaN dropped


def test_plot_errors(tmp_path):
    assert_user_error(invoke(["plot", str(tmp_path / "nope")]), "run directory not found")
    assert_user_error(invoke(["plot", str(tmp_path)]), "nothing to plot")
