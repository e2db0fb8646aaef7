"""The generation engine: batched generate equals one prompt at a time, seeds repeat, stop strings and
log-probs are right."""

from __future__ import annotations

import pytest
import torch

from alignline.rollout.engine import HFEngine, SamplingParams, cut_at_stop, load_engine

PROMPTS = [[{"role": "user", "content": "What is two plus two?"}],
           [{"role": "user", "content": "Summarize the text in one sentence. The quick brown fox jumps."}],
           "Hello, how are you",
           [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Label: positive?"}]]


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> HFEngine:
    return load_engine(str(tiny_model_dir), backend="hf", batch_size=8)


def test_batched_equals_one_at_a_time(engine):
    params = SamplingParams(max_new_tokens=12)
    batched = engine.generate(PROMPTS, params)
    for prompt, got in zip(PROMPTS, batched):
        alone = engine.generate([prompt], params)[0]
        assert got[0].token_ids == alone[0].token_ids and got[0].text == alone[0].text


def test_same_seed_same_samples_and_n_per_prompt(engine):
    params = SamplingParams(max_new_tokens=10, temperature=1.0, n=3, seed=7)
    first, again = engine.generate(PROMPTS[:2], params), engine.generate(PROMPTS[:2], params)
    assert [[c.token_ids for c in g] for g in first] == [[c.token_ids for c in g] for g in again]
    assert all(len(g) == 3 for g in first)
    other = engine.generate(PROMPTS[:2], SamplingParams(max_new_tokens=10, temperature=1.0, n=3, seed=8))
    assert [[c.token_ids for c in g] for g in first] != [[c.token_ids for c in g] for g in other]


def test_generation_leaves_the_global_rng_alone(engine):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    engine.generate(PROMPTS[:1], SamplingParams(max_new_tokens=4, temperature=1.0))
    assert torch.equal(torch.rand(3), expected)


def test_logprobs_equal_the_models_own(engine):
    """Each returned log-prob equals log softmax(logits / T) of a teacher-forced forward of prompt + completion."""
    for temperature in (0.0, 0.7):
        params = SamplingParams(max_new_tokens=8, temperature=temperature, logprobs=True, seed=1)
        for prompt, (c,) in zip(PROMPTS, engine.generate(PROMPTS, params)):
            from alignline.rollout.engine import render_prompt

            ids = engine.tokenizer(render_prompt(engine.tokenizer, prompt), add_special_tokens=False).input_ids
            full = torch.tensor([ids + c.token_ids])
            with torch.no_grad():
                logits = engine.model(full).logits[0, len(ids) - 1:-1].float()
            expected = torch.log_softmax(logits / (temperature or 1.0), -1).gather(
                -1, torch.tensor(c.token_ids)[:, None]).squeeze(-1)
            torch.testing.assert_close(torch.tensor(c.logprobs), expected, atol=1e-4, rtol=1e-4)


def test_stop_strings_end_a_completion(engine):
    free = engine.generate(PROMPTS[:1], SamplingParams(max_new_tokens=16))[0][0]
    assert len(free.text) > 3
    stop = free.text[2:4]
    cut = engine.generate(PROMPTS[:1], SamplingParams(max_new_tokens=16, stop=(stop,)))[0][0]
    assert stop not in cut.text and free.text.startswith(cut.text) and cut.finish_reason == "stop"
    assert cut_at_stop("abc STOP def", ["STOP", "d"]) == ("abc ", True)
    assert cut_at_stop("abc", ["x"]) == ("abc", False)


def test_unknown_backend_is_one_line():
    from alignline.errors import ConfigError

    with pytest.raises(ConfigError, match="backend 'tgi'"):
        load_engine("smollm2-135m", backend="tgi")


def test_own_loop_equals_transformers_generate(engine):
    """Greedy decoding through our loop (finished rows leave the batch) gives exactly generate's tokens."""
    params = SamplingParams(max_new_tokens=14)
    ours = engine.generate(PROMPTS, params)
    engine.own_loop = False
    try:
        reference = engine.generate(PROMPTS, params)
    finally:
        engine.own_loop = True
    assert [g[0].token_ids for g in ours] == [g[0].token_ids for g in reference]
    assert [g[0].finish_reason for g in ours] == [g[0].finish_reason for g in reference]
