"""The GRPO demo's warm-start solutions (`scripts/make_arith_sft_data.py`): deterministic, training problems only,
each solution's steps exact and its last line the answer the demo's rewards pay for."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from alignline.rewards.numeric import math_correct

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo"


def load_script():
    spec = importlib.util.spec_from_file_location("make_arith_sft_data", ROOT / "scripts" / "make_arith_sft_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def test_generator_is_deterministic_and_reproduces_the_bundled_file(tmp_path):
    load_script().main(["--out", str(tmp_path / "a.jsonl")])
    assert (tmp_path / "a.jsonl").read_bytes() == (DEMO / "arith_sft.jsonl").read_bytes()


def test_one_solution_per_training_problem_none_held_out_each_right_and_in_format():
    sft, train = read(DEMO / "arith_sft.jsonl"), read(DEMO / "arith_train.jsonl")
    held_out = {r["prompt"][0]["content"] for r in read(DEMO / "arith_heldout.jsonl")}
    assert [r["messages"][:-1] for r in sft] == [t["prompt"] for t in train]
    assert not {r["messages"][0]["content"] for r in sft} & held_out
    replies = [r["messages"][-1]["content"] for r in sft]
    assert math_correct(completions=replies, answer=[t["answer"] for t in train]) == [1.0] * len(train)


def test_steps_innermost_first():
    steps, value = load_script().steps("(4 + 5) * 3")
    assert (steps, value) == (["4 + 5 = 9", "9 * 3 = 27"], 27)
