"""`adapter.type: peft`: any peft config passes through; it trains via the real loop with the base untouched,
saves and loads to the same log-probs, and peft's complaints are one line naming adapter.peft_config."""

import json

import pytest
import torch

from alignline.cli import main
from alignline.config import load_config
from alignline.errors import ConfigError
from alignline.evals.training import train
from alignline.models.loading import load_model
from alignline.models.logprob_model import TokenLogprobModel
from support import random_packed_batch, spy_on_adapted_model

CONFIGS = {
    "LOHA": "{peft_type: LOHA, r: 4, alpha: 8, target_modules: [q_proj, v_proj, down_proj]}",
    "IA3": "{peft_type: ia3}",  # peft's default targets for Llama; the name in any case
    "LOKR": "{peft_type: LOKR, r: 4, alpha: 8, target_modules: [q_proj, v_proj]}",
    "VERA": "{peft_type: VERA, r: 8, target_modules: [q_proj, v_proj]}",
    "OFT": "{peft_type: OFT, oft_block_size: 8, target_modules: [q_proj, v_proj]}",
    "ADALORA": "{peft_type: ADALORA, total_step: 4, init_r: 4, target_r: 2, target_modules: [q_proj, v_proj]}",
}


@torch.no_grad()
def _logprobs(model, batch):
    model.eval()
    return TokenLogprobModel(model, fast=False)(**batch)


@pytest.mark.parametrize("peft_type", ["LOHA", "IA3"])
def test_trains_only_the_adapter_and_reloads_identically(sft_recipe, monkeypatch, peft_type):
    recipe, out = sft_recipe
    spy = spy_on_adapted_model(monkeypatch)
    train(load_config(recipe, ["adapter.type=peft", f"adapter.peft_config={CONFIGS[peft_type]}"]), progress=False)
    model = spy["model"]
    assert model.peft_config["default"].peft_type == peft_type
    assert model.peft_config["default"].task_type == "CAUSAL_LM"  # set by the method
    params = dict(model.named_parameters())
    assert spy["trainable"] and all(torch.equal(params[n], v) for n, v in spy["frozen"].items())
    changed = [n for n, v in spy["trainable"].items() if not torch.equal(params[n], v)]
    assert changed and len(changed) == len(spy["trainable"])

    config = json.loads((out / "final" / "adapter_config.json").read_text())
    assert config["peft_type"] == peft_type
    batch = random_packed_batch(384, rows=2, width=32)
    expected = _logprobs(model, batch)
    for directory in (out / "final", out / "checkpoints" / "step-4"):
        assert torch.equal(_logprobs(load_model(str(directory)), batch), expected)


@pytest.mark.parametrize("peft_type", ["LOKR", "VERA", "OFT", "ADALORA"])
def test_other_methods_train_a_step(sft_recipe, peft_type):
    recipe, out = sft_recipe
    cfg = load_config(
        recipe, ["adapter.type=peft", f"adapter.peft_config={CONFIGS[peft_type]}", "training.max_steps=1"]
    )
    if peft_type == "ADALORA":  # trains, at its initial rank: said so, not silently
        with pytest.warns(UserWarning, match="update_and_allocate"):
            train(cfg, progress=False)
    else:
        train(cfg, progress=False)
    assert json.loads((out / "final" / "adapter_config.json").read_text())["peft_type"] == peft_type


def test_reward_model_gets_seq_cls_and_is_saved_merged(tmp_path, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    from support import write_jsonl, write_recipe

    pairs = [
        {"prompt": f"What is {i} plus {i}?", "chosen": f"Answer: {2 * i}.", "rejected": f"Maybe {i}."}
        for i in range(12)
    ]
    recipe = write_recipe(
        tmp_path / "rm.yaml",
        method="rm",
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "rm"),
        data_gates=False,
        data={"train": str(write_jsonl(tmp_path / "pairs.jsonl", pairs))},
        adapter={"type": "peft", "peft_config": {"peft_type": "LOHA", "r": 4, "target_modules": ["q_proj", "v_proj"]}},
        training={"max_steps": 2, "batch_size": 2, "max_length": 64, "tensorboard": False},
    )
    run = train(load_config(recipe), progress=False)
    config = json.loads((run / "final" / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LOHA" and config["task_type"] == "SEQ_CLS"
    assert type(AutoModelForSequenceClassification.from_pretrained(run / "final")).__name__.endswith("Classification")


@pytest.mark.parametrize(
    "value, message",
    [
        ("{peft_type: LOHA, rank: 4}", "config key 'adapter.peft_config': peft's LoHaConfig rejected it"),
        ("{peft_type: NOPE}", "config key 'adapter.peft_config.peft_type': 'NOPE' is not a peft method"),
        ("{r: 4}", "config key 'adapter.peft_config.peft_type'"),
        ("LOHA", "config key 'adapter.peft_config': expected a mapping"),
        ("{peft_type: LOHA, task_type: SEQ_CLS}", "config key 'adapter.peft_config.task_type'"),
        ("{peft_type: ADALORA}", "config key 'adapter.peft_config': peft's AdaLoraConfig rejected it"),
    ],
)
def test_bad_peft_config_is_one_line(sft_recipe, value, message):
    recipe, _ = sft_recipe
    with pytest.raises(ConfigError) as e:
        load_config(recipe, ["adapter.type=peft", f"adapter.peft_config={value}"])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_peft_rejecting_the_model_is_one_line_exit_2(sft_recipe, capsys):
    recipe, _ = sft_recipe
    assert (
        main(
            [
                "train",
                "--quiet",
                str(recipe),
                "adapter.type=peft",
                "adapter.peft_config={peft_type: LOHA, target_modules: [no_such_layer]}",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "adapter.peft_config" in err[0]


def test_peft_config_only_with_type_peft(sft_recipe):
    recipe, _ = sft_recipe
    with pytest.raises(ConfigError, match="only for adapter.type peft"):
        load_config(recipe, ["adapter.peft_config={peft_type: LOHA}"])
