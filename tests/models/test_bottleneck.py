"""Bottleneck adapters: identity at start, seen by every forward path, trained by the real loop with the
base untouched, saved and loaded to the same log-probs, resumed exactly, and refused where they cannot go."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from alignline.cli import main
from alignline.config import load_config
from alignline.errors import ConfigError
from alignline.evals.training import train
from alignline.models.bottleneck import Bottleneck, BottleneckModel, BottleneckSpec
from alignline.models.loading import load_model
from alignline.models.logprob_model import TokenLogprobModel
from alignline.train.metrics import read_metrics
from support import random_packed_batch, save_random_adapter, spy_on_adapted_model, tiny_llama

BOTTLENECK = ["adapter.type=bottleneck", "adapter.bottleneck_size=8"]


@torch.no_grad()
def _logprobs(model, batch, fast: bool = False) -> torch.Tensor:
    model.eval()
    return TokenLogprobModel(model, fast=fast)(**batch)


@torch.no_grad()
def _full_forward_logprobs(model, batch) -> torch.Tensor:
    """The reference: the whole model's logits, one example per row (no packing)."""
    logits = model(input_ids=batch["input_ids"], use_cache=False).logits.float()
    keep = batch["targets"] != -100
    return torch.log_softmax(logits[keep], -1).gather(-1, batch["targets"][keep][:, None]).squeeze(-1)


def _randomize(model: BottleneckModel, seed: int = 0) -> None:
    torch.manual_seed(seed)
    with torch.no_grad():
        for _name, p in model.bottleneck_adapters.named_parameters():
            p.normal_(0, 0.3)


def test_bottleneck_module_by_hand():
    """h = (1, 2), down = [[1, -1]] + 0, relu, up = [[2], [3]] + (0.5, 0):
    down(h) = 1 - 2 = -1 -> relu 0 -> up = (0.5, 0) -> h + that = (1.5, 2)."""
    m = Bottleneck(2, 1, "relu")
    assert torch.equal(m(torch.tensor([[1.0, 2.0]])), torch.tensor([[1.0, 2.0]]))  # identity at init
    with torch.no_grad():
        m.down.weight.copy_(torch.tensor([[1.0, -1.0]]))
        m.down.bias.zero_()
        m.up.weight.copy_(torch.tensor([[2.0], [3.0]]))
        m.up.bias.copy_(torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(m(torch.tensor([[1.0, 2.0]])), torch.tensor([[1.5, 2.0]]))
    # down(h) = 2 - 1 = 1 -> relu 1 -> up = (2.5, 3) -> (4.5, 4)
    torch.testing.assert_close(m(torch.tensor([[2.0, 1.0]])), torch.tensor([[4.5, 4.0]]))


@pytest.mark.parametrize("placement", ["houlsby", "pfeiffer"])
def test_identity_at_init_and_seen_by_every_forward_path(placement):
    base = tiny_llama(128, hidden=64, layers=2)
    batch = random_packed_batch(128, rows=2, width=24, packed=False)
    before = _logprobs(base, batch)
    model = BottleneckModel(base.requires_grad_(False))
    model.add_adapter("default", BottleneckSpec(bottleneck_size=8, placement=placement, non_linearity="gelu"))
    assert torch.equal(_logprobs(model, batch), before)  # the up-projection starts at zero: exactly the base
    _randomize(model)
    adapted = _logprobs(model, batch)
    assert not torch.allclose(adapted, before)
    # the fused head runs base.get_decoder() only: the hooks are there too, and agree with the full forward
    torch.testing.assert_close(adapted, _full_forward_logprobs(model, batch), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        _logprobs(model, random_packed_batch(128, rows=2, width=24), fast=True),
        _logprobs(model, random_packed_batch(128, rows=2, width=24)),
        atol=1e-5,
        rtol=1e-5,
    )
    with model.disable_adapter():
        assert torch.equal(_logprobs(model, batch), before)
    assert torch.equal(_logprobs(model, batch), adapted)
    n_adapters = sum(1 for m in model.modules() if isinstance(m, Bottleneck))
    assert n_adapters == (4 if placement == "houlsby" else 2)


def test_architecture_without_self_attn_and_mlp_is_a_clear_error():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64, n_positions=32))
    with pytest.raises(ConfigError, match="self_attn' and 'mlp'"):
        BottleneckModel(gpt2)


