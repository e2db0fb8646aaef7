"""The RL demo prompts are what `scripts/make_rl_data.py` writes, their answers right, no question in two files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from alignline.rollout.envs.calculator import CalculatorEnv
from alignline.rollout.tools import calculate

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["calculator_train", "calculator_eval", "arith_train", "arith_heldout"]


def test_generator_reproduces_bundled_files(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_rl_data.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in NAMES:
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (ROOT / "data" / "demo" / f"{name}.jsonl").read_bytes()


def test_answers_are_right_and_splits_disjoint():
    questions = set()
    for name in NAMES:
        records = [json.loads(line) for line in (ROOT / "data" / "demo" / f"{name}.jsonl").open()]
        for r in records:
            assert calculate(r["expression"]) == r["answer"] and r["answer"] >= 0
            assert r["prompt"][0]["role"] == "user" and "Answer: <number>" in r["prompt"][0]["content"]
            questions.add(r["prompt"][0]["content"].split("?")[0])
        assert ("tools" in records[0]) == name.startswith("calculator")
        if name.startswith("calculator"):
            observation, info = CalculatorEnv().reset(**records[0])
            assert observation == records[0]["prompt"] and info["tools"] == records[0]["tools"]
    assert len(questions) == 192 + 48 + 384 + 64  # no question in two files


@pytest.mark.parametrize("train, held_out", [("arith_train", "arith_heldout"), ("calculator_train", "calculator_eval")])
def test_bundled_rl_data_passes_the_data_gates(tmp_path, train, held_out):
    """No near-duplicates, and no held-out problem shares its phrasing with training (leakage)."""
    from alignline.cli import main

    demo = Path(__file__).resolve().parents[2] / "data" / "demo"
    assert (
        main(
            [
                "data",
                "check",
                str(demo / f"{train}.jsonl"),
                "--eval",
                str(demo / f"{held_out}.jsonl"),
                "--out",
                str(tmp_path / "report"),
                "--quiet",
            ]
        )
        == 0
    )
