"""The SFT warm-start demonstrations (`scripts/make_rft_sft_data.py`): deterministic, training tasks only, and
the text the SFT trains is a call the calculator environment parses and answers with the task's answer."""

from __future__ import annotations

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

from alignline.data.formats import to_sample
from alignline.data.templates import template_traits, tokenize_sample
from alignline.rollout.envs.calculator import CalculatorEnv
from alignline.rollout.episodes import mask_runs
from alignline.rollout.tools import find_tool_calls

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo"


def load_script():
    spec = importlib.util.spec_from_file_location("make_rft_sft_data", ROOT / "scripts" / "make_rft_sft_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def test_generator_is_deterministic_and_reproduces_the_bundled_file(tmp_path):
    script = load_script()
    script.main(["--out", str(tmp_path / "a.jsonl")])
    script.main(["--out", str(tmp_path / "b.jsonl")])
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.jsonl").read_bytes() == (DEMO / "calculator_sft.jsonl").read_bytes()


def test_one_demonstration_per_training_task_and_no_held_out_task():
    demos = read(DEMO / "calculator_sft.jsonl")
    train = read(DEMO / "calculator_train.jsonl")
    held_out = {r["prompt"][0]["content"] for r in read(DEMO / "calculator_eval.jsonl")}
    users = [[m["content"] for m in d["messages"] if m["role"] == "user"][-1] for d in demos]
    assert users == [t["prompt"][0]["content"] for t in train]  # the training file's tasks, in order
    assert not set(users) & held_out
    prefix = load_script().recipe_prefix()
    assert all(d["messages"][: len(prefix)] == prefix for d in demos)  # the RL episodes' own context


def test_trained_text_is_a_call_the_environment_parses_and_answers(tokenizer):
    """Render each demonstration as SFT does (a template without tool support, as SmolLM2's: the Hermes
    fallback), take the two trained spans, and play them against the calculator environment: the first is
    one well-formed calculator call whose result is the task's answer; the second ends the episode correct."""
    assert not template_traits(tokenizer).tool_calls
    prefix_len = len(load_script().recipe_prefix())
    for line, (demo, task) in enumerate(
        zip(read(DEMO / "calculator_sft.jsonl"), read(DEMO / "calculator_train.jsonl")), 1
    ):
        ids, mask = tokenize_sample(tokenizer, to_sample(demo, "calculator_sft.jsonl", f"line {line}"))
        spans = [tokenizer.decode(ids[a:b], skip_special_tokens=True) for a, b in mask_runs(mask)]
        assert len(spans) == 2, line  # the call and the answer; the tool result is context
        env = CalculatorEnv(tool_call_reward=0.5, format_reward=0.1)
        env.reset(**{**task, "prompt": demo["messages"][: prefix_len + 1]})
        calls, errors = find_tool_calls(spans[0])
        assert calls == [{"name": "calculator", "arguments": {"expression": task["expression"]}}] and not errors
        observation, reward, done, _, info = env.step(spans[0])
        assert not done and reward == 0.5 and Fraction(observation[0]["content"]) == Fraction(str(task["answer"]))
        assert spans[1] == f"Answer: {task['answer']}"
        _, reward, done, _, info = env.step(spans[1])
        assert done and info["correct"] and info["components"] == {"correct": 1.0, "tool": 1.0, "format": 1.0}


def test_demonstrations_pass_the_data_gates(tmp_path):
    """No near-duplicates (the shared system message is short next to each task) and no held-out leakage."""
    from alignline.cli import main

    assert (
        main(
            [
                "data",
                "check",
                str(DEMO / "calculator_sft.jsonl"),
                "--eval",
                str(DEMO / "calculator_eval.jsonl"),
                "--out",
                str(tmp_path / "report"),
                "--quiet",
            ]
        )
        == 0
    )