def test_trains_via_the_loop_only_adapter_changes_and_reloads_identically(sft_recipe, tiny_model_dir, monkeypatch):
    recipe, out = sft_recipe
    spy = spy_on_adapted_model(monkeypatch)
    train(load_config(recipe, BOTTLENECK + ["adapter.placement=houlsby"]), progress=False)
    model = spy["model"]
    assert isinstance(model, BottleneckModel)
    assert spy["trainable"] and all(".bottleneck_adapters." in f".{n}" for n in spy["trainable"])
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], v) for n, v in spy["frozen"].items())  # the base: bit-identical
    assert all(not torch.equal(params[n], v) for n, v in spy["trainable"].items())  # every adapter tensor trained

    final = out / "final"
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["peft_type"] == "ALIGNLINE_BOTTLENECK" and config["bottleneck_size"] == 8
    assert config["placement"] == "houlsby" and config["base_model_name_or_path"]
    saved = load_file(final / "adapter_model.safetensors")
    assert sorted(saved) == sorted(model.adapter_state_dict())  # the adapter's weights, nothing else
    assert len(saved) == 2 * 2 * 2 * 2  # 2 layers x (attn, mlp) x (down, up) x (weight, bias)

    batch = random_packed_batch(384, rows=2, width=32)
    expected = _logprobs(model, batch)
    for directory in (final, out / "checkpoints" / "step-4"):
        assert torch.equal(_logprobs(load_model(str(directory)), batch), expected)
    assert not torch.equal(_logprobs(load_model(str(tiny_model_dir)), batch), expected)


def test_reduction_factor_freeze_layers_and_dpo(tmp_path, sft_recipe):
    recipe, out = sft_recipe
    train(
        load_config(
            recipe,
            [
                "adapter.type=bottleneck",
                "adapter.reduction_factor=4",
                "training.freeze_layers=1",
                "training.max_steps=2",
            ],
        ),
        progress=False,
    )
    config = json.loads((out / "final" / "adapter_config.json").read_text())
    assert config["bottleneck_size"] == 8 and config["layers"] == [1]  # hidden 32 / 4; layer 0 frozen: none there
    assert all(k.split(".")[1] == "1" for k in load_file(out / "final" / "adapter_model.safetensors"))


def test_dpo_reference_is_the_base_with_the_adapter_off(tmp_path, tiny_model_dir):
    from support import write_jsonl, write_recipe

    pairs = [
        {"prompt": f"What is {i} plus {i}?", "chosen": f"Answer: {2 * i}.", "rejected": f"Maybe {i}."}
        for i in range(12)
    ]
    data = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    recipe = write_recipe(
        tmp_path / "dpo.yaml",
        method="dpo",
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(data)},
        adapter={"type": "bottleneck", "bottleneck_size": 4},
        training={
            "max_steps": 2,
            "batch_size": 2,
            "max_length": 64,
            "lr": 1e-3,
            "tensorboard": False,
            "eval_every": 10,
        },
    )
    run = train(load_config(recipe), progress=False)
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    # at step 1 the adapter is the identity, so policy == reference: margin 0, loss log 2
    assert first["loss"] == pytest.approx(0.6931, abs=1e-3)


