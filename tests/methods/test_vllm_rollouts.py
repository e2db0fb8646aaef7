"""GRPO with `generation.backend: vllm` on the real engine: LoRA steps on adapters hot-loaded each step, the
generator/trainer mismatch logged and small, and a run killed with SIGKILL mid-run resuming to the metrics of
one never interrupted. Three vLLM starts (the uninterrupted run, the killed one, its resumption)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignline.testing import save_tiny_model
from alignline.train.metrics import read_metrics
from support import kill_when_exists, vllm_or_skip, write_jsonl, write_recipe

pytestmark = pytest.mark.slow

REWARDS = """
def vowels(completions, **kwargs):
    return [sum(ch in "aeiou" for ch in c) / max(len(c), 1) for c in completions]
"""
STEPS = 3
EXACT = ("step", "reward", "completion_length", "tokens", "truncated_share")
"""Decided by the sampled tokens: equal after resume."""
CLOSE = ("loss", "generator_mismatch", "is_ratio_mean", "grad_norm", "entropy")
"""Float reductions over vLLM's log-probs (its CPU kernels may sum in another order): equal to 1e-6."""


@pytest.fixture(scope="module")
def vllm_model(tmp_path_factory) -> Path:
    vllm_or_skip()
    # head size 32: the smallest vLLM's CPU attention takes (the shared tiny model's is 8)
    return save_tiny_model(tmp_path_factory.mktemp("vllm") / "model", hidden=128, heads=4, intermediate=256)


def _cmd(recipe: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "alignline.cli", "train", "--quiet", str(recipe), f"output_dir={out}"]


def _recipe(tmp_path: Path, vllm_model: Path, lora_sync: str) -> Path:
    (tmp_path / "my_rewards.py").write_text(REWARDS)
    prompts = write_jsonl(
        tmp_path / "prompts.jsonl", [{"prompt": [{"role": "user", "content": f"Say {i}."}]} for i in range(8)]
    )
    return write_recipe(
        tmp_path / "grpo.yaml",
        method="grpo",
        model=str(vllm_model),
        data_gates=False,
        data={"train": str(prompts), "eval_fraction": 0.0},
        adapter={"type": "lora", "r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        generation={"backend": "vllm", "dtype": "float32", "lora_sync": lora_sync},
        rewards=[{"name": "vowels", "function": f"{tmp_path / 'my_rewards.py'}:vowels"}],
        grpo={"num_generations": 4, "max_new_tokens": 8, "log_completions_every": 0},
        training={
            "max_steps": STEPS,
            "batch_size": 2,
            "lr": 1e-2,
            "save_every": 1,
            "tensorboard": False,
            "threads": 1,
            "max_length": 128,
        },
    )


def test_grpo_lora_on_vllm_trains_logs_mismatch_and_resumes_exactly(tmp_path, vllm_model):
    recipe = _recipe(tmp_path, vllm_model, "adapter")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_cmd(recipe, straight), check=True, env=env, timeout=1200)

    metrics = read_metrics(straight / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    for m in metrics:
        assert m["generator_mismatch"] < 0.1, m  # nats per token, float32 on both sides
        assert m["sync_seconds"] > 0 and m["rollout_seconds"] > 0
        assert 0 < m["is_ratio_mean"] <= 2.0
    record = json.loads((straight / "run.json").read_text())
    assert record["generation"]["backend"] == "vllm" and record["generation"]["sync"] == "lora"
    assert sorted(p.name for p in (straight / "rollout-adapter").iterdir()) == ["step-000001", "step-000002"]

    kill_when_exists(_cmd(recipe, killed), killed / "checkpoints" / "step-1", env, timeout=1200)
    assert not (killed / "final").exists(), "the run finished before the kill: the test proves nothing"
    subprocess.run(_cmd(recipe, killed), check=True, env=env, timeout=1200)  # resume: auto
    resumed = read_metrics(killed / "metrics.jsonl")
    assert len(resumed) == len(metrics)
    for a, b in zip(metrics, resumed):
        assert {k: a.get(k) for k in EXACT} == {k: b.get(k) for k in EXACT}
        for k in CLOSE:
            assert b.get(k) == pytest.approx(a.get(k), rel=1e-6, abs=1e-9), (k, a, b)


def test_grpo_lora_merged_sync_on_vllm_samples_the_trained_policy(tmp_path, vllm_model):
    """`lora_sync: merged` (auto's choice on a CPU): the adapted layers' merged weights are reloaded into the
    real engine each step; the run trains, logs its sync and keeps the mismatch small, and saves no adapter
    versions. (The merge itself is checked token for token against the HF engine with an adapter far from
    zero in tests/rollout/test_vllm_engine.py.)"""
    out = tmp_path / "merged"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    subprocess.run(_cmd(_recipe(tmp_path, vllm_model, "merged"), out), check=True, env=env, timeout=1200)
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    for m in metrics:
        assert m["generator_mismatch"] < 0.1, m
        assert m["sync_seconds"] > 0
    assert metrics[-1]["grad_norm"] > 0
    assert json.loads((out / "run.json").read_text())["generation"]["sync"] == "merged"
    assert not (out / "rollout-adapter").exists()
