"""The one decision of the fast path (`models/fast/decision.py`): the off switch leaves the model as
loaded; what is not on the allow-list goes through the one-batch self-check, which lets exact set-ups
(other PEFT tuners, hooks, a subclass) keep the fast path and sends inexact ones to the plain path,
where the log-probs are the model's own. Tiny float64 Llamas; tolerances as in test_architectures.py."""

import copy
import json
import types

import peft
import pytest
import torch
from torch import nn
from transformers import LlamaForCausalLM, LlamaForSequenceClassification

from alignline.models.fast import forward
from alignline.models.fast.decision import FastPath, choose_fast_path, fast_path_record
from alignline.models.fast.patching import patched_modules
from alignline.models.logprob_model import TokenLogprobModel
from alignline.models.reward_model import RewardModel
from support import random_packed_batch, reorder_tolerance, split_packed, tiny_llama

VOCAB = 96


def _float32_norm_tol(want: torch.Tensor) -> float:
    """These float64 models normalize in float32 (transformers' RMSNorm upcasts to float32, not to the model's
    dtype), so two paths through them agree to float32 precision over the widest reduction after a norm (the MLP's
    intermediate size, 64 in tiny_llama), not to float64's."""
    return reorder_tolerance(want.detach().abs().max().item(), terms=64)


def _llama(cls=LlamaForCausalLM, **config):
    base = tiny_llama(VOCAB, hidden=32, layers=2)
    for key, value in config.items():
        setattr(base.config, key, value)
    torch.manual_seed(0)
    model = cls(base.config).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2) if p.dim() > 1 else p.uniform_(0.7, 1.3)
    return model.train()


def _own(model, batch):
    out = []
    for ids, targets in split_packed(batch):
        logits = model(input_ids=ids[None], position_ids=torch.arange(len(ids))[None], use_cache=False).logits[0]
        keep = targets != -100
        out.append(torch.log_softmax(logits[keep].double(), -1).gather(1, targets[keep, None]).squeeze(1))
    return torch.cat(out)


def _compare(model, wrap, batch=None):
    """Run `wrap(model)` on a packed batch against the untouched model's own forward, values and grads."""
    batch = batch or random_packed_batch(VOCAB, rows=2, width=40, seed=1)
    reference = copy.deepcopy(model)
    want = _own(reference, batch)
    want.sum().backward()
    wrapped = wrap(model)
    got = wrapped(**batch)
    got.sum().backward()
    torch.testing.assert_close(got.double(), want, atol=_float32_norm_tol(want), rtol=0)
    expected = {n: p.grad for n, p in reference.named_parameters() if p.requires_grad}
    for name, p in model.named_parameters():
        if p.requires_grad:
            scale = expected[name].abs().max().item()
            torch.testing.assert_close(p.grad, expected[name], atol=1e-5 * max(scale, 1e-12), rtol=0, msg=name)
    return wrapped


