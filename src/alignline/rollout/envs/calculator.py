"""A calculator tool on arithmetic word problems: the environment a small policy learns to call.

Task fields: `prompt` (chat messages, or a string: one user turn) or `question`; `answer` (a number);
`tools` (optional; the calculator's schema by default). Each policy reply is read for tool calls
(`rollout/tools.py`): every call gets one `tool` message with its result, or an `error: ...` line
(unknown tool, missing `expression`, division by zero, a name in the expression, a malformed call),
and the episode goes on. A reply with no tool call is the final answer: `Answer: <number>` if the reply
has it, else its last number; reward 1 when it equals the task's `answer` (to 1e-6), and the episode
ends. The episode runner truncates at its `max_turns`.

Shaping: `tool_call_reward` (default 0) is added once per episode, on the first turn with a
well-formed calculator call; once, so calling the tool again and again earns nothing more.
`require_tool` gives the correctness reward only to episodes that called the tool. `format_reward`
(default 0) is added to a final reply written as `Answer: <number>`. `shaping_only_if_correct` pays both
shaping rewards only in episodes whose answer earned the correctness reward (at the final step), so the
policy cannot collect them by calling the tool or writing the answer line with a wrong number (the
environment's form of a reward's `only_if: correct`).

Every step's info has `components`, the episode's scores so far, each 0 or 1: `correct` (the
correctness reward was earned), `tool` (a well-formed calculator call ran without error), `format`
(the final reply has an `Answer: <number>` line). The reward is
`correct + tool_call_reward * tool + format_reward * format`; RL logs each as `reward/<name>`.
"""

from __future__ import annotations

import re
from fractions import Fraction

from alignline.rollout.tools import CALCULATOR_TOOL, calculator, find_tool_calls

ANSWER = re.compile(r"answer\s*(?:is)?\s*[:=]?\s*\**\s*(-?\d[\d,]*(?:\.\d+)?)", re.IGNORECASE)
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
ANSWER_LINE = re.compile(r"answer:\s*\**\s*-?\d", re.IGNORECASE)


def final_number(text: str) -> Fraction | None:
    """The reply's answer: the number after the last `Answer:`, else the last number; None if none.

    >>> final_number("3 + 4 = 7, so Answer: 7."), final_number("It is 12 apples"), final_number("no idea")
    (Fraction(7, 1), Fraction(12, 1), None)
    """
    found = ANSWER.findall(text) or NUMBER.findall(text)
    if not found:
        return None
    try:
        return Fraction(found[-1].replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def opening_messages(task: dict) -> list[dict]:
    prompt = task.get("prompt", task.get("question"))
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and prompt:
        return [dict(m) for m in prompt]
    raise ValueError("a calculator task needs a `prompt` (messages or a string) or a `question`")


class CalculatorEnv:
    def __init__(
        self,
        tool_call_reward: float = 0.0,
        require_tool: bool = False,
        format_reward: float = 0.0,
        shaping_only_if_correct: bool = False,
    ):
        self.tool_call_reward = tool_call_reward
        self.require_tool = require_tool
        self.format_reward = format_reward
        self.shaping_only_if_correct = shaping_only_if_correct
        self.answer: Fraction | None = None
        self.called = False

    def reset(self, seed: int | None = None, **task) -> tuple[list[dict], dict]:
        if "answer" not in task:
            raise ValueError("a calculator task needs an `answer`")
        self.answer = Fraction(str(task["answer"]))
        self.called = False
        return opening_messages(task), {"tools": task.get("tools") or [CALCULATOR_TOOL]}

    def step(self, action: str) -> tuple[list[dict], float, bool, bool, dict]:
        calls, errors = find_tool_calls(action)
        if calls or errors:
            results = [self.run_call(c) for c in calls]
            observation = [{"role": "tool", "name": c["name"], "content": r} for c, r in zip(calls, results)]
            observation += [{"role": "tool", "content": e} for e in errors]
            good = any(c["name"] == "calculator" and not r.startswith("error: ") for c, r in zip(calls, results))
            reward = 0.0
            if good and not self.called and not self.shaping_only_if_correct:
                reward = self.tool_call_reward
            self.called = self.called or good
            return (
                observation,
                reward,
                False,
                False,
                {"tool_results": results, "tool_errors": errors, "components": self.components(False, False)},
            )
        value = final_number(action)
        correct = value is not None and abs(value - self.answer) <= Fraction(1, 10**6)
        earned = correct and (self.called or not self.require_tool)
        formatted = ANSWER_LINE.search(action) is not None
        reward = float(earned) + (self.format_reward if formatted else 0.0)
        if self.shaping_only_if_correct:  # the shaping is paid here, and only with the correctness reward
            reward = float(earned) * (1.0 + self.format_reward * formatted + self.tool_call_reward * self.called)
        return (
            [],
            reward,
            True,
            False,
            {
                "correct": correct,
                "final": None if value is None else str(value),
                "called_tool": self.called,
                "components": self.components(earned, formatted),
            },
        )

    @property
    def reward_gates(self) -> dict[str, str]:
        """The shaping components paid only with a right answer (`rollout/env.py`)."""
        return {"tool": "correct", "format": "correct"} if self.shaping_only_if_correct else {}

    def components(self, earned: bool, formatted: bool) -> dict[str, float]:
        return {"correct": float(earned), "tool": float(self.called), "format": float(formatted)}

    def run_call(self, call: dict) -> str:
        if call["name"] != "calculator":
            return f"error: unknown tool {call['name']!r}; the tool is calculator"
        expression = call["arguments"].get("expression")
        if not isinstance(expression, str):
            return 'error: calculator takes {"expression": "<arithmetic>"}'
        return calculator(expression)
