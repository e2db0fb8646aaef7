"""Every way to train takes a few steps on the tiny model; the right weights change, and only those."""

import json

import pytest
import torch
from safetensors.torch import load_file

from alignline.config import load_config
from alignline.evals.training import train
from alignline.train.metrics import read_metrics
from support import reorder_tolerance, write_jsonl
from support import safetensors_weights as _weights


def _run(recipe, *overrides):
    cfg = load_config(recipe, list(overrides))
    return train(cfg, progress=False)


def test_lora_sft_writes_run_dir_and_changes_only_the_adapter(sft_recipe, tiny_model_dir):
    recipe, out = sft_recipe
    _run(recipe)
    assert (out / "final" / "adapter_model.safetensors").is_file()
    assert (out / "final" / "tokenizer.json").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2", "step-4"]
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3, 4] and all("loss" in m for m in metrics)
    assert "eval_loss" in metrics[1] and "eval_loss" in metrics[3]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["data"]["sources"][0]["sha256"]
    assert run["packages"]["torch"] and "config" in run

    adapter = load_file(out / "final" / "adapter_model.safetensors")
    assert all("lora_" in k for k in adapter)
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: nonzero means trained
    # the base weights on disk were not touched
    base_before = _weights(tiny_model_dir)
    from alignline.models.loading import load_model

    merged_base = load_model(str(out / "final")).get_base_model()
    for name, param in merged_base.named_parameters():
        if "lora_" not in name and "base_layer" not in name and name in base_before:
            torch.testing.assert_close(param.detach(), base_before[name])


def test_full_finetune_with_frozen_first_layer(tmp_path, sft_recipe, tiny_model_dir):
    recipe, out = sft_recipe
    cfg = load_config(recipe, ["training.freeze_layers=1"])
    cfg.adapter = None
    train(cfg, progress=False)
    before, after = _weights(tiny_model_dir), _weights(out / "final")
    assert set(after) >= {k for k in before if "lm_head" not in k}
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert any(k.startswith("model.layers.1.") for k in changed)
    assert not any(k.startswith("model.layers.0.") or "embed_tokens" in k for k in changed)


def test_lora_freeze_layers_puts_no_adapter_in_frozen_layers(sft_recipe):
    recipe, out = sft_recipe
    _run(recipe, "training.freeze_layers=1", "training.max_steps=1")
    keys = load_file(out / "final" / "adapter_model.safetensors").keys()
    assert keys and all(".layers.1." in k for k in keys)


@pytest.mark.parametrize("kind", ["prompt", "prefix"])
def test_prompt_and_prefix_tuning_train(sft_recipe, kind):
    recipe, out = sft_recipe
    _run(recipe, f"adapter.type={kind}", "adapter.num_virtual_tokens=4", "training.lr=0.05")
    adapter = load_file(out / "final" / "adapter_model.safetensors")
    assert adapter and all(v.abs().sum() > 0 for v in adapter.values())
    losses = [m["loss"] for m in read_metrics(out / "metrics.jsonl")]
    assert len(losses) == 4


def test_dora_and_rslora_switches(sft_recipe):
    recipe, out = sft_recipe
    _run(recipe, "adapter.use_dora=true", "adapter.use_rslora=true", "training.max_steps=1")
    cfg = json.loads((out / "final" / "adapter_config.json").read_text())
    assert cfg["use_dora"] is True and cfg["use_rslora"] is True


def test_cpt_on_text_splits_long_documents(tmp_path, sft_recipe):
    recipe, out = sft_recipe
    docs = write_jsonl(
        tmp_path / "text.jsonl", [{"text": "Northwind robots stop for people. " * (5 + i)} for i in range(12)]
    )
    _run(recipe, "method=cpt", f"data.train={docs}", "training.max_length=32")
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["train_examples"] > run["data"]["train_samples"]  # long documents became windows
    assert run["data"]["truncated_examples"] == 0


def test_cpt_rejects_chat_records(sft_recipe):
    from alignline.errors import DataError

    recipe, _ = sft_recipe
    with pytest.raises(DataError, match="this method takes text records"):
        _run(recipe, "method=cpt")


def test_full_finetune_loss_falls(sft_recipe):
    recipe, out = sft_recipe
    cfg = load_config(
        recipe,
        [
            "training.max_steps=30",
            "training.lr=1e-2",
            "training.eval_every=100",
            "training.save_every=100",
            "lr_scheduler=constant",
        ],
    )
    cfg.adapter = None
    train(cfg, progress=False)
    losses = [m["loss"] for m in read_metrics(out / "metrics.jsonl")]
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5


