"""Pairwise judges: template, reply parsing, sampling, the grader over a baseline column, scripted judges."""

from __future__ import annotations

import pytest

from alignline.errors import ConfigError
from alignline.rewards.judge import (
    PAIRWISE_LABELS,
    PairwiseJudge,
    ScriptedEngine,
    ScriptedJudge,
    fill,
    judge,
    read_label,
)
from alignline.rewards.registry import get_grader, grade


def answers(text: str) -> tuple[str, str]:
    """The two answers out of a rendered pairwise template."""
    a = text.split("[Answer A]\n")[1].split("\n\n[Answer B]")[0]
    b = text.split("[Answer B]\n")[1].split("\n\nReply")[0]
    return a, b


def longer_wins(text: str) -> str:
    a, b = answers(text)
    return "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"


@pytest.mark.parametrize(
    "reply, value",
    [
        ("A", 1.0),
        ("b", 0.0),
        ("Tie", 0.5),
        ("**A**", 1.0),
        ("[[B]]", 0.0),
        ("Verdict: A", 1.0),
        ("Answer B is better.", 0.0),
        ("Final verdict: tie.", 0.5),
        ("I think A", None),
        ("", None),
        ("Both.", 0.5),
    ],
)
def test_read_label(reply, value):
    assert read_label(reply, PAIRWISE_LABELS) == value


def test_judge_through_an_engine():
    engine = ScriptedEngine(longer_wins)
    j = PairwiseJudge(engine=engine)
    assert j.judge("Which?", "a long answer", "short") == 1.0
    assert j.judge("Which?", "short", "a long answer") == 0.0
    assert j.judge([{"role": "user", "content": "Which?"}], [{"role": "assistant", "content": "same"}], "same") == 0.5
    sent = engine.calls[0]
    assert "[Request]\nWhich?" in sent and "Reply with one word: A" in sent  # the bundled template, filled


def test_unreadable_reply_is_none_and_samples_average():
    assert PairwiseJudge(engine=ScriptedEngine(lambda t: "Hmm, hard to say")).judge("q", "a", "b") is None
    replies = iter(["A", "B", "A", "nonsense"])
    j = PairwiseJudge(engine=ScriptedEngine(lambda t: next(replies)), samples=4)
    assert j.judge("q", "a", "b") == pytest.approx(2 / 3)  # readable replies A, B, A -> (1 + 0 + 1) / 3
    with pytest.raises(ConfigError, match="samples 2 needs a temperature > 0"):
        PairwiseJudge(engine=ScriptedEngine(str), samples=2, temperature=0)


def test_pairwise_grader_against_baseline_column():
    g = get_grader("pairwise_judge", engine=ScriptedEngine(longer_wins))
    out = grade(
        "pairwise_judge",
        g,
        ["q1", "q2", "q3"],
        ["long answer", "x", "y"],
        {"baseline": ["short", "a much longer one", None]},
    )
    assert out == [1.0, 0.0, None]


def test_template_override(tmp_path):
    engine = ScriptedEngine(lambda t: "A")
    path = tmp_path / "judge.txt"
    path.write_text("Q={prompt} | {a} vs {b} | {not_a_field}")
    PairwiseJudge(engine=engine, template=str(path)).judge("say {a}", "x", "y")
    assert engine.calls[-1] == "Q=say {a} | x vs y | {not_a_field}"  # filled once: braces in texts stay
    PairwiseJudge(engine=engine, template="Compare {a} and {b} for {prompt}").judge("p", "x", "y")
    assert engine.calls[-1] == "Compare x and y for p"
    with pytest.raises(ConfigError, match=r"grader 'pairwise_judge': the judge template has no \{b\} placeholder"):
        PairwiseJudge(engine=engine, template="only {a} and {prompt}")
    with pytest.raises(ConfigError, match="is neither a file nor a template"):
        PairwiseJudge(engine=engine, template="no_such_file.txt")
    assert fill("{a}{b}", {"a": "{b}", "b": "1"}) == "{b}1"


def test_scripted_judge_and_module_function():
    assert ScriptedJudge("first").judge("q", "x", "yy") == 1.0
    assert ScriptedJudge("first").judge("q", "yy", "x") == 1.0  # position bias, for win-rate tests
    assert ScriptedJudge(lambda p, a, b: float("good" in a)).judge_batch(["q", "q"], ["good", "bad"], ["", ""]) == [
        1.0,
        0.0,
    ]
    assert get_grader("scripted_judge", rule="shorter")(None, ["a", "abc"], baseline=["ab", "ab"]) == [1.0, 0.0]
    with pytest.raises(ConfigError, match="rule 'best' is not one of longer"):
        get_grader("scripted_judge", rule="best")
    assert judge("q", "long answer", "b", engine=ScriptedEngine(longer_wins)) == 1.0


def test_judge_with_a_real_engine(tiny_model_dir):
    """The tiny random model as judge: the whole path runs; its reply is rarely a label, so None is fine."""
    j = get_grader("pairwise_judge", model=str(tiny_model_dir), max_new_tokens=3, backend="hf")
    assert get_grader("pairwise_judge", model=str(tiny_model_dir), max_new_tokens=3, backend="hf") is j
    assert j.judge("What is 2+2?", "4", "5") in (None, 0.0, 0.5, 1.0)
