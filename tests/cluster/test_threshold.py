"""The Birch threshold rule (in2x_cli.cluster.threshold): recapture, then smoothness, then size."""

from __future__ import annotations

import json

import pytest

from in2x_cli.cluster.threshold import choose_threshold, main, paper_target


def rep(t: float, n: int, recapture: float | None, smooth: float) -> dict:
    return {"threshold": t, "n_clusters": n, "tag_recapture": recapture, "smoothness": smooth}


def test_paper_target_is_the_papers_ratio() -> None:
    assert paper_target(40_000_000) == 1_500_000
    assert paper_target(400) == 15 and paper_target(3) == 1


def test_rule_filters_by_recapture_then_smoothness_then_picks_the_nearest_count() -> None:
    reports = [
        rep(0.2, 900, 0.95, 0.90),  # best recapture, but far too many clusters
        rep(0.3, 400, 0.94, 0.91),  # within 0.02 of the best recapture, nearest 300 of the smooth ones
        rep(0.4, 310, 0.93, 0.60),  # nearest the target, but lumpy (smoothness 0.60 < 0.91 - 0.05)
        rep(0.5, 300, 0.80, 0.95),  # exactly the target, but tags are lost
    ]
    t, notes = choose_threshold(reports, 300)
    assert t == 0.3
    verdicts = {n["threshold"]: n["verdict"] for n in notes}
    assert verdicts[0.3] == "chosen" and "recapture" in verdicts[0.5] and "smoothness" in verdicts[0.4] and "further" in verdicts[0.2]


def test_without_tags_recapture_is_skipped_and_ties_prefer_the_larger_threshold() -> None:
    reports = [rep(0.3, 200, None, 0.9), rep(0.5, 50, None, 0.9)]
    assert choose_threshold(reports, 100)[0] == 0.5  # |ln 2| each: the larger threshold wins


def test_command_prints_the_threshold_alone(tmp_path, capsys) -> None:
    f = tmp_path / "sweep.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in [rep(0.3, 40, 0.9, 0.9), rep(0.7, 4, 0.9, 0.9)]), encoding="utf-8")
    assert main([str(f), "--rows", "1000"]) == 0  # target 38 clusters
    out = capsys.readouterr()
    assert out.out.strip() == "0.3" and "chosen" in out.err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n", encoding="utf-8")
    assert main([str(bad), "--rows", "10"]) == 2
    with pytest.raises(ValueError):
        choose_threshold([], 10)