def _lora(model, **kw):
    model = peft.get_peft_model(
        model, peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM", **kw)
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    return model


def _instance_forwards(model):
    return [n for n, m in model.named_modules() if "forward" in m.__dict__]


@pytest.mark.parametrize("kind", ["causal_lm", "reward"])
def test_off_installs_nothing_and_runs_the_models_own_forward(kind, monkeypatch):
    model = (
        _lora(_llama()) if kind == "causal_lm" else _llama(LlamaForSequenceClassification, num_labels=1, pad_token_id=0)
    )
    TokenLogprobModel(model) if kind == "causal_lm" else RewardModel(model)  # auto first: patches go on
    assert patched_modules(model)
    classes = {n: type(m) for n, m in model.named_modules()}

    def forbidden(*args, **kwargs):
        raise AssertionError("the fast path ran with fast_path off")

    for name in ("decoder_hidden", "use_attention"):  # the packed-attention switch lives in these two
        monkeypatch.setattr(forward, name, forbidden)
    monkeypatch.setattr("alignline.models.fast.decision.register_packed_attention", forbidden)
    if kind == "causal_lm":
        wrapped = _compare(model, lambda m: TokenLogprobModel(m, fast="off"))
    else:
        wrapped = RewardModel(model, fast="off")
        batch = random_packed_batch(VOCAB, rows=2, width=40, seed=2)
        batch["input_ids"][batch["input_ids"] == 0] = 3
        pos = batch["position_ids"].reshape(-1)
        last = torch.cat([(pos[1:] == 0).nonzero().squeeze(1), torch.tensor([pos.numel() - 1])])
        want = torch.cat([model(input_ids=ids[None]).logits[0] for ids, _ in split_packed(batch)])
        torch.testing.assert_close(
            wrapped(batch["input_ids"], batch["position_ids"], last).double(), want, atol=1e-6, rtol=0
        )  # float32 norms; packed vs alone
    assert wrapped.fast_path == FastPath(reasons=wrapped.fast_path.reasons) and wrapped.fast_path.basis == "off"
    assert patched_modules(model) == [] and _instance_forwards(model) == []
    assert {n: type(m) for n, m in model.named_modules()} == classes
    assert model.config._attn_implementation == "sdpa"
    assert fast_path_record(wrapped)["on"] == []


def test_allow_listed_llama_with_lora_needs_no_check():
    wrapped = _compare(_lora(_llama()), TokenLogprobModel)
    fp = wrapped.fast_path
    assert fp.basis == "allow-list: LlamaForCausalLM"
    assert (fp.fused_head, fp.packed_attention, fp.fused_layers, fp.fast_lora) == (True, True, True, True)


def test_gradient_checkpointing_hooks_are_known():
    """transformers' own hook on the embeddings (LoRA with gradient checkpointing) needs no self-check."""
    model = _llama()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    wrapped = _compare(_lora(model), TokenLogprobModel)
    assert wrapped.fast_path.basis == "allow-list: LlamaForCausalLM"


@pytest.mark.parametrize("tuner", ["ia3", "loha", "dora"])
def test_other_peft_tuners_are_self_checked_and_exact(tuner):
    model = _llama()
    if tuner == "ia3":
        model = peft.get_peft_model(
            model,
            peft.IA3Config(
                target_modules=["k_proj", "v_proj", "down_proj"],
                feedforward_modules=["down_proj"],
                task_type="CAUSAL_LM",
            ),
        )
    elif tuner == "loha":
        model = peft.get_peft_model(
            model, peft.LoHaConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        )
    else:
        model = _lora(model, use_dora=True)
    with torch.no_grad():  # move the tuners off their identity start
        for _name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    wrapped = _compare(model, TokenLogprobModel)
    fp = wrapped.fast_path
    assert fp.fused_head and fp.packed_attention
    # DoRA is peft's own LoRA (peft.tuners.lora): on the allow-list, its layers left to peft's forward
    assert fp.basis.startswith("allow-list" if tuner == "dora" else "self-check ("), fp.basis


def test_a_subclass_off_the_list_passes_the_check():
    class HouseLlama(LlamaForCausalLM):
        pass

    wrapped = _compare(_llama(HouseLlama), TokenLogprobModel)
    assert wrapped.fast_path.basis == "self-check (HouseLlama is not on the allow-list)"
    assert wrapped.fast_path.record()["on"] == ["fused_head", "packed_attention", "fused_layers"]


def test_a_head_the_reader_does_not_know_fails_the_check_and_steps_aside():
    """An architecture that scales its logits in a way `head.py` does not read (as Cohere did before)."""

    class TemperedLlama(LlamaForCausalLM):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = out.logits * 3.0
            return out

    model = _llama(TemperedLlama)
    wrapped = _compare(model, TokenLogprobModel)
    fp = wrapped.fast_path
    assert not (fp.fused_head or fp.packed_attention or fp.fused_layers or fp.fast_lora)
    assert fp.basis.startswith("plain; self-check (TemperedLlama")
    assert fp.reasons["fused_head"].startswith("self-check failed: max |difference| of the outputs")
    assert patched_modules(model) == []


class LlamaRMSNorm(nn.Module):
    """Named as transformers' class, computing another norm (Gemma's 1 + weight): the fused layer would be wrong."""

    def __init__(self, norm):
        super().__init__()
        self.weight, self.variance_epsilon = norm.weight, norm.variance_epsilon

    def forward(self, x):
        x32 = x.float()
        return ((1 + self.weight) * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-6))).to(x.dtype)


