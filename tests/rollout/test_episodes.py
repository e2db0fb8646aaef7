"""Multi-turn episodes: scripted engines give exact messages, rewards and masks (the masked tokens decode to
exactly the policy's turns), one generate call per turn across episodes; the real HF engine end to end."""

from __future__ import annotations

import pytest

from alignline.rollout.engine import load_engine
from alignline.rollout.env import env_factory
from alignline.rollout.episodes import episode_metrics, run_episodes
from alignline.rollout.types import SamplingParams
from support import ScriptedTokenEngine

CALL = '<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{}"}}}}\n</tool_call>'
TASKS = [
    {"prompt": [{"role": "user", "content": "Ann has 3 bags of 4 apples. How many apples?"}], "answer": 12},
    {"prompt": "Tom had 9 pens and lost 2. How many now?", "answer": 7},
    {"prompt": "Sue reads 5 pages a day for 6 days. How many pages?", "answer": 30},
]


def reply(prompt: str, call: int) -> str:
    """Ann: call, then answer (2 turns). Tom: answers at once, wrongly (1 turn). Sue: calls with a typo,
    then right, then answers (3 turns)."""
    if "Ann" in prompt:
        return ["Let me compute.\n" + CALL.format("3 * 4"), "Answer: 12"][call]
    if "Tom" in prompt:
        return "Answer: 8"
    return [CALL.format("5 * 6)"), CALL.format("5 * 6"), "That is 30 pages. Answer: 30"][call]


def policy_text(tokenizer, episode) -> list[str]:
    """The masked tokens, decoded run by run."""
    runs, current = [], []
    for token, m in zip(episode.input_ids, episode.mask):
        if m:
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    return runs + ([tokenizer.decode(current)] if current else [])


@pytest.fixture
def episodes(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, reply)
    eps = run_episodes(
        engine, env_factory("calculator", tool_call_reward=0.1), TASKS, SamplingParams(logprobs=True), max_turns=3
    )
    return engine, eps


def test_messages_rewards_and_ends(episodes):
    _, (ann, tom, sue) = episodes
    assert ann.messages == TASKS[0]["prompt"] + [
        {"role": "assistant", "content": "Let me compute.\n" + CALL.format("3 * 4")},
        {"role": "tool", "name": "calculator", "content": "12"},
        {"role": "assistant", "content": "Answer: 12"},
    ]
    assert ann.turn_rewards == [0.1, 1.0] and ann.reward == pytest.approx(1.1)
    assert (ann.terminated, ann.truncated, ann.policy_turns) == (True, False, [1, 3])
    assert tom.messages == [
        {"role": "user", "content": TASKS[1]["prompt"]},
        {"role": "assistant", "content": "Answer: 8"},
    ]
    assert (tom.turn_rewards, tom.terminated, tom.infos[-1]["correct"]) == ([0.0], True, False)
    assert [m["content"] for m in sue.messages[2::2]] == ["error: unexpected ')'", "30"]
    assert sue.turn_rewards == [0.0, 0.1, 1.0] and sue.terminated and not sue.truncated
    assert [e.group for e in episodes[1]] == [0, 1, 2]


def test_mask_is_exactly_the_policys_turns(episodes, tokenizer):
    _, eps = episodes
    eos = tokenizer.eos_token
    for e in eps:
        assert len(e.input_ids) == len(e.mask) == len(e.logprobs)
        assert policy_text(tokenizer, e) == [e.messages[i]["content"] + eos for i in e.policy_turns]
        assert [lp for lp, m in zip(e.logprobs, e.mask) if m] == [-0.5] * sum(e.mask)
        assert all(lp == 0.0 for lp, m in zip(e.logprobs, e.mask) if not m)
        assert e.retokenized == 0  # the scripted tokens are the canonical ones
        # the generated ids are exactly the masked ones, turn after turn
        assert [t for t, m in zip(e.input_ids, e.mask) if m] == [t for c in e.completions for t in c.token_ids]
    # tool results, prompts and template tokens are context
    ann = tokenizer.decode(eps[0].input_ids)
    assert "<tool_response>\n12\n</tool_response>" in ann and "Ann has 3 bags" in ann


