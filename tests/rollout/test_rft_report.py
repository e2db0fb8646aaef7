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


def test_intervals_pair_the_runs_own_first_and_last_evaluation(tmp_path):
    """eval_episodes.jsonl (methods/rft.py) holds each held-out task's outcomes per evaluation: the report pairs
    step 0 with the last step task by task (records in any order), and says None when either is missing."""
    import json

    rows = [
        {"step": step, "task": task, "correct": c, "correct_call": 1.0, "valid_calls": 1.0, "episode": []}
        for step, outcomes in ((0, [1.0, 0.0, 0.0]), (8, [1.0, 1.0, 0.0]))
        for task, c in reversed(list(enumerate(outcomes)))
    ]
    (tmp_path / "eval_episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    script = load_script()
    before, after = script.logged_outcomes(tmp_path, 0, 8)
    assert before["correct"] == [1.0, 0.0, 0.0] and after["correct"] == [1.0, 1.0, 0.0]
    assert after["valid_calls"] == [1.0, 1.0, 1.0]
    assert script.logged_outcomes(tmp_path, 0, 16) is None
    assert script.logged_outcomes(tmp_path / "elsewhere", 0, 8) is None
