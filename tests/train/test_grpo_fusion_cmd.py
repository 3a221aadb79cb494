"""``in2x grpo`` on ``fusion`` rows (source + candidates) through the real CLI on the tiny model."""

from __future__ import annotations

import json
import math

from in2x_cli.train.rundir import read_metrics
from tests.util import invoke, write_jsonl

SMALL = ["-G", "4", "--rollout-batch", "4", "--minibatch", "2", "--batch-size", "4", "--report-to", "none"]


def test_grpo_trains_a_fuser_on_mixed_fusion_and_translation_rows(tmp_path, tiny_model_warm):
    rows = [
        {"id": "f1", "src": "The cat sat.", "candidates": ["猫が座った。", "猫は座る。"], "ref": "猫が座った。", "src_lang": "en", "tgt_lang": "ja"},
        {"id": "t1", "src": "The dog ran.", "ref": "犬が走った。", "src_lang": "en", "tgt_lang": "ja"},
        {"id": "f2", "src": "The dog ran.", "candidates": ["犬が走った。"], "ref": "犬が走った。", "src_lang": "en", "tgt_lang": "ja"},
        {"id": "t2", "src": "The cat sat.", "ref": "猫が座った。", "src_lang": "en", "tgt_lang": "ja"},
    ]
    data = write_jsonl(tmp_path / "fusion.jsonl", rows)
    out = tmp_path / "fuser"
    res = invoke(["grpo", str(data), "--model", str(tiny_model_warm), "-o", str(out), "--reward", "fusion_chrf",
                  "--reward", "fusion_gain:0.5", "--max-steps", "2", "--max-completion-tokens", "8", "--seed", "1", *SMALL])
    assert res.code == 0, res.stderr
    prov = json.loads((out / "in2x_provenance.json").read_text())
    assert [r["name"] for r in prov["rewards"]] == ["fusion_chrf", "fusion_gain"]
    metrics = [r for r in read_metrics(out) if "loss" in r]
    assert [r["step"] for r in metrics] == [1, 2]
    keys = set().union(*metrics)
    assert "rewards/fusion_chrf/mean" in keys and "rewards/fusion_gain/mean" in keys
    # translation rows are not fusion rows: both rewards return None there (left out of the means)
    chrf = [v for r in metrics if (v := r.get("rewards/fusion_chrf/mean")) is not None and not math.isnan(v)]
    assert chrf and all(0.0 <= v <= 1.0 for v in chrf)
    gain = [v for r in metrics if (v := r.get("rewards/fusion_gain/mean")) is not None and not math.isnan(v)]
    assert gain and all(-1.0 <= v <= 1.0 for v in gain)
