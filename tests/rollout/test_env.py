"""The calculator environment step by step, and environments by name or by file.py:Class."""

from __future__ import annotations

import pytest

from alignline.errors import ConfigError
from alignline.rollout.env import ENVIRONMENTS, env_factory, get_env_class
from alignline.rollout.envs.calculator import CalculatorEnv, final_number
from alignline.rollout.tools import CALCULATOR_TOOL

TASK = {"prompt": [{"role": "user", "content": "Ann has 3 bags of 4 apples. How many apples?"}], "answer": 12}
CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "3 * 4"}}\n</tool_call>'


def test_reset_gives_the_prompt_and_the_tool_schema():
    env = CalculatorEnv()
    observation, info = env.reset(seed=0, **TASK)
    assert observation == TASK["prompt"] and observation is not TASK["prompt"]
    assert info == {"tools": [CALCULATOR_TOOL]}
    assert env.reset(question="2 + 2?", answer=4)[0] == [{"role": "user", "content": "2 + 2?"}]


def test_tool_call_then_answer():
    env = CalculatorEnv(tool_call_reward=0.1)
    env.reset(**TASK)
    obs, reward, terminated, truncated, info = env.step("Let me compute.\n" + CALL)
    assert obs == [{"role": "tool", "name": "calculator", "content": "12"}]
    assert (reward, terminated, truncated) == (0.1, False, False)
    # a second good call earns no more shaping
    assert env.step(CALL)[1] == 0.0
    obs, reward, terminated, truncated, info = env.step("3 bags of 4 is 12. Answer: 12")
    assert (obs, reward, terminated, truncated) == ([], 1.0, True, False)
    assert info == {
        "correct": True,
        "final": "12",
        "called_tool": True,
        "components": {"correct": 1.0, "tool": 1.0, "format": 1.0},
    }


def test_wrong_answer_and_errors_as_observations():
    env = CalculatorEnv(tool_call_reward=0.1)
    env.reset(**TASK)
    bad = '<tool_call>{"name": "calculator", "arguments": {"expression": "12 / 0"}}</tool_call>'
    obs, reward, *_ = env.step(bad)
    assert obs == [{"role": "tool", "name": "calculator", "content": "error: division by zero"}] and reward == 0.0
    obs, *_ = env.step('<tool_call>{"name": "search", "arguments": {}}</tool_call><tool_call>oops</tool_call>')
    assert obs == [
        {"role": "tool", "name": "search", "content": "error: unknown tool 'search'; the tool is calculator"},
        {"role": "tool", "content": "error: the tool call is not valid JSON (Expecting value at column 1)"},
    ]
    obs, reward, terminated, _, info = env.step("Answer: 13")
    assert (reward, terminated, info["correct"]) == (0.0, True, False)


def test_shaping_only_if_correct_pays_call_and_format_only_with_a_right_answer():
    """tool_call_reward 0.2, format_reward 0.1: a correct episode with a call and the answer line earns
    1 + 0.2 + 0.1 = 1.3, all at the final step; a wrong one with the same call and line earns 0."""
    env = CalculatorEnv(tool_call_reward=0.2, format_reward=0.1, require_tool=True, shaping_only_if_correct=True)
    env.reset(**TASK)
    assert env.step(CALL)[1] == 0.0  # not paid at the call
    _, reward, terminated, _, info = env.step("Answer: 12")
    assert (reward, terminated) == (pytest.approx(1.3), True)
    assert info["components"] == {"correct": 1.0, "tool": 1.0, "format": 1.0}
    env.reset(**TASK)
    env.step(CALL)
    _, reward, _, _, info = env.step("Answer: 13")
    assert reward == 0.0 and info["components"] == {"correct": 0.0, "tool": 1.0, "format": 1.0}
    env.reset(**TASK)  # right, but no call: require_tool pays nothing, so no shaping either
    assert env.step("Answer: 12")[1] == 0.0


def test_require_tool():
    env = CalculatorEnv(require_tool=True)
    env.reset(**TASK)
    _, reward, terminated, _, info = env.step("Answer: 12")
    assert (reward, terminated, info["correct"], info["called_tool"]) == (0.0, True, True, False)


@pytest.mark.parametrize(
    "text, value",
    [
        ("Answer: 12", 12),
        ("answer is 7.5", 7.5),
        ("so 3 + 4 = 7", 7),
        ("Answer: 1,200 apples", 1200),
        ("Answer: -3", -3),
        ("none", None),
    ],
)
def test_final_number(text, value):
    assert final_number(text) == value


def test_registry_and_user_class(tmp_path):
    assert get_env_class("calculator") is CalculatorEnv and "calculator" in ENVIRONMENTS
    env = env_factory("calculator", tool_call_reward=0.5)()
    assert isinstance(env, CalculatorEnv) and env.tool_call_reward == 0.5
    f = tmp_path / "my_env.py"
    f.write_text(
        "class Echo:\n    def reset(self, seed=None, **task):\n        return [], {}\n"
        "    def step(self, action):\n        return [], 0.0, True, False, {}\n"
    )
    assert get_env_class(f"{f}:Echo").__name__ == "Echo"
    with pytest.raises(ConfigError, match="environment 'nope': not a registered environment \\(calculator"):
        get_env_class("nope")
    with pytest.raises(ConfigError, match=f"environment '{f}:Missing': .* has no class 'Missing'"):
        get_env_class(f"{f}:Missing")
    with pytest.raises(ConfigError, match="environment 'missing.py:E': no such file"):
        get_env_class("missing.py:E")
    with pytest.raises(ConfigError, match="has no reset"):
        get_env_class("alignline.rollout.tools:calculator")
