"""alignline's log-probs and rewards equal each architecture's own transformers forward.

Each case is a tiny random model (hidden 32, 2 layers, vocabulary 96) built in-process, run in float64.
The reference is the architecture's own forward on each example alone: `model(ids, position_ids).logits`
-> log_softmax -> the target's entry (the reward: `AutoModelForSequenceClassification`'s pooled score).
alignline runs the same examples packed several to a row (and, separately, one to a row) through
`TokenLogprobModel` / `RewardModel` on whatever fast path `choose_fast_path` picks, which for these
classes is the allow-list, so every allow-list entry is proven here.

Tolerances: log-probs within 1e-5 absolute. The fused head computes its logits in float32 (rounding
about 6e-8 relative on logits of order 1), and transformers normalizes RMSNorm in float32 even in a
float64 model, so the two paths agree to float32 rounding, 1e-6 here, not to float64's. Gradients:
within 1e-5 of the largest entry of the same parameter's gradient (the same float32 rounding,
accumulated over 2 layers and ~40 positions; seen at ~1e-7 relative).

The initial weights are drawn wider than transformers' default (initializer_range 0.2), with norm
weights and biases moved off 1 and 0: logits of order 1 make a missed logit scale visible
(`test_a_plain_head_would_be_wrong_here`).
"""

import copy

import pytest
import torch
import transformers

from alignline.losses.token_logprobs import token_logprobs
from alignline.models.logprob_model import TokenLogprobModel, decoder_hidden
from alignline.models.reward_model import RewardModel
from alignline.testing import random_packed_batch, split_packed

VOCAB = 96
COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2,
              initializer_range=0.2, use_cache=False)
# name -> (config class, causal LM class, sequence classifier class or None, config overrides)
ARCHS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", "LlamaForSequenceClassification", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", "Qwen2ForSequenceClassification", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", "Qwen3ForSequenceClassification", {"head_dim": 8}),
    "mistral": ("MistralConfig", "MistralForCausalLM", "MistralForSequenceClassification",
                {"sliding_window": None, "head_dim": 8}),
    "mistral-sliding": ("MistralConfig", "MistralForCausalLM", "MistralForSequenceClassification",
                        {"sliding_window": 8, "head_dim": 8}),  # shorter than most examples: it bites
    "gemma": ("GemmaConfig", "GemmaForCausalLM", "GemmaForSequenceClassification", {"head_dim": 8}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", "Gemma2ForSequenceClassification",
               {"head_dim": 8, "query_pre_attn_scalar": 8, "sliding_window": 8, "final_logit_softcapping": 1.5,
                "attn_logit_softcapping": 5.0, "layer_types": ["sliding_attention", "full_attention"],
                "attn_implementation": "eager"}),  # transformers runs Gemma 2 eager only (attention softcapping)
    "phi3": ("Phi3Config", "Phi3ForCausalLM", "Phi3ForSequenceClassification", {}),
    "phi": ("PhiConfig", "PhiForCausalLM", "PhiForSequenceClassification", {}),  # the head has a bias
    "cohere": ("CohereConfig", "CohereForCausalLM", None, {"logit_scale": 0.25}),
    "granite": ("GraniteConfig", "GraniteForCausalLM", None,
                {"logits_scaling": 0.25, "embedding_multiplier": 2.0, "residual_multiplier": 0.5,
                 "attention_multiplier": 0.3}),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", "Olmo2ForSequenceClassification", {}),
}
PACKED_ATTENTION = {"llama", "qwen2", "qwen3", "mistral", "gemma", "phi3", "phi", "cohere", "granite", "olmo2"}


def _class(name: str | None):
    cls = getattr(transformers, name, None) if name else None
    if cls is None:
        pytest.skip(f"transformers {transformers.__version__} has no {name}")
    return cls


def build(arch: str, kind: str = "causal_lm", adapter: str = "full"):
    config_name, causal, classifier, overrides = ARCHS[arch]
    if kind == "reward" and classifier is None:
        pytest.skip(f"transformers has no sequence classifier for {arch}")
    config = _class(config_name)(**{"attn_implementation": "sdpa", **COMMON, **overrides}, num_labels=1)
    torch.manual_seed(0)
    model = _class(classifier if kind == "reward" else causal)(config).double()
    with torch.no_grad():  # norm weights off 1 and biases off 0: their gradients then say something
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.empty_like(p).uniform_(-0.3, 0.3))
    if adapter == "lora":
        import peft

        model = peft.get_peft_model(model, peft.LoraConfig(
            r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear",
            task_type="SEQ_CLS" if kind == "reward" else "CAUSAL_LM"))
        with torch.no_grad():  # B starts at zero: give it values so every LoRA gradient path is exercised
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.1)
    return model.train()


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
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=0)
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
    torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=0)
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
