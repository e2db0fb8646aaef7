"""`make demo-rft`'s paired intervals (scripts/rft_report.py): after RL - before RL per held-out task, by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("rft_report", ROOT / "scripts" / "rft_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_intervals_by_hand():
    """10 tasks: before right on 4, after on 8 (the 4 plus 4 more): +40 points; McNemar b=4, c=0:
    p = 2 * 0.5**4 = 0.125. Tool calls unchanged: delta 0, interval [0, 0], p = 1."""
    before = {"correct": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0], "correct_call": [1] * 10}
    after = {"correct": [1, 1, 1, 1, 1, 1, 1, 1, 0, 0], "correct_call": [1] * 10}
    out = load_script().paired_intervals(after, before)
    c = out["correct"]
    assert (c["before"], c["after"], c["delta"], c["n"]) == (0.4, 0.8, pytest.approx(0.4), 10)
    assert c["p_value"] == pytest.approx(0.125)
    assert 0.0 <= c["ci_low"] < 0.4 < c["ci_high"] <= 0.8  # every resample's difference is >= 0
    assert out["correct_call"] == {
        "before": 1.0,
        "after": 1.0,
        "delta": 0.0,
        "ci_low": 0.0,
        "ci_high": 0.0,
        "p_value": 1.0,
        "n": 10,
    }