def test_gradient_accumulation_equivalence(tmp_path, sft_recipe):
    """Batch 4 x accumulation 1 and batch 1 x accumulation 4 give the same weights (token-level mean)."""
    recipe, _ = sft_recipe
    common = [
        "training.max_steps=2",
        "training.eval_every=100",
        "adapter.dropout=0.0",
        "lr_scheduler=constant",
        "training.max_length=64",
    ]
    a = _run(recipe, *common, "training.batch_size=4", "training.grad_accum=1", f"output_dir={tmp_path / 'a'}")
    b = _run(recipe, *common, "training.batch_size=1", "training.grad_accum=4", f"output_dir={tmp_path / 'b'}")
    wa, wb = load_file(a / "final" / "adapter_model.safetensors"), load_file(b / "final" / "adapter_model.safetensors")
    for k in wa:  # Adam's step is scale-free: gradients a few ulp apart move a weight by ~steps*lr*ulps, << 1e-6
        torch.testing.assert_close(wa[k], wb[k], atol=1e-6, rtol=1e-5)
    la, lb = read_metrics(a / "metrics.jsonl"), read_metrics(b / "metrics.jsonl")
    assert len(la) == len(lb) == 2
    for ma, mb in zip(la, lb):  # a token mean over <= 4 x 64 float32 terms, summed in 4 rows or 1: not digit-equal
        assert ma["loss"] == pytest.approx(mb["loss"], rel=0, abs=reorder_tolerance(ma["loss"], terms=4 * 64))


def test_early_stopping(sft_recipe):
    recipe, out = sft_recipe
    # An improvement threshold no eval can meet: the first eval sets the best, the next two do not beat it.
    _run(
        recipe,
        "training.max_steps=40",
        "training.eval_every=1",
        "early_stopping_patience=2",
        "early_stopping_threshold=1e9",
    )
    run = json.loads((out / "run.json").read_text())
    assert run["stopped_early"] is True and run["steps"] == 3


def test_save_merged(sft_recipe):
    recipe, out = sft_recipe
    _run(recipe, "save_merged=true", "training.max_steps=1")
    assert (out / "merged" / "config.json").is_file()
    assert not any("lora" in k for k in _weights(out / "merged"))


def test_qlora_without_cuda_is_a_clear_error(sft_recipe):
    from alignline.errors import ConfigError

    recipe, _ = sft_recipe
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ConfigError, match="qlora"):
        _run(recipe, "adapter.type=qlora")


def test_bf16_and_gradient_checkpointing(sft_recipe):
    recipe, out = sft_recipe
    _run(recipe, "training.dtype=bfloat16", "training.gradient_checkpointing=true", "training.max_steps=2")
    adapter = load_file(out / "final" / "adapter_model.safetensors")
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
    assert all(m["loss"] == m["loss"] for m in read_metrics(out / "metrics.jsonl"))  # no NaN


def test_weighted_mix_is_recorded(tmp_path, sft_recipe):
    from support import chat_records

    recipe, out = sft_recipe
    general = write_jsonl(tmp_path / "general.jsonl", chat_records(10))
    cfg = load_config(recipe, ["training.max_steps=1", "data.mix_size=20"])
    from alignline.config import DataSource

    cfg.data.train = [DataSource(cfg.data.train[0].path, 0.8), DataSource(str(general), 0.2)]
    train(cfg, progress=False)
    sources = json.loads((out / "run.json").read_text())["data"]["sources"]
    assert [s["in_mix"] for s in sources[:2]] == [16, 4]


def test_failing_data_gate_stops_training_unless_told_to_proceed(tmp_path, tiny_model_dir, capsys):
    from alignline.cli import main
    from support import chat_records, write_recipe

    duplicated = write_jsonl(tmp_path / "dup.jsonl", chat_records(12) * 2)  # 50 % exact duplicates
    out = tmp_path / "run"
    recipe = write_recipe(
        tmp_path / "r.yaml",
        method="sft",
        model=str(tiny_model_dir),
        output_dir=str(out),
        data={"train": str(duplicated)},
        training={"max_steps": 1, "batch_size": 2, "max_length": 128, "tensorboard": False},
    )
    assert main(["train", "--quiet", str(recipe)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data gates failed: duplicate_share = 0.5" in err[0] and "--proceed" in err[0]
    report = json.loads((out / "data_report.json").read_text())
    assert report["passed"] is False and (out / "data_report.html").is_file()
    assert not (out / "final").exists()

    assert main(["train", "--quiet", str(recipe), "--proceed"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["data_gates"]["passed"] is False and (out / "final").is_dir()
