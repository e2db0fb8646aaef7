"""The reward-model grader: the same scores as `RewardScorer` (what `alignline score` prints), model loaded once."""

from __future__ import annotations

import pytest

from alignline.data.formats import Message
from alignline.rewards.registry import get_grader, grade
from alignline.rewards.reward_models import RewardScorer, as_chat


def test_as_chat_forms():
    p, r = as_chat("q", [{"role": "assistant", "content": "a"}])
    assert p == [Message("user", "q")] and r == [Message("assistant", "a")]
    assert as_chat([Message("user", "q")], "a") == ([Message("user", "q")], [Message("assistant", "a")])


def test_reward_model_grader(tiny_model_dir):
    g = get_grader("reward_model", model=str(tiny_model_dir))
    assert get_grader({"function": "reward_model", "model": str(tiny_model_dir)}) is g  # built once
    prompts = ["What is 2+2?", [{"role": "user", "content": "Hi"}]]
    completions = ["Four.", [{"role": "assistant", "content": "Hello!"}]]
    scores = grade("reward_model", g, prompts, completions, {"answer": ["4", None]})
    # A causal LM loaded as a reward model gets a freshly initialized head: compare with the grader's own scorer.
    assert isinstance(g.scorer, RewardScorer)
    expected = g.scorer(
        [[Message("user", "What is 2+2?")], [Message("user", "Hi")]],
        [[Message("assistant", "Four.")], [Message("assistant", "Hello!")]],
    )
    assert scores == pytest.approx(expected) and len(set(scores)) == 2


def test_run_score_strings_and_message_dicts(tiny_model_dir, tmp_path):
    """`alignline score` (whose chat conversion the grader shares) on a string pair and on message-dict records."""
    import io
    import json

    from alignline.rewards.reward_models import run_score
    from support import write_jsonl

    buf = io.StringIO()
    one = run_score({"reward": str(tiny_model_dir)}, {}, None, "q", "a", out=buf)
    assert set(one["rewards"]) == {"reward"} and isinstance(one["combined"], float)
    data = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"prompt": [{"role": "user", "content": "Hi"}], "response": [{"role": "assistant", "content": "Hello"}]},
            {"prompt": "q", "completion": "a"},
        ],
    )
    buf = io.StringIO()
    summary = run_score({"reward": str(tiny_model_dir)}, {}, str(data), None, None, out=buf)
    assert summary["responses"] == 2 and len([json.loads(x) for x in buf.getvalue().splitlines()]) == 2
