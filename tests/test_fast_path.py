"""The fast path of TokenLogprobModel (per-example packed attention, LoRA as one autograd function)
computes what the plain path computes: transformers' masked SDPA and peft's own LoRA forward."""

import copy

import peft
import pytest
import torch

from alignline.models.logprob_model import TokenLogprobModel
from alignline.models.packed_attention import Segments
from alignline.testing import random_packed_batch, tiny_llama


def _lora_model(dropout: float = 0.0):
    torch.manual_seed(0)
    model = peft.get_peft_model(tiny_llama(128, hidden=64, layers=2), peft.LoraConfig(
        r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"))
    with torch.no_grad():  # B starts at zero: give it values so every LoRA gradient path is exercised
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return model


def _logprobs_and_grads(model, batch, fast: bool, disable_adapter: bool = False):
    m = copy.deepcopy(model).double()
    m.train()
    wrapped = TokenLogprobModel(m, fast=fast)
    if disable_adapter:
        with m.disable_adapter(), torch.no_grad():
            return wrapped(**batch), {}
    logp = wrapped(**batch)
    (logp * torch.linspace(-1, 1, logp.numel(), dtype=logp.dtype)).sum().backward()
    return logp.detach(), {n: p.grad for n, p in m.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("packed", [True, False])
def test_fast_path_equals_plain_path(packed):
    model = _lora_model()
    batch = random_packed_batch(128, rows=3, width=300, packed=packed)  # > QUERY_BLOCK: blocked CPU attention
    plain, plain_grads = _logprobs_and_grads(model, batch, fast=False)
    fast, fast_grads = _logprobs_and_grads(model, batch, fast=True)
    torch.testing.assert_close(fast, plain, atol=1e-10, rtol=1e-10)
    assert plain_grads.keys() == fast_grads.keys() and len(plain_grads) > 0
    for name in plain_grads:
        torch.testing.assert_close(fast_grads[name], plain_grads[name], atol=1e-10, rtol=1e-8, msg=name)


def test_fast_path_with_adapters_disabled_is_the_base_model():
    """DPO's LoRA reference runs the policy with adapters disabled: the fast LoRA must step aside."""
    model = _lora_model()
    batch = random_packed_batch(128, rows=2, width=64)
    ref_fast, _ = _logprobs_and_grads(model, batch, fast=True, disable_adapter=True)
    ref_plain, _ = _logprobs_and_grads(model, batch, fast=False, disable_adapter=True)
    torch.testing.assert_close(ref_fast, ref_plain, atol=1e-10, rtol=1e-10)
    with_adapters, _ = _logprobs_and_grads(model, batch, fast=True)
    assert (with_adapters - ref_fast).abs().max() > 1e-4


def test_lora_dropout_takes_peft_path_and_stays_exact_in_eval():
    model = _lora_model(dropout=0.1)
    batch = random_packed_batch(128, rows=2, width=64)
    outs = []
    for fast in (False, True):
        m = copy.deepcopy(model).double().eval()
        with torch.no_grad():
            outs.append(TokenLogprobModel(m, fast=fast)(**batch))
    torch.testing.assert_close(outs[1], outs[0], atol=1e-10, rtol=1e-10)


def test_segments_find_every_example_and_unpack_in_order():
    positions = torch.tensor([[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 4, 5]])
    seg = Segments.from_positions(positions)
    assert not seg.whole_rows
    lengths = sorted(int(index.numel()) // width for width, index in seg.buckets)
    assert sum(lengths) == 4  # examples of 3, 2, 1 and 6 tokens
    assert seg.unpack.numel() == positions.numel() and len(set(seg.unpack.tolist())) == positions.numel()
    assert Segments.from_positions(torch.arange(5).repeat(3, 1)).whole_rows
