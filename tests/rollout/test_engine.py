"""The generation engine: batched generate equals one prompt at a time, seeds repeat, stop strings and
log-probs are right."""

from __future__ import annotations

import pytest
import torch

from alignline.rollout.engine import load_engine
from alignline.rollout.hf import HFEngine
from alignline.rollout.types import SamplingParams, cut_at_stop

PROMPTS = [
    [{"role": "user", "content": "What is two plus two?"}],
    [{"role": "user", "content": "Summarize the text in one sentence. The quick brown fox jumps."}],
    "Hello, how are you",
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Label: positive?"}],
]


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
            from alignline.rollout.types import render_prompt

            ids = engine.tokenizer(render_prompt(engine.tokenizer, prompt), add_special_tokens=False).input_ids
            full = torch.tensor([ids + c.token_ids])
            with torch.no_grad():
                logits = engine.model(full).logits[0, len(ids) - 1 : -1].float()
            expected = (
                torch.log_softmax(logits / (temperature or 1.0), -1)
                .gather(-1, torch.tensor(c.token_ids)[:, None])
                .squeeze(-1)
            )
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


def test_on_token_sees_every_token_in_order_and_changes_nothing(engine):
    """Batched, n = 2, several prompts: each row's tokens reach on_token as they are decoded, and the
    completions equal those of a call without it; the `generate` path reports them too (afterwards)."""
    params = SamplingParams(max_new_tokens=9, temperature=1.0, n=2, seed=3)
    plain = engine.generate(PROMPTS, params)
    for own_loop in (True, False):
        seen: dict[int, list[int]] = {}
        engine.own_loop = own_loop
        try:
            got = engine.generate(
                PROMPTS, params, on_token=lambda row, t, seen=seen: seen.setdefault(row, []).append(t)
            )
        finally:
            engine.own_loop = True
        if own_loop:
            assert [[c.token_ids for c in g] for g in got] == [[c.token_ids for c in g] for g in plain]
        assert seen == {i * 2 + c: got[i][c].token_ids for i in range(len(PROMPTS)) for c in range(2)}


def stream_text(tok, ids, stop=()):
    from alignline.rollout.types import TextStream

    s = TextStream(tok, stop)
    deltas = [s.push(t) for t in ids]
    return deltas, s


def test_text_stream_joins_to_the_text_through_multibyte_characters(tokenizer):
    """Byte-level BPE splits é, —, ✓, 日本語 and 🎉 into byte tokens: no delta carries half a character
    (U+FFFD) and the deltas join to the full decode exactly."""
    text = "héllo wörld — ✓ 日本語 🎉 ok"
    ids = tokenizer(text, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    assert len(ids) > len(text.split())  # the tokenizer really splits characters into bytes here
    deltas, s = stream_text(tokenizer, ids)
    assert "".join(deltas) == tokenizer.decode(ids, skip_special_tokens=True) == text
    assert not any("\ufffd" in d for d in deltas) and sum(1 for d in deltas if d) > 5
    assert s.finish(text) == ""


def test_text_stream_holds_a_possible_stop_and_cuts_at_it(tokenizer):
    from alignline.rollout.types import cut_at_stop

    text = "Hello there. STOP and more"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    stop = ("STOP", "ééé")
    from alignline.rollout.types import TextStream

    sent, s = "", TextStream(tokenizer, stop)
    for t in ids:
        sent += s.push(t)
        assert "S" not in sent  # "S", "ST", "STO" could start "STOP": never released
    final = cut_at_stop(tokenizer.decode(ids), stop)[0]
    assert final == "Hello there. " and sent + s.finish(final) == final and s.stopped
    # a held-back start that turns out not to be a stop is released once it cannot be one
    deltas, s = stream_text(tokenizer, tokenizer("say STAR now", add_special_tokens=False).input_ids, ["STOP"])
    assert "".join(deltas) == "say STAR now"
    # the stop check ignores a half character at the end: "b" + the first byte of "é" holds the "b" of "bé"
    ids = tokenizer("ab" + "é!", add_special_tokens=False).input_ids
    deltas, s = stream_text(tokenizer, ids, ["bé"])
    assert "".join(deltas) == "a" and s.finish(cut_at_stop(tokenizer.decode(ids), ["bé"])[0]) == ""


def test_stream_of_a_real_completion_equals_its_text_with_stops(engine):
    """The tiny model's own greedy tokens, with and without a stop string taken from its answer."""
    free = engine.generate(PROMPTS[:1], SamplingParams(max_new_tokens=16))[0][0]
    for stop in ((), (free.text[3:5],)):
        c = engine.generate(PROMPTS[:1], SamplingParams(max_new_tokens=16, stop=stop))[0][0]
        deltas, s = stream_text(engine.tokenizer, c.token_ids, stop)
        assert "".join(deltas) + s.finish(c.text) == c.text
        assert all(x not in "".join(deltas) for x in stop)
