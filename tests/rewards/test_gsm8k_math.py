"""`math_answer` on records of the published GSM8K (`{"question", "answer"}`, the answer a worked solution
ending in `#### N`) and MATH (`{"problem", "solution", "level", "type"}`, the answer in `\\boxed{}`) shapes:
each record's own reference solution scores 1.0 and a wrong one 0."""

from __future__ import annotations

from alignline.rewards.numeric import gold_answer_text
from alignline.rewards.registry import get_grader, grade

GSM8K = [
    {
        "question": "A baker sells 48 rolls in the morning and half as many in the afternoon. How many in all?",
        "answer": "In the afternoon she sells 48/2 = <<48/2=24>>24 rolls.\n"
        "In all she sells 48+24 = <<48+24=72>>72 rolls.\n#### 72",
    },
    {
        "question": "A shop earns $617 a day for two days. How much is that?",
        "answer": "Two days earn 617*2 = <<617*2=1234>>1,234 dollars.\n#### 1,234",
    },
]
MATH = [
    {
        "problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?",
        "solution": "We have $\\frac{1}{2} + \\frac{1}{4} = \\frac{2}{4} + \\frac{1}{4} = \\boxed{\\frac{3}{4}}$.",
        "level": "Level 1",
        "type": "Prealgebra",
    },
    {
        "problem": "Evaluate $\\sin^{-1} 1$ in radians.",
        "solution": "Since $\\sin \\frac{\\pi}{2} = 1$, $\\sin^{-1} 1 = \\boxed{\\frac{\\pi}{2}}.$",
        "level": "Level 2",
        "type": "Precalculus",
    },
]


def math_answer(completions: list[str], answers: list[str]) -> list:
    return grade("math_answer", get_grader("math_answer"), [None] * len(completions), completions, {"answer": answers})


def test_gsm8k_gold_is_read_after_the_marker():
    assert [gold_answer_text(r["answer"]) for r in GSM8K] == ["72", "1,234"]
    assert gold_answer_text("42") == "42"
    assert gold_answer_text(MATH[0]["solution"]) == "\\frac{3}{4}"


def test_gsm8k_reference_solution_scores_one_and_a_wrong_one_zero():
    answers = [r["answer"] for r in GSM8K]
    assert math_answer(answers, answers) == [1.0, 1.0]
    wrong = ["In all she sells 48+12 = 60 rolls.\n#### 60", "Two days earn 1,243 dollars.\n#### 1,243"]
    assert math_answer(wrong, answers) == [0.0, 0.0]


def test_a_completion_ending_in_the_marker_answers_with_it():
    answers = [r["answer"] for r in GSM8K]
    assert math_answer(["I think 70, no: 72 rolls.\n#### 72", "#### 1234"], answers) == [1.0, 1.0]
    assert math_answer(["The answer is 72.", r"so \boxed{1,234}"], answers) == [1.0, 1.0]
    assert math_answer(["#### 71", "no idea"], answers) == [0.0, 0.0]


def test_math_boxed_solutions_keep_working():
    solutions = [r["solution"] for r in MATH]
    assert math_answer(solutions, solutions) == [1.0, 1.0]
    assert math_answer([r"so \boxed{0.75}", r"\boxed{\dfrac{\pi}{2}}"], solutions) == [1.0, 1.0]
    assert math_answer([r"\boxed{\frac{1}{4}}", r"\boxed{\pi}"], solutions) == [0.0, 0.0]
