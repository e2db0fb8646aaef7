"""alignline's log-probs and rewards equal each architecture's own transformers forward.

Each case is a tiny random model (hidden 32, 2 layers, vocabulary 96) built in-process, run in float64.
The reference is the architecture's own forward on each example alone: `model(ids, position_ids).logits`
-> log_softmax -> the target's entry (the reward: `AutoModelForSequenceClassification`'s pooled score).
alignline runs the same examples packed several to a row (and, separately, one to a row) through
`TokenLogprobModel` / `RewardModel` on whatever fast path `choose_fast_path` picks, which for these
classes is the allow-list, so every allow-list entry is proven here.

Tolerances: log-probs within 1e-5 absolute. The fused head computes its logits in float32 (rounding
about 6e-8 relative on logits of order 1), and transformers normalizes RMSNorm in float32 even in a
float64 model, so the two paths agree to float32 rounding, not to float64's: measured 4e-7 to 1.3e-6,
and 3.4e-6 on Granite, whose logits are 4x larger here (`python bench/check_fast_path.py --architectures`).
Gradients: within 1e-5 of the largest entry of the same parameter's gradient (the same float32 rounding
carried back through 2 layers; measured 1e-7 to 1.3e-6 relative).

The initial weights are drawn wider than transformers' default (initializer_range 0.2), with norm
weights and biases moved off 1 and 0: logits of order 1 make a missed logit scale visible
(`test_a_plain_head_would_be_wrong_here`).
"""

import copy

import pytest
import torch

from alignline.losses.token_logprobs import token_logprobs
from alignline.models.fast.forward import decoder_hidden
from alignline.models.logprob_model import TokenLogprobModel
from alignline.models.reward_model import RewardModel
from support import (
    TINY_ARCHITECTURES,
    TINY_VOCAB,
    random_packed_batch,
    reorder_tolerance,
    split_packed,
    tiny_architecture,
)

VOCAB = TINY_VOCAB
ARCHS = TINY_ARCHITECTURES
# These float64 models normalize in float32 (transformers' norms upcast to float32, not to the model's dtype): the
# fast path and the architecture's forward agree to float32 precision over the widest reduction after a norm (the
# MLP's intermediate size, 64), not to float64's.
WIDEST_REDUCTION = 64


def float32_norm_tol(want: torch.Tensor) -> float:
    return reorder_tolerance(want.detach().abs().max().item(), terms=WIDEST_REDUCTION)


PACKED_ATTENTION = {"llama", "qwen2", "qwen3", "mistral", "gemma", "phi3", "phi", "cohere", "granite", "olmo2"}


def build(arch: str, kind: str = "causal_lm", adapter: str = "full"):
    try:
        return tiny_architecture(arch, kind, adapter)
    except LookupError as e:
        pytest.skip(str(e))


def own_logprobs(model, examples) -> torch.Tensor:
    """The architecture's own forward, each example alone."""
    out = []
    for ids, targets in examples:
        logits = model(input_ids=ids[None], position_ids=torch.arange(len(ids))[None], use_cache=False).logits[0]
        keep = targets != -100
        out.append(torch.log_softmax(logits[keep], -1).gather(1, targets[keep, None]).squeeze(1))
    return torch.cat(out)


def _weights(n: int) -> torch.Tensor:
    return torch.linspace(-1, 1, n, dtype=torch.float64) + 0.3


def _grads(model) -> dict:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def assert_grads_close(got: dict, want: dict, tol: float = 1e-5) -> float:
    """Each parameter's gradient within `tol` of its own largest entry; returns the worst relative error."""
    assert got.keys() == want.keys() and want
    worst = 0.0
    for name in want:
        scale = want[name].abs().max().item()
        assert scale > 0, f"{name}: no gradient reaches it"  # 2 layers, all trainable: each must get one
        err = (got[name].double() - want[name]).abs().max().item() / scale
        worst = max(worst, err)
        assert err <= tol, f"{name}: relative gradient error {err:.2e}"
    return worst


