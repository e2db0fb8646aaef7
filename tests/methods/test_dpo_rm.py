"""DPO and reward models on the one loop: short runs on the tiny model (the pair formats are tested in
tests/data/test_preference.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from alignline.config import load_config
from alignline.data.preference import to_pairs, tokenize_pair
from alignline.evals.training import train
from alignline.train.metrics import read_metrics
from support import assistant as _a
from support import reorder_tolerance, write_jsonl, write_recipe
from support import system as _sys
from support import user as _u


def _pref_records(n: int = 12) -> list[dict]:
    """Chat pairs with confidence and margins: some with a system turn, some multi-turn prompts, some HH style."""
    out = []
    for i in range(n):
        prompt = ([_sys("Be brief.")] if i % 3 == 0 else []) + [_u(f"What is {i} plus {i}?")]
        if i % 4 == 1:
            prompt += [_a(f"Answer: {2 * i}."), _u("And double it?")]
        good, bad = _a(f"Answer: {4 * i if i % 4 == 1 else 2 * i}."), _a(f"I can't help with that, {i}.")
        if i % 5 == 4:  # HH message-list style
            out.append({"chosen": prompt + [good], "rejected": prompt + [bad], "confidence": 0.5})
        else:
            out.append(
                {
                    "prompt": prompt,
                    "chosen": [good],
                    "rejected": [bad],
                    "margin": 0.25 * (i % 3),
                    "confidence": 1.0 if i % 2 else 0.8,
                }
            )
    return out


@pytest.fixture(scope="module")
def pref_data(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("prefs") / "prefs.jsonl", _pref_records())


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory, tiny_model_dir):
    """A DPO reference that differs from the starting policy: the tiny model with perturbed weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    out = tmp_path_factory.mktemp("reference") / "model"
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def _recipe(tmp_path, tiny_model_dir, data, method, name="run", **training):
    out = tmp_path / name
    recipe = write_recipe(
        tmp_path / f"{name}.yaml",
        method=method,
        model=str(tiny_model_dir),
        output_dir=str(out),
        data_gates=False,
        data={"train": str(data), "eval_fraction": 0.25},
        adapter={"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        dpo={"kl_prompts": 2, "kl_max_new_tokens": 4},
        training={
            "max_steps": 3,
            "batch_size": 2,
            "max_length": 128,
            "eval_every": 100,
            "save_every": 100,
            "lr": 1e-2,
            "tensorboard": False,
            "log_every": 1,
            "threads": 1,
            **training,
        },
    )
    return recipe, out


def _lora_b(path):
    tensors = load_file(path)
    lora_b = [v for k, v in tensors.items() if "lora_B" in k]
    return tensors, lora_b


def test_dpo_lora_run(tmp_path, tiny_model_dir, pref_data):
    recipe, out = _recipe(tmp_path, tiny_model_dir, pref_data, "dpo")
    train(load_config(recipe), progress=False)
    _, lora_b = _lora_b(out / "final" / "adapter_model.safetensors")
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: nonzero means trained
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for m in metrics:
        assert {"loss", "accuracy", "margin", "chosen_reward", "rejected_reward", "chosen_logp"} <= set(m)
        assert all(math.isfinite(v) for v in m.values())
    # step 1: the policy is its reference (adapters at zero), so every implicit reward is 0 and the loss is log 2
    assert metrics[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert metrics[0]["margin"] == 0.0 and metrics[0]["accuracy"] == 0.5
    assert {"eval_loss", "eval_accuracy", "eval_margin", "eval_kl"} <= set(metrics[-1])
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["data"]["train_pairs"] + run["data"]["eval_pairs"] == 12


def test_dpo_precomputed_reference_matches_live_reference(tmp_path, tiny_model_dir, pref_data, reference_dir):
    live_recipe, live = _recipe(tmp_path, tiny_model_dir, pref_data, "dpo", name="live")
    pre_recipe, pre = _recipe(tmp_path, tiny_model_dir, pref_data, "dpo", name="pre")
    train(load_config(live_recipe, [f"dpo.ref_model={reference_dir}"]), progress=False)
    train(load_config(pre_recipe, [f"dpo.ref_model={reference_dir}", "dpo.precompute_ref_logps=true"]), progress=False)
    live_m, pre_m = read_metrics(live / "metrics.jsonl"), read_metrics(pre / "metrics.jsonl")
    assert abs(live_m[0]["loss"] - math.log(2)) > 1e-3  # a reference other than the policy: not the trivial log 2
    # The reference log-probs are precomputed one pair per row, and computed live in the training rows: float32 sums
    # over up to max_length (128) tokens of size |logp|, reordered; a reward is beta * two of them, a margin and the
    # loss (slope <= 1) beta * four. An absolute 1e-6 was about one ulp of a logp of 60 times beta.
    beta = load_config(pre_recipe).dpo.beta
    logp = max(abs(m.get(k, 0.0)) for m in pre_m + live_m for k in ("chosen_logp", "rejected_logp"))
    reward_tol = 2 * beta * reorder_tolerance(logp, terms=128)
    assert pre_m[0]["loss"] == pytest.approx(live_m[0]["loss"], abs=2 * reward_tol)
    for key, tol in (("margin", 2 * reward_tol), ("chosen_reward", reward_tol), ("rejected_reward", reward_tol)):
        assert pre_m[0][key] == pytest.approx(live_m[0][key], abs=tol)
    for a, b in zip(live_m[1:], pre_m[1:]):  # the same updates follow
        assert b["loss"] == pytest.approx(a["loss"], abs=max(1e-5, 2 * reward_tol))
    assert pre_m[-1]["eval_loss"] == pytest.approx(live_m[-1]["eval_loss"], abs=max(1e-5, 2 * reward_tol))


def test_reward_model_run_loads_in_transformers_and_scores_the_same(tmp_path, tiny_model_dir, pref_data, tokenizer):
    from transformers import AutoModelForSequenceClassification

    from alignline.methods.rm import RewardModeling
    from alignline.models.loading import load_model
    from alignline.models.reward_model import RewardModel

    recipe, out = _recipe(tmp_path, tiny_model_dir, pref_data, "rm")
    cfg = load_config(recipe)
    train(cfg, progress=False)
    tensors, lora_b = _lora_b(out / "final" / "adapter" / "adapter_model.safetensors")
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)
    assert any("score" in k for k in tensors)  # the trained head travels with the adapter
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert all({"loss", "accuracy", "margin", "chosen_reward", "rejected_reward"} <= set(m) for m in metrics)
    assert {"eval_loss", "eval_accuracy", "eval_margin"} <= set(metrics[-1])

    # transformers alone, on the merged `final/`: each side of one pair on its own, no padding
    hf = AutoModelForSequenceClassification.from_pretrained(out / "final").eval()
    assert hf.config.num_labels == 1 and hf.config.pad_token_id == tokenizer.pad_token_id
    (pair,) = to_pairs(_pref_records()[3], "prefs.jsonl", "line 4")
    unit = tokenize_pair(tokenizer, pair, 128)
    with torch.no_grad():
        hf_scores = torch.stack(
            [hf(input_ids=torch.tensor([seq.input_ids])).logits[0, 0] for seq in (unit.chosen, unit.rejected)]
        )
        # alignline: the base model with the saved (unmerged) adapter, through its packed reward forward
        ours = RewardModel(
            load_model(str(out / "final" / "adapter"), kind="reward", pad_token_id=tokenizer.pad_token_id).eval()
        )
        batch = RewardModeling(cfg).collate([unit], [[0]], tokenizer.pad_token_id)
        scores = ours(**batch)
    torch.testing.assert_close(scores, hf_scores, atol=1e-5, rtol=0)
    assert (scores[0] - scores[1]).abs() > 0  # a trained head, not a constant
