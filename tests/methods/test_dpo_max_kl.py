"""`dpo.max_kl`: DPO stops when the held-out KL(policy || reference) estimate exceeds the bound."""

from __future__ import annotations

import json

import pytest

from alignline.config import load_config
from alignline.errors import ConfigError
from alignline.evals.training import train
from support import write_jsonl, write_recipe


def _pairs(n: int = 12) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
            "chosen": [{"role": "assistant", "content": f"Answer: {2 * i}."}],
            "rejected": [{"role": "assistant", "content": f"I can't help with that, {i}."}],
        }
        for i in range(n)
    ]


def _recipe(tmp_path, tiny_model_dir, **dpo):
    data = write_jsonl(tmp_path / "prefs.jsonl", _pairs())
    return write_recipe(
        tmp_path / "dpo.yaml",
        method="dpo",
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(data), "eval_fraction": 0.25},
        adapter={"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        dpo={"kl_prompts": 2, "kl_max_new_tokens": 4, **dpo},
        training={
            "max_steps": 6,
            "batch_size": 2,
            "max_length": 128,
            "eval_every": 2,
            "save_every": 100,
            "lr": 5e-2,
            "tensorboard": False,
            "threads": 1,
        },
    )


def test_dpo_stops_when_kl_exceeds_the_bound(tmp_path, tiny_model_dir):
    recipe = _recipe(tmp_path, tiny_model_dir, max_kl=1e-6)
    run_dir = train(load_config(recipe), progress=False)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "completed" and run["stopped_early"] is True
    assert run["steps"] == 2 and "exceeded dpo.max_kl 1e-06" in run["stop_reason"]
    assert (run_dir / "final").is_dir()


def test_max_kl_needs_held_out_prompts(tmp_path, tiny_model_dir):
    recipe = _recipe(tmp_path, tiny_model_dir, max_kl=5.0)
    with pytest.raises(ConfigError, match="dpo.max_kl"):
        load_config(recipe, ["data.eval_fraction=0"])
    with pytest.raises(ConfigError, match="must be > 0"):
        load_config(recipe, ["dpo.max_kl=0"])