def test_one_generate_call_per_turn_and_prompts_are_prefixes(episodes, tokenizer):
    engine, eps = episodes
    assert [len(c) for c in engine.calls] == [3, 2, 1]  # Tom ends after turn 1, Ann after turn 2
    full = tokenizer.decode(eps[2].input_ids)
    for turn_prompts in engine.calls:
        assert full.startswith(turn_prompts[-1])  # Sue is last in every call


def test_truncated_at_max_turns(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, lambda prompt, call: CALL.format("1 + 1"))
    (e,) = run_episodes(engine, env_factory("calculator"), TASKS[:1], SamplingParams(), max_turns=2)
    assert (e.terminated, e.truncated, len(e.policy_turns), e.logprobs) == (False, True, 2, None)
    assert e.messages[-1] == {"role": "tool", "name": "calculator", "content": "2"}
    assert episode_metrics([e])["truncated_rate"] == 1.0


def test_generated_ids_kept_where_the_text_retokenizes_differently(tokenizer):
    """The engine 'generated' one token per character: re-tokenizing its text gives other ids. The episode
    keeps the generated ones, so the masked ids and the log-probs are the generator's."""

    def by_character(text):
        return [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(ch))[0] for ch in text]

    engine = ScriptedTokenEngine(tokenizer, reply, tokenize=by_character)
    ann, tom = run_episodes(engine, env_factory("calculator"), TASKS[:2], SamplingParams(logprobs=True), max_turns=3)
    assert ann.retokenized == 2 and tom.retokenized == 1
    assert [t for t, m in zip(ann.input_ids, ann.mask) if m] == [t for c in ann.completions for t in c.token_ids]
    assert policy_text(tokenizer, ann) == [ann.messages[i]["content"] + tokenizer.eos_token for i in ann.policy_turns]


def test_groups_of_n_and_metrics(tokenizer):
    engine = ScriptedTokenEngine(tokenizer, reply)
    eps = run_episodes(engine, env_factory("calculator"), TASKS[:2], SamplingParams(n=2), max_turns=3)
    assert [e.group for e in eps] == [0, 0, 1, 1]
    assert [len(c) for c in engine.calls] == [4, 2]
    m = episode_metrics(eps)
    assert m == {
        "tool_call_rate": 0.5,
        "correct_rate": 0.5,
        "truncated_rate": 0.0,
        "reward": 0.5,
        "turns": 1.5,
        "tool_calls": 0.5,
    }


def test_real_hf_engine_end_to_end(tiny_model_dir):
    """Random outputs: only the bookkeeping is checked (shapes, the masked ids and log-probs are the generated
    ones, one call per turn)."""
    engine = load_engine(str(tiny_model_dir), backend="hf", batch_size=8)
    calls = []
    original = engine.generate
    engine.generate = lambda prompts, params: calls.append(len(prompts)) or original(prompts, params)
    params = SamplingParams(max_new_tokens=12, temperature=1.0, logprobs=True, seed=3, n=2)
    eps = run_episodes(engine, env_factory("calculator"), TASKS[:2], params, max_turns=2)
    assert len(eps) == 4 and calls[0] == 4 and len(calls) <= 2
    for e in eps:
        assert len(e.input_ids) == len(e.mask) == len(e.logprobs) and 1 <= len(e.completions) <= 2
        assert [t for t, m in zip(e.input_ids, e.mask) if m] == [t for c in e.completions for t in c.token_ids]
        assert [lp for lp, m in zip(e.logprobs, e.mask) if m] == [lp for c in e.completions for lp in c.logprobs]
        assert e.done and len(e.turn_rewards) == len(e.completions)