def test_exact_resume(sft_recipe, tmp_path):
    recipe, out = sft_recipe
    straight = BOTTLENECK + ["adapter.placement=houlsby", "resume=never"]
    train(load_config(recipe, straight), progress=False)
    resumed = tmp_path / "resumed"
    shutil.copytree(out / "checkpoints" / "step-2", resumed / "checkpoints" / "step-2")
    train(load_config(recipe, BOTTLENECK + ["adapter.placement=houlsby", f"output_dir={resumed}"]), progress=False)
    a = load_file(out / "final" / "adapter_model.safetensors")
    b = load_file(resumed / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    curve = [{k: m.get(k) for k in ("step", "loss", "eval_loss")} for m in read_metrics(out / "metrics.jsonl")]
    again = [{k: m.get(k) for k in ("step", "loss", "eval_loss")} for m in read_metrics(resumed / "metrics.jsonl")]
    assert [m["step"] for m in again] == [3, 4] and again == curve[2:]  # it resumed, and went the same way


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["save_merged=true"], "config key 'save_merged': bottleneck adapters add layers and cannot be merged"),
        (["adapter.reduction_factor=4"], "config key 'adapter.bottleneck_size': give exactly one"),
        (["adapter.bottleneck_size=null"], "config key 'adapter.bottleneck_size': give exactly one"),
        (["adapter.bottleneck_size=0"], "config key 'adapter.bottleneck_size': must be > 0"),
        (["adapter.non_linearity=softmax"], "config key 'adapter.non_linearity'"),
        (["adapter.placement=middle"], "config key 'adapter.placement'"),
        (["method=rm"], "reward models are saved merged"),
    ],
)
def test_bad_bottleneck_configs_are_one_line(sft_recipe, overrides, message):
    recipe, _ = sft_recipe
    with pytest.raises(ConfigError) as e:
        load_config(recipe, BOTTLENECK + overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_save_merged_refused_by_the_cli(sft_recipe, capsys):
    recipe, _ = sft_recipe
    assert main(["train", "--quiet", str(recipe), *BOTTLENECK, "save_merged=true"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be merged" in err[0]


def test_bottleneck_keys_only_with_bottleneck(sft_recipe):
    recipe, _ = sft_recipe
    with pytest.raises(ConfigError, match="adapter.bottleneck_size': only for adapter.type bottleneck"):
        load_config(recipe, ["adapter.bottleneck_size=8"])


def test_load_onto_a_different_base_is_a_clear_error(tmp_path, tiny_model_dir):
    from alignline.errors import ModelError
    from support import save_tiny_model

    adapter = save_random_adapter(tiny_model_dir, tmp_path / "a")
    other = load_model(str(save_tiny_model(tmp_path / "wide", hidden=64)))
    with pytest.raises(ModelError, match="hidden size 32; this base has 64"):
        BottleneckModel.from_pretrained(other, adapter)


def test_deepcopy_points_the_copy_at_its_own_adapters():
    import copy

    model = BottleneckModel(tiny_llama(128, hidden=64, layers=2).requires_grad_(False))
    model.add_adapter("default", BottleneckSpec(bottleneck_size=8, placement="houlsby"))
    _randomize(model)
    batch = random_packed_batch(128, rows=2, width=24, packed=False)
    before = _logprobs(model, batch)
    twin = copy.deepcopy(model)
    assert torch.equal(_logprobs(twin, batch), before)
    with torch.no_grad():
        for p in twin.bottleneck_adapters.parameters():
            p.zero_()
    assert torch.equal(_logprobs(model, batch), before)  # the original still runs its own adapters
    assert not torch.equal(_logprobs(twin, batch), before)


def test_bfloat16_and_gradient_checkpointing(sft_recipe):
    recipe, out = sft_recipe
    train(
        load_config(
            recipe,
            BOTTLENECK + ["training.dtype=bfloat16", "training.gradient_checkpointing=true", "training.max_steps=2"],
        ),
        progress=False,
    )
    saved = load_file(out / "final" / "adapter_model.safetensors")
    assert all(v.dtype == torch.bfloat16 for v in saved.values())
    assert any(v.abs().sum() > 0 for k, v in saved.items() if ".up." in f".{k}")