def test_layers_that_fail_the_check_step_aside_and_the_head_stays():
    model = _llama()
    for layer in model.model.layers:
        layer.post_attention_layernorm = LlamaRMSNorm(layer.post_attention_layernorm)
    wrapped = _compare(model, TokenLogprobModel)
    fp = wrapped.fast_path
    assert fp.fused_head and not (fp.packed_attention or fp.fused_layers or fp.fast_lora)
    assert fp.reasons["fused_head"] == "self-check passed"
    assert fp.reasons["fused_layers"].startswith("self-check failed: ")
    assert patched_modules(model) == []


def test_a_bottleneck_adapter_on_a_hook_is_checked_and_kept_exact():
    """An adapter added the way a bottleneck adapter may be: a small module run by a forward hook on each MLP."""
    model = _llama()
    for layer in model.model.layers:
        adapter = nn.Sequential(nn.Linear(32, 4), nn.GELU(), nn.Linear(4, 32)).double()
        layer.mlp.add_module("bottleneck", adapter)
        layer.mlp.register_forward_hook(lambda m, args, out: out + m.bottleneck(out))
    wrapped = _compare(model, TokenLogprobModel)
    assert wrapped.fast_path.basis.startswith("self-check (modules outside the allow-list: LlamaMLP (hooked)")
    assert wrapped.fast_path.fused_layers  # the hook runs around the fused MLP forward too


@pytest.mark.parametrize("placement", ["houlsby", "pfeiffer"])
def test_alignline_bottleneck_adapters_pass_the_check(placement):
    from alignline.models.bottleneck import BottleneckModel, BottleneckSpec

    model = BottleneckModel(_llama().requires_grad_(False))
    model.add_adapter("default", BottleneckSpec(bottleneck_size=8, placement=placement))
    with torch.no_grad():  # up starts at zero (identity): move it so the adapter changes the output
        for name, p in model.named_parameters():
            if ".up." in name:
                p.normal_(0, 0.3)
    model.double()
    wrapped = _compare(model, TokenLogprobModel)
    fp = wrapped.fast_path
    assert fp.basis.startswith("self-check (modules outside the allow-list: Bottleneck, BottleneckModel")
    assert fp.fused_head and fp.packed_attention and fp.fused_layers


def test_a_forward_replaced_by_someone_else_is_left_alone():
    model = _llama()
    mlp = model.model.layers[0].mlp
    mlp.forward = types.MethodType(lambda self, x: type(self).forward(self, x) * 0.5, mlp)  # deepcopy rebinds it
    wrapped = _compare(model, TokenLogprobModel)
    assert "model.layers.0.mlp" not in patched_modules(model) and "model.layers.1.mlp" in patched_modules(model)
    assert wrapped.fast_path.basis.startswith("self-check")


def test_the_self_check_leaves_no_trace():
    model = _llama(type("OtherLlama", (LlamaForCausalLM,), {}))
    model.model.layers[0].eval()  # a mixed train/eval state must come back as it was
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    fp = choose_fast_path(model)
    assert fp.basis.startswith("self-check")
    assert all(p.grad is None for p in model.parameters())
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)


