"""The active-learning demo pairs are what `scripts/make_active_data.py` writes, and pass the data gates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo"


def test_generator_reproduces_bundled_files(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_active_data.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for name in ("active_pool", "active_test"):
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (DEMO / f"{name}.jsonl").read_bytes()


def test_test_split_shares_no_prompt_or_fact_with_the_pool():
    def load(name):
        return [json.loads(line) for line in (DEMO / f"{name}.jsonl").open()]

    pool, test = load("active_pool"), load("active_test")
    assert (len(pool), len(test)) == (207, 69)
    prompts = {r["prompt"][0]["content"] for r in pool}
    assert not prompts & {r["prompt"][0]["content"] for r in test}
    answers = {r["chosen"][0]["content"] for r in pool if r["category"] == "capital"}
    for r in test:
        if r["category"] == "capital":  # no test country's right answer is seen in the pool
            assert r["chosen"][0]["content"] not in answers
    assert {r["category"] for r in test} == {"capital", "arithmetic", "polite", "helpful"}


def test_bundled_active_data_passes_the_data_gates(tmp_path):
    from alignline.cli import main

    assert (
        main(
            [
                "data",
                "check",
                str(DEMO / "active_pool.jsonl"),
                "--eval",
                str(DEMO / "active_test.jsonl"),
                "--out",
                str(tmp_path / "report"),
                "--quiet",
            ]
        )
        == 0
    )