@pytest.mark.parametrize("adapter", ["full", "lora"])
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "whole"])
@pytest.mark.parametrize("arch", list(ARCHS))
def test_logprobs_and_grads_equal_the_architecture_forward(arch, packed, adapter):
    model = build(arch, adapter=adapter)
    batch = random_packed_batch(VOCAB, rows=2, width=40, seed=1, packed=packed)
    reference = copy.deepcopy(model)
    want = own_logprobs(reference, split_packed(batch))
    (want * _weights(want.numel())).sum().backward()

    wrapped = TokenLogprobModel(model)
    assert wrapped.fast_path.basis.startswith("allow-list"), wrapped.fast_path
    assert wrapped.fast_path.fused_head
    assert wrapped.fast_path.packed_attention == (arch in PACKED_ATTENTION)
    got = wrapped(**batch)
    (got * _weights(got.numel())).sum().backward()
    torch.testing.assert_close(got.double(), want, atol=float32_norm_tol(want), rtol=0)
    assert_grads_close(_grads(model), _grads(reference))


def _last_index(batch) -> torch.Tensor:
    pos = batch["position_ids"].reshape(-1)
    ends = (pos[1:] == 0).nonzero().squeeze(1)  # the token before each restart
    return torch.cat([ends, torch.tensor([pos.numel() - 1])])


@pytest.mark.parametrize("adapter", ["full", "lora"])
@pytest.mark.parametrize("arch", list(ARCHS))
def test_rewards_and_grads_equal_the_sequence_classifier_forward(arch, adapter):
    model = build(arch, kind="reward", adapter=adapter)
    batch = random_packed_batch(VOCAB, rows=2, width=40, seed=2)
    batch["input_ids"][batch["input_ids"] == 0] = 3  # no pad id inside: the classifier pools at its last non-pad
    reference = copy.deepcopy(model)
    want = torch.cat([reference(input_ids=ids[None], use_cache=False).logits[0] for ids, _ in split_packed(batch)])
    (want * _weights(want.numel())).sum().backward()

    wrapped = RewardModel(model)
    assert wrapped.fast_path.basis.startswith("allow-list"), wrapped.fast_path
    got = wrapped(batch["input_ids"], batch["position_ids"], _last_index(batch))
    (got * _weights(got.numel())).sum().backward()
    torch.testing.assert_close(got.double(), want, atol=float32_norm_tol(want), rtol=0)
    assert_grads_close(_grads(model), _grads(reference))


@pytest.mark.parametrize("arch", ["cohere", "granite", "gemma2", "phi"])
def test_a_plain_head_would_be_wrong_here(arch):
    """What the fused head computed before it read the architecture's head (h @ W^T alone) is far off
    here: the matrix above would catch the bug it fixes."""
    model = build(arch).eval()
    batch = random_packed_batch(VOCAB, rows=2, width=40, seed=1)
    with torch.no_grad():
        want = own_logprobs(model, split_packed(batch))
        hidden = decoder_hidden(model, model.get_decoder(), batch["input_ids"], batch["position_ids"], False)
        keep = batch["targets"] != -100
        naive = token_logprobs(hidden[keep], model.get_output_embeddings().weight, batch["targets"][keep])
    assert (naive.double() - want).abs().max() > 1e-2


@pytest.mark.parametrize(
    "arch,formula",
    [
        ("llama", "logits = h @ W^T"),
        ("phi", "logits = h @ W^T + b"),
        ("cohere", "logits = (h @ W^T) * 0.25"),
        ("granite", "logits = (h @ W^T) * 4"),
        ("gemma2", "logits = 1.5 tanh(h @ W^T / 1.5)"),
    ],
)
def test_the_decision_records_the_head_it_applies(arch, formula):
    assert TokenLogprobModel(build(arch)).fast_path.reasons["fused_head"] == formula