def test_prompt_tuning_takes_the_plain_path():
    model = peft.get_peft_model(_llama(), peft.PromptTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM"))
    wrapped = TokenLogprobModel(model)
    assert wrapped.fast_path.basis == "plain" and patched_modules(model) == []


def test_run_json_records_the_decision(sft_recipe):
    from alignline.config import load_config
    from alignline.evals.training import train

    recipe, out = sft_recipe
    losses = {}
    for mode in ("off", "auto"):
        train(
            load_config(recipe, ["training.max_steps=1", f"training.fast_path={mode}", f"output_dir={out}-{mode}"]),
            progress=False,
        )
        run = json.loads((out.parent / f"{out.name}-{mode}" / "run.json").read_text())
        losses[mode] = json.loads((out.parent / f"{out.name}-{mode}" / "metrics.jsonl").read_text().splitlines()[0])
        assert run["fast_path"]["basis"] == ("off" if mode == "off" else "allow-list: LlamaForCausalLM")
        assert (run["fast_path"]["on"] == []) == (mode == "off")
    assert losses["off"]["loss"] == pytest.approx(losses["auto"]["loss"], rel=1e-4)


def _reward_batch():
    batch = random_packed_batch(VOCAB, rows=2, width=40, seed=2)
    batch["input_ids"][batch["input_ids"] == 0] = 3  # no pad id inside: the classifier pools at its last non-pad
    pos = batch["position_ids"].reshape(-1)
    last = torch.cat([(pos[1:] == 0).nonzero().squeeze(1), torch.tensor([pos.numel() - 1])])
    return batch, last


@pytest.mark.parametrize("fast", ["auto", "off"])
@pytest.mark.parametrize("pad_token_id", [0, None])
def test_a_reward_model_off_the_list_is_checked_and_both_paths_are_its_own(fast, pad_token_id):
    """Off the list: the self-check passes and the fast path runs. Off: the model's own forward, its
    per-token scores read at `last_index` (a row at a time where there is no pad id to pool by)."""

    class HouseClassifier(LlamaForSequenceClassification):
        pass

    model = _llama(HouseClassifier, num_labels=1, pad_token_id=pad_token_id)
    batch, last = _reward_batch()
    reference = copy.deepcopy(model)
    want = torch.cat([reference(input_ids=ids[None]).logits[0] for ids, _ in split_packed(batch)])
    want.sum().backward()
    wrapped = RewardModel(model, fast=fast)
    assert wrapped.fast_path.basis == (
        "off" if fast == "off" else "self-check (HouseClassifier is not on the allow-list)"
    )
    got = wrapped(batch["input_ids"], batch["position_ids"], last)
    got.sum().backward()
    torch.testing.assert_close(got.double(), want, atol=_float32_norm_tol(want), rtol=0)  # 1e-6 was 4 ulp
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5 * q.grad.abs().max().item(), rtol=0, msg=name)


@pytest.mark.parametrize("arch", ["llama", "granite"])
def test_in_bfloat16_the_check_keeps_exact_set_ups_and_still_catches_a_missed_scale(arch):
    """Half precision: the tolerance grows with the rounding the model's own forward shows on the same
    examples packed (Granite here has 4x logits, so more of it), and stays far below a missed scale."""
    from support import tiny_architecture

    model = tiny_architecture(arch, dtype=torch.bfloat16)
    model.__class__ = type(f"House{type(model).__name__}", (type(model),), {})
    assert choose_fast_path(model).record()["on"][:2] == ["fused_head", "packed_attention"]

    class TemperedLlama(LlamaForCausalLM):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = out.logits * 0.5
            return out

    model = tiny_architecture("llama", dtype=torch.bfloat16)
    model.__class__ = TemperedLlama
    assert choose_fast_path(model).record()["on"] == []


def test_a_wrong_gradient_alone_fails_the_check(monkeypatch):
    """Right values, wrong backward (a fused RMSNorm whose input gradient is doubled): caught on gradients."""
    from alignline.models.fast.fused_layers import _RMSNorm

    right = _RMSNorm.backward

    def doubled(ctx, dy):
        dx, dweight, eps = right(ctx, dy)
        return 2 * dx, dweight, eps

    monkeypatch.setattr(_RMSNorm, "backward", staticmethod(doubled))
    model = _llama(type("OtherLlama", (LlamaForCausalLM,), {}))
    fp = choose_fast_path(model)
    assert fp.fused_head and not fp.fused_layers
    assert fp.reasons["fused_layers"].startswith("self-check failed: gradient of "), fp.reasons
