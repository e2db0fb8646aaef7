"""Example reward functions for the GRPO recipes, in TRL's signature: f(prompts, completions, **columns).

A completion is a string, or (conversational data, as TRL passes it) a list with one assistant message.
"""

from __future__ import annotations

import re

ANSWER_LINE = re.compile(r"Answer:\s*-?[\d,]+(?:\.\d+)?\s*$")


def _text(completion) -> str:
    return completion if isinstance(completion, str) else completion[-1]["content"]


def answer_format(completions, **kwargs) -> list[float]:
    """1.0 when the completion ends with a line `Answer: <number>`, as the prompts ask; else 0.0.

    >>> answer_format(["6 + 7 = 13\\nAnswer: 13", "It is 13."])
    [1.0, 0.0]
    """
    return [1.0 if ANSWER_LINE.search(_text(c).strip()) else 0.0 for c in completions]
