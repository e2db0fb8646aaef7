"""The fast path of TokenLogprobModel (per-example packed attention, LoRA as one autograd function,
fused RMSNorm and SwiGLU, the chunked head) computes what the plain path computes: the model's own
forward, with transformers' masked SDPA, peft's own LoRA forward, transformers' layers, full logits.

Models run in float64, but transformers normalizes RMSNorm in float32 even then, while the fused norm
keeps float64: the paths agree to float32 rounding (1e-6), not to 1e-10. The fused functions alone
are checked exactly, by gradcheck in float64."""

import copy

import peft
import pytest
import torch

from alignline.models.fast.packed_attention import Segments
from alignline.models.logprob_model import TokenLogprobModel
from support import random_packed_batch, tiny_llama


def _lora_model(dropout: float = 0.0):
    torch.manual_seed(0)
    model = peft.get_peft_model(
        tiny_llama(128, hidden=64, layers=2),
        peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
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


def _assert_same(values, expected, grads, expected_grads):
    torch.testing.assert_close(values, expected, atol=1e-6, rtol=1e-6)
    assert grads.keys() == expected_grads.keys() and len(grads) > 0
    for name in expected_grads:
        scale = expected_grads[name].abs().max().item()
        torch.testing.assert_close(grads[name], expected_grads[name], atol=1e-5 * scale, rtol=1e-5, msg=name)


def test_fused_functions_gradcheck():
    from alignline.models.fast.fused_layers import _RMSNorm, _SiluMul

    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    w = torch.rand(8, dtype=torch.float64).add_(0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: _RMSNorm.apply(a, b, 1e-6), (x, w))
    expected = w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))
    torch.testing.assert_close(_RMSNorm.apply(x, w, 1e-6), expected, atol=1e-14, rtol=1e-14)
    gate, up = (torch.randn(4, 6, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(_SiluMul.apply, (gate, up))
    torch.testing.assert_close(_SiluMul.apply(gate, up), torch.nn.functional.silu(gate) * up, atol=1e-14, rtol=0)


@pytest.mark.parametrize("packed", [True, False])
def test_fast_path_equals_plain_path(packed):
    model = _lora_model()
    batch = random_packed_batch(128, rows=3, width=300, packed=packed)  # > QUERY_BLOCK: blocked CPU attention
    plain, plain_grads = _logprobs_and_grads(model, batch, fast=False)
    fast, fast_grads = _logprobs_and_grads(model, batch, fast=True)
    _assert_same(fast, plain, fast_grads, plain_grads)


def test_fast_path_with_adapters_disabled_is_the_base_model():
    """DPO's LoRA reference runs the policy with adapters disabled: the fast LoRA must step aside."""
    model = _lora_model()
    batch = random_packed_batch(128, rows=2, width=64)
    ref_fast, _ = _logprobs_and_grads(model, batch, fast=True, disable_adapter=True)
    ref_plain, _ = _logprobs_and_grads(model, batch, fast=False, disable_adapter=True)
    torch.testing.assert_close(ref_fast, ref_plain, atol=1e-6, rtol=1e-6)
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
    torch.testing.assert_close(outs[1], outs[0], atol=1e-6, rtol=1e-6)


def test_segments_find_every_example_and_unpack_in_order():
    positions = torch.tensor([[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 4, 5]])
    seg = Segments.from_positions(positions)
    assert not seg.whole_rows
    lengths = sorted(int(index.numel()) // width for width, index in seg.buckets)
    assert sum(lengths) == 4  # examples of 3, 2, 1 and 6 tokens
    assert seg.unpack.numel() == positions.numel() and len(set(seg.unpack.tolist())) == positions.numel()
    assert Segments.from_positions(torch.arange(5).repeat(3, 1)).whole_rows


def test_fused_layers_full_fine_tuning_gradients_match():
    """No adapters: every weight trains, RMSNorm weights included."""
    torch.manual_seed(0)
    model = tiny_llama(128, hidden=64, layers=2)
    with torch.no_grad():  # non-trivial norm weights
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    batch = random_packed_batch(128, rows=2, width=96)
    plain, plain_grads = _logprobs_and_grads(model, batch, fast=False)
    fast, fast_grads = _logprobs_and_grads(model, batch, fast=True)
    assert any("norm" in n for n in plain_grads)
    _assert_same(fast, plain, fast_grads, plain_grads)


def test_reward_model_fast_path_equals_plain_path():
    from transformers import LlamaForSequenceClassification

    from alignline.models.reward_model import RewardModel

    config = tiny_llama(128, hidden=64, layers=2).config
    config.num_labels = 1
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    batch = random_packed_batch(128, rows=2, width=96)
    ends = (batch["position_ids"].reshape(-1)[1:] == 0).nonzero().squeeze(1)  # last token before each restart
    last_index = torch.cat([ends, torch.tensor([batch["position_ids"].numel() - 1])])
    rewards, grads = [], []
    for fast in (False, True):
        m = copy.deepcopy(model).double()
        r = RewardModel(m, fast=fast)(batch["input_ids"], batch["position_ids"], last_index)
        (r * torch.linspace(-1, 1, r.numel(), dtype=r.dtype)).sum().backward()
        rewards.append(r.detach())
        grads.append({n: p.grad for n, p in m.named_parameters()})
    _assert_same(rewards[1], rewards[0], grads[1], grads[0])
