"""bench/grpo_ablation.py at a small size: the length-corrected advantage learns to truncate under a
dense reward, the default (auto) does not; the one-group example ranks truncation first only under
the length correction; JSON + picture are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ablation_shows_which_advantage_rewards_truncation(tmp_path) -> None:
    png = tmp_path / "ablation.png"
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, str(REPO / "bench" / "grpo_ablation.py"), "--quick", "--rounds", "20", "--png", str(png),
                          "--json", str(tmp_path / "a.json")], capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out == json.loads((tmp_path / "a.json").read_text())
    assert out["example"]["truncation_beats_perfect"] == {"group": False, "length-corrected": True, "auto": False, "reference-length": False}
    flagged = set(out["truncation_rewarded"])
    assert "judge/length-corrected/trajectory/sqrt-length/lr0.05" in flagged
    assert not any("/auto/" in k or "/group/" in k for k in flagged)
    for kind in ("chrf", "judge", "math"):
        auto = out["variants"][f"{kind}/auto/trajectory/sqrt-length/lr0.05"]
        assert auto["held_out_reward_last10"] > auto["held_out_reward_first"]  # the default learns
    assert png.stat().st_size > 10_000
