"""A run killed with SIGKILL and resumed ends with the same loss curve and weights as one never interrupted."""

import os
import subprocess
import sys

from safetensors.torch import load_file

from alignline.train.metrics import read_metrics
from support import kill_when_exists

CURVE_KEYS = ("step", "loss", "lr", "tokens", "target_tokens", "eval_loss")


def _cmd(recipe, out, *extra):
    return [
        sys.executable,
        "-m",
        "alignline.cli",
        "train",
        "--quiet",
        str(recipe),
        f"output_dir={out}",
        "training.max_steps=120",
        "training.save_every=5",
        "training.eval_every=10",
        "adapter.dropout=0.1",
        "training.batch_size=2",
        *extra,
    ]


def _curve(out):
    return [{k: m[k] for k in CURVE_KEYS if k in m} for m in read_metrics(out / "metrics.jsonl")]


def test_sigkill_then_resume_equals_uninterrupted(sft_recipe, tmp_path):
    recipe, _ = sft_recipe
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_cmd(recipe, straight), check=True, env=env, timeout=600)

    kill_when_exists(_cmd(recipe, killed), killed / "checkpoints" / "step-15", env)
    assert not (killed / "final").exists(), "the run finished before the kill: the test proves nothing"
    steps_at_kill = len(read_metrics(killed / "metrics.jsonl"))

    subprocess.run(_cmd(recipe, killed), check=True, env=env, timeout=600)  # resume: auto
    assert steps_at_kill < 120
    assert _curve(killed) == _curve(straight)
    a = load_file(straight / "final" / "adapter_model.safetensors")
    b = load_file(killed / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
