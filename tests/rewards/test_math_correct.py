"""The answer-correctness preset `math_correct`: the answer counts only when written in the required format, and
then it must match (as `math_answer` compares); the option is checked when the grader is built."""

from __future__ import annotations

import pytest

from alignline.errors import ConfigError
from alignline.rewards.registry import get_grader


@pytest.mark.parametrize(
    "answer_format, completions, answers, expected",
    [
        # the last line `Answer: N`: a right number elsewhere, a hedge, or text after the line earn nothing
        (
            "answer_line",
            ["2 * 5 = 10\nAnswer: 10", "The answer is 10.", "Answer: 10, or 11", "Answer: 10\nHmm, 11", "Answer: 11"],
            [10, 10, 10, 10, 10],
            [1.0, 0.0, 0.0, 0.0, 0.0],
        ),
        ("answer_line", ["**Answer: 1,234.**", "answer: 7"], ["1234", "7"], [1.0, 1.0]),
        ("boxed", [r"so \boxed{\frac{1}{2}}", "Answer: 0.5"], ["0.5", "0.5"], [1.0, 0.0]),
        # GSM8K: the reply's `#### N` against the number after the record's `####`
        ("gsm8k", ["48/2 = 24\n#### 72", "The answer is 72", "#### 71"], ["... #### 72"] * 3, [1.0, 0.0, 0.0]),
        ("any", ["The answer is 72", "#### 72"], ["72", "72"], [1.0, 1.0]),
    ],
)
def test_format_is_folded_into_extraction(answer_format, completions, answers, expected):
    grader = get_grader("math_correct", answer_format=answer_format)
    assert grader(prompts=None, completions=completions, answer=answers) == expected


def test_default_is_the_answer_line_and_no_answer_is_none():
    assert get_grader("math_correct")(completions=["Answer: 3", "Answer: 3"], answer=[3, None]) == [1.0, None]


def test_an_unknown_format_is_one_line_naming_the_option():
    with pytest.raises(ConfigError, match="option 'answer_format' must be one of answer_line, boxed, gsm8k, any"):
        get_grader("math_correct", answer_format="latex")
