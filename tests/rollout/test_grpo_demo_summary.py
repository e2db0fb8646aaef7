"""`make demo-grpo`'s closing table, from two `alignline eval` results.json (numbers made up, points by hand):
base, warm start and final; final - base and final - warm start with their intervals; the aims met or missed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("grpo_demo_summary", ROOT / "scripts" / "grpo_demo_summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


METRICS = {
    "base": {"arith/accuracy": 0.125, "arith/format": 0.25},
    "warm": {"arith/accuracy": 0.40625, "arith/format": 1.0},
    "grpo": {"arith/accuracy": 0.5625, "arith/format": 1.0},
}


def results(delta: float, low: float, high: float, p: float) -> dict:
    d = {"delta": delta, "ci_low": low, "ci_high": high, "test": "mcnemar", "p_value": p, "n": 64}
    return {"metrics": METRICS, "deltas": {"grpo": {"arith/accuracy": d}}}


def test_three_models_two_paired_intervals_and_the_aims(tmp_path, capsys):
    """final - base = 0.5625 - 0.125 = +43.75 points (aim +15: met); final - warm = +15.6 [+4.7, +26.6] (met)."""
    (tmp_path / "base.json").write_text(json.dumps(results(0.4375, 0.31, 0.56, 1e-6)))
    (tmp_path / "warm.json").write_text(json.dumps(results(0.15625, 0.047, 0.266, 0.01)))
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "alarms": ["KL to the reference 0.5 is above"]}) + "\n")
    script = load_script()
    assert script.main([str(tmp_path / "base.json"), str(tmp_path / "warm.json"), "--run", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "64 problems" in out[0]
    assert out[1].startswith("correct") and "12.5%" in out[1] and "40.6%" in out[1] and "56.2%" in out[1]
    assert "+43.8 [+31.0, +56.0]" in out[1] and "+15.6 [+4.7, +26.6] p=0.01" in out[1]
    assert out[2].startswith("format") and "100.0%" in out[2]
    assert "aim final >= base + 15 points: met (+43.8)" in out
    assert any(line.startswith("aim final > warm start, interval excluding 0: met") for line in out)
    assert "aim no reward-hacking alarm: met" in out and "  alarm: KL to the reference 0.5 is above" in out


def test_an_interval_touching_zero_misses_the_aim_and_missing_files_exit_2(tmp_path, capsys):
    (tmp_path / "base.json").write_text(json.dumps(results(0.4375, 0.31, 0.56, 1e-6)))
    (tmp_path / "warm.json").write_text(json.dumps(results(0.03, -0.02, 0.09, 0.4)))
    script = load_script()
    args = [str(tmp_path / "base.json"), str(tmp_path / "warm.json"), "--run", str(tmp_path / "none")]
    assert script.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("aim final > warm start, interval excluding 0: MISSED") for line in out)
    assert not any("reward-hacking" in line for line in out)  # no run to read
    assert script.main([str(tmp_path / "missing.json"), str(tmp_path / "warm.json")]) == 2
