"""vLLM in process (the CPU build here) against the Hugging Face engine, the reference: the same greedy tokens,
texts, finish reasons and log-probs; LoRA hot-loading under new ids; full weights loaded into the running
model. One vLLM engine for the whole module (start-up is ~40 s), on a tiny random Llama.

Everything runs in float32, where the two engines agree exactly: in bfloat16 vLLM's kernels and torch's
matmuls sum in different orders, and a near tie between two tokens can go either way.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from alignline.rollout.hf import HFEngine
from alignline.rollout.types import SamplingParams, TokenIds
from support import save_random_adapter, save_tiny_model, vllm_or_skip

pytestmark = pytest.mark.slow

PROMPTS = [
    [{"role": "user", "content": "hello there, how are you?"}],
    "a plain text prompt",
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "what is 2+2?"}],
    TokenIds([5, 17, 42, 99, 100]),
]
GREEDY = SamplingParams(max_new_tokens=12, logprobs=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # head size 64 (hidden 128, 2 heads): vLLM's CPU attention takes the usual head sizes, not the 8 of
    # the session's tiny model
    return save_tiny_model(tmp_path_factory.mktemp("vllm") / "model", hidden=128, heads=2, kv_heads=1, intermediate=128)


@pytest.fixture(scope="module")
def loras(model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    return [save_random_adapter(model_dir, root / f"lora{i}", kind="lora", seed=i) for i in (1, 2)]


@pytest.fixture(scope="module")
def engine(model_dir):
    vllm_or_skip()
    from alignline.rollout.vllm import VLLMEngine

    return VLLMEngine.load(str(model_dir), "float32", enable_lora=True, max_lora_rank=8)


def assert_same(got, want, logprob_atol=1e-4):
    assert [[c.token_ids for c in g] for g in got] == [[c.token_ids for c in g] for g in want]
    assert [[c.text for c in g] for g in got] == [[c.text for c in g] for g in want]
    assert [[c.finish_reason for c in g] for g in got] == [[c.finish_reason for c in g] for g in want]
    assert [[c.prompt_tokens for c in g] for g in got] == [[c.prompt_tokens for c in g] for g in want]
    for g, w in zip(got, want):
        for c, d in zip(g, w):
            if d.logprobs is not None:
                torch.testing.assert_close(
                    torch.tensor(c.logprobs), torch.tensor(d.logprobs), atol=logprob_atol, rtol=0
                )


def test_greedy_equals_the_hf_engine(engine, model_dir):
    engine.use("base") if engine.adapters else None
    engine.active = None
    reference = HFEngine.load(str(model_dir), "float32")
    assert_same(engine.generate(PROMPTS, GREEDY), reference.generate(PROMPTS, GREEDY))
    assert engine.name == "vllm" and engine.dtype == "float32"


def test_stop_strings_as_the_hf_engine(engine, model_dir):
    engine.active = None
    reference = HFEngine.load(str(model_dir), "float32")
    free = reference.generate(PROMPTS[:1], SamplingParams(max_new_tokens=16))[0][0]
    stop = free.text[3:5]
    params = SamplingParams(max_new_tokens=16, stop=(stop,))
    got, want = engine.generate(PROMPTS, params), reference.generate(PROMPTS, params)
    assert_same(got, want)
    assert got[0][0].finish_reason == "stop" and stop not in got[0][0].text


def test_sampled_logprobs_are_temperature_one_logprobs(engine, model_dir):
    """At temperature 1 the two engines sample differently, but each token's log-prob is the model's
    log softmax at temperature 1 (what the RL loss recomputes); equal groups of one seed, different members."""
    engine.active = None
    params = SamplingParams(max_new_tokens=8, temperature=1.0, n=3, seed=7, logprobs=True)
    groups = engine.generate(PROMPTS[:2] + PROMPTS[:1], params)
    assert [len(g) for g in groups] == [3, 3, 3]
    assert len({tuple(c.token_ids) for c in groups[0]}) > 1, "the n completions of a prompt must differ"
    assert [c.token_ids for c in groups[0]] != [c.token_ids for c in groups[2]], "equal prompts must differ too"
    again = engine.generate(PROMPTS[:2] + PROMPTS[:1], params)
    assert [[c.token_ids for c in g] for g in again] == [[c.token_ids for c in g] for g in groups]
    reference = HFEngine.load(str(model_dir), "float32")
    tok = reference.tokenizer
    prompt = tok(reference.tokenizer.apply_chat_template(PROMPTS[0], tokenize=False, add_generation_prompt=True))
    for c in groups[0]:
        ids = engine.prompt_ids(PROMPTS[0])
        full = torch.tensor([ids + c.token_ids])
        with torch.no_grad():
            logits = reference.model(full).logits[0, len(ids) - 1 : -1].float()
        expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(c.token_ids)[:, None]).squeeze(-1)
        torch.testing.assert_close(torch.tensor(c.logprobs), expected, atol=1e-4, rtol=0)
    assert prompt  # the chat template renders


def test_load_lora_hot_swaps_adapters_under_new_ids(engine, loras, tmp_path):
    ids = []
    for path in loras:
        ids.append(engine.load_lora(str(path)))
        assert engine.active == "policy"
        assert_same(engine.generate(PROMPTS, GREEDY), HFEngine.load(str(path), "float32").generate(PROMPTS, GREEDY))
        assert engine.llm.llm_engine.list_loras() <= {ids[-1]}, "the previous version must be dropped"
    assert ids[1] > ids[0]
    # the same folder rewritten with other weights (an RL run saving each step in place): a new id reloads it
    same = tmp_path / "policy"
    shutil.copytree(loras[0], same)
    engine.load_lora(str(same))
    first = engine.generate(PROMPTS, GREEDY)
    shutil.rmtree(same)
    shutil.copytree(loras[1], same)
    engine.load_lora(str(same))
    assert_same(engine.generate(PROMPTS, GREEDY), HFEngine.load(str(loras[1]), "float32").generate(PROMPTS, GREEDY))
    assert [g[0].token_ids for g in engine.generate(PROMPTS, GREEDY)] != [g[0].token_ids for g in first]
    engine.use("base")
    assert engine.active is None


def test_load_weights_replaces_the_running_model(engine, model_dir):
    """Full fine-tuning: the trainer's tensors go into the running model; the answers change and equal the
    HF engine's with the same weights. (Runs last: the module's engine keeps the new weights.)"""
    engine.active = None
    reference = HFEngine.load(str(model_dir), "float32")
    before = engine.generate(PROMPTS, GREEDY)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in reference.model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    version = engine.load_weights(reference.model.named_parameters())
    assert version == 1 and engine.last_sync_s > 0
    after = engine.generate(PROMPTS, GREEDY)
    assert [g[0].token_ids for g in after] != [g[0].token_ids for g in before]
    assert_same(after, reference.generate(PROMPTS, GREEDY))


def test_merged_lora_weights_answer_as_the_adapter(engine, model_dir, loras):
    """`generation.lora_sync: merged` (the CPU's sync): the weights with the adapter's deltas folded in go into
    the running base model, and its greedy answers equal the HF engine's with the adapter on. The base weights
    are written back first (the test before this one changed them)."""
    from peft import PeftModel

    from alignline.models.loading import load_model
    from alignline.rollout.policy_sync import merged_lora_weights

    engine.active = None
    engine.load_weights(load_model(str(model_dir)).named_parameters())
    policy = PeftModel.from_pretrained(load_model(str(model_dir)), str(loras[0]))
    merged = dict(merged_lora_weights(policy))
    assert set(merged) == set(dict(load_model(str(model_dir)).named_parameters()))
    engine.load_weights(merged.items())
    assert_same(engine.generate(PROMPTS, GREEDY), HFEngine.load(str(loras[0]), "float32").generate(PROMPTS, GREEDY))
