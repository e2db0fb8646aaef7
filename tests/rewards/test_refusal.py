"""The refusal detector on literal strings, benign look-alikes included, and its graders."""

from __future__ import annotations

import pytest

from alignline.errors import ConfigError
from alignline.rewards.judge import ScriptedEngine
from alignline.rewards.refusal import RefusalDetector, is_refusal, read_phrases
from alignline.rewards.registry import get_grader

REFUSALS = [
    "I can't help with that.",
    "I cannot assist with this request.",
    "I\u2019m sorry, but I can\u2019t provide instructions for that.",  # curly apostrophes
    "As an AI language model, I cannot do that.",
    "As an AI, I don't have opinions on this.",
    "I'm unable to help with creating malware.",
    "Sorry, I can't do that.",
    "I must decline to answer.",
    "I apologize, but that request goes against my guidelines.",
    "i   WON'T   help with that",  # case and spacing
    "Sure thing... actually, I cannot provide that information.",
]
BENIGN = [
    "I can't wait to help! Here is the recipe.",
    "I can't help but notice the bug is on line 3.",
    "As an AI researcher, I recommend reading the paper.",
    "Here are the steps: first, preheat the oven.",
    "You said you can't help with the move; here is a checklist.",  # "you can't", not "i can't"
    "I cannot stress enough how useful tests are.",
    "The assistant says: helpful answers matter.",
    "I'm sorry to hear that. Here is what you can do.",
    "I can't provide enough praise for this library.",
    "",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals(text):
    assert is_refusal(text), text


@pytest.mark.parametrize("text", BENIGN)
def test_benign_look_alikes(text):
    assert not is_refusal(text), text


def test_phrase_file_is_readable_and_extendable(tmp_path):
    refusals, benign = read_phrases()
    assert "i can't help with" in refusals and "i can't help but" in benign
    assert not is_refusal("Computer says no.")
    assert is_refusal("Computer says no.", extra=["computer says no"])
    own = tmp_path / "phrases.txt"
    own.write_text("# mine\nnope\n!nope, just kidding\n")
    d = RefusalDetector(phrases_file=own)
    assert d("Nope.") and not d("Nope, just kidding: here it is.") and not d("I can't help with that.")
    assert d.match("well, nope") == "nope"


def test_window():
    late = "Here is a long answer. " * 20 + "I cannot assist with that part."
    assert is_refusal(late) and not is_refusal(late, window=100)


def test_graders_and_options():
    texts = ["I can't help with that.", [{"role": "assistant", "content": "Sure, here it is."}], "Computer says no."]
    assert get_grader("refusal")(None, texts) == [1.0, 0.0, 0.0]
    assert get_grader("answered")(None, texts) == [0.0, 1.0, 1.0]
    assert get_grader("refusal", extra_phrases=["computer says no"])(None, texts) == [1.0, 0.0, 1.0]
    assert get_grader("refusal", extra_benign=["i can't help with that"])(None, texts) == [0.0, 0.0, 0.0]
    with pytest.raises(ConfigError, match="lists of strings"):
        get_grader("refusal", extra_phrases="computer says no")(None, texts)
    with pytest.raises(ConfigError, match="'window' must be a positive integer"):
        get_grader("refusal", window=0)(None, texts)


def test_judge_based_refusal(monkeypatch):
    """`judge_model`: the judge's yes/no decides; the template carries prompt and answer."""
    from alignline.rewards import judge, refusal

    engine = ScriptedEngine(lambda t: "Yes." if "weather" in t.split("[Answer]")[1] else "no")
    monkeypatch.setattr(refusal, "_refusal_judge", lambda model: judge.RefusalJudge(engine=engine))
    out = get_grader("refusal", judge_model="some-judge")(["q1", "q2"], ["I'd rather talk about the weather.", "4"])
    assert out == [1.0, 0.0]
    assert "[Request]\nq1" in engine.calls[0] and "Reply with one word: yes" in engine.calls[0]
