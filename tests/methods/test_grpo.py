"""`method: grpo` on the one loop: a tiny model's mean reward rises on a learnable reward, every monitor is
logged, bad reward specs are one line, and a run killed with SIGKILL resumes to the same result."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from alignline.cli import main
from alignline.config import load_config
from alignline.evals.training import train
from alignline.train.metrics import read_metrics
from support import (
    kill_when_exists,
    safetensors_weights,
    write_jsonl,
    write_recipe,
)

REWARDS = '''
def vowels(completions, **kwargs):
    """Share of vowels in the completion: learnable by a random tiny model (it only shifts token odds)."""
    return [sum(ch in "aeiou" for ch in c) / max(len(c), 1) for c in completions]

def wrong_length(completions, **kwargs):
    return [0.0]

def not_a_number(completions, **kwargs):
    return [float("nan")] * len(completions)
'''


@pytest.fixture
def grpo_recipe(tmp_path, tiny_model_dir):
    (tmp_path / "my_rewards.py").write_text(REWARDS)
    prompts = write_jsonl(
        tmp_path / "prompts.jsonl",
        [{"prompt": [{"role": "user", "content": f"Say something about {i}."}], "answer": str(i)} for i in range(16)],
    )
    recipe = write_recipe(
        tmp_path / "grpo.yaml",
        method="grpo",
        generation={"backend": "hf"},  # the tiny model is below vLLM's head sizes; vLLM: test_vllm_rollouts
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(prompts), "eval_fraction": 0.25},
        rewards=[
            {"name": "vowels", "function": f"{tmp_path / 'my_rewards.py'}:vowels"},
            {"name": "exact", "function": "exact_match", "weight": 0.5},
        ],
        grpo={"num_generations": 8, "max_new_tokens": 12, "log_completions_every": 2},
        training={
            "max_steps": 20,
            "batch_size": 2,
            "lr": 3e-2,
            "eval_every": 10,
            "save_every": 10,
            "tensorboard": False,
            "max_length": 128,
            "threads": 1,
        },
    )
    return recipe, tmp_path / "run"


def test_mean_reward_rises_and_every_monitor_is_logged(grpo_recipe):
    recipe, out = grpo_recipe
    train(load_config(recipe), progress=False)  # full fine-tuning
    metrics = read_metrics(out / "metrics.jsonl")
    rewards = [m["reward"] for m in metrics]
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5 + 0.1, rewards
    for key in (
        "loss",
        "reward",
        "reward/vowels",
        "reward/exact",
        "entropy",
        "completion_length",
        "clip_fraction",
        "frac_zero_std",
        "reward_std",
        "truncated_share",
        "grad_norm",
        "lr",
    ):
        assert key in metrics[-1], key
    assert "eval_reward" in metrics[9] and "eval_reward/vowels" in metrics[-1]
    samples = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert {s["step"] for s in samples} == set(range(2, 21, 2)) and len(samples) == 10 * 2 * 8
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["data"]["train_prompts"] == 12
    assert (out / "final" / "model.safetensors").is_file()


def test_lora_trains_only_the_adapter_and_logs_kl(grpo_recipe, tiny_model_dir):
    recipe, out = grpo_recipe
    overrides = [
        "adapter.type=lora",
        "adapter.r=4",
        "adapter.alpha=8",
        "adapter.dropout=0.0",
        "training.max_steps=3",
        "grpo.num_iterations=2",
        "grpo.max_kl=5.0",  # a KL alarm: the reference pass runs (adapters off) though beta is 0
    ]
    train(load_config(recipe, overrides), progress=False)
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert all("kl" in m and m["kl"] >= 0 for m in metrics)
    adapter = safetensors_weights(out / "final")
    assert adapter and all("lora_" in k for k in adapter)
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)


def test_beta_zero_without_a_kl_alarm_skips_the_reference_pass(grpo_recipe, monkeypatch):
    """TRL's beta 0: no reference forward (a third of a CPU step), hence no `kl` in the metrics."""
    from alignline.methods.online import PolicyModel

    calls = []
    original = PolicyModel.reference_logps
    monkeypatch.setattr(PolicyModel, "reference_logps", lambda self, batch: calls.append(1) or original(self, batch))
    recipe, out = grpo_recipe
    overrides = ["adapter.type=lora", "adapter.r=4", "adapter.alpha=8", "training.max_steps=2", "grpo.beta=0.0"]
    train(load_config(recipe, overrides), progress=False)
    metrics = read_metrics(out / "metrics.jsonl")
    assert calls == [] and not any("kl" in m for m in metrics)


@pytest.mark.parametrize(
    "function, message",
    [
        ("no_such_grader", "grader 'no_such_grader'"),
        ("{dir}/missing.py:f", "no such file"),
        ("{dir}/broken.py:f", "importing"),
        ("{dir}/my_rewards.py:wrong_length", "returned 1 scores for 16 completions"),
        ("{dir}/my_rewards.py:not_a_number", "expected a finite number"),
    ],
)
def test_bad_reward_specs_are_one_line(grpo_recipe, tmp_path, capsys, function, message):
    recipe, out = grpo_recipe
    (tmp_path / "broken.py").write_text("def f(:\n")
    spec = json.dumps([{"name": "mine", "function": function.format(dir=tmp_path)}])
    code = main(["train", str(recipe), "--quiet", f"rewards={spec}", "training.max_steps=1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and message in err, err
    assert "mine" in err or "no_such_grader" in err
    if out.exists() and (out / "run.json").exists():
        assert json.loads((out / "run.json").read_text())["status"] == "failed"
    assert not (out / "final").exists()


def _cmd(recipe, out):
    return [
        sys.executable,
        "-m",
        "alignline.cli",
        "train",
        "--quiet",
        str(recipe),
        f"output_dir={out}",
        "training.max_steps=40",
        "training.save_every=4",
        "training.eval_every=100",
        "adapter.type=lora",
        "adapter.r=4",
        "adapter.alpha=8",
        "adapter.dropout=0.1",
        "grpo.max_new_tokens=8",
        "grpo.num_generations=4",
    ]


def test_sigkill_then_resume_equals_uninterrupted(grpo_recipe, tmp_path):
    recipe, _ = grpo_recipe
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_cmd(recipe, straight), check=True, env=env, timeout=600)
    kill_when_exists(_cmd(recipe, killed), killed / "checkpoints" / "step-8", env)
    assert not (killed / "final").exists(), "the run finished before the kill: the test proves nothing"
    subprocess.run(_cmd(recipe, killed), check=True, env=env, timeout=600)  # resume: auto
    keys = ("step", "loss", "reward", "reward/vowels", "completion_length")
    curve = lambda out: [{k: m[k] for k in keys if k in m} for m in read_metrics(out / "metrics.jsonl")]  # noqa: E731
    assert curve(killed) == curve(straight)
    a, b = safetensors_weights(straight / "final"), safetensors_weights(killed / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (killed / "completions.jsonl").read_text() == (straight / "completions.jsonl").read_text()


def test_data_gates_read_prompt_only_records(grpo_recipe, tmp_path, capsys):
    """RL prompts have no answer: the gates check them as prompts (duplicates, PII, leakage, length)."""
    recipe, out = grpo_recipe
    assert main(["data", "check", str(tmp_path / "prompts.jsonl"), "--out", str(tmp_path / "dc"), "--quiet"]) == 0
    report = json.loads((tmp_path / "dc" / "report.json").read_text())
    assert report["format"]["kinds"] == {"prompt": 16} and report["passed"]
    train(load_config(recipe, ["data_gates=true", "training.max_steps=1"]), progress=False)
    assert json.loads((out / "run.json").read_text())["data_gates"]["passed"] is True


def test_alarms_reach_the_log_the_metrics_and_the_report(grpo_recipe, capsys):
    """max_kl of 0 makes the KL alarm fire on the first step with a positive KL estimate."""
    recipe, out = grpo_recipe
    train(
        load_config(
            recipe,
            [
                "adapter.type=lora",
                "adapter.r=4",
                "adapter.alpha=8",
                "adapter.dropout=0.0",
                "training.max_steps=3",
                "grpo.max_kl=1e-9",
            ],
        ),
        progress=False,
    )
    alarms = [line for m in read_metrics(out / "metrics.jsonl") for line in m.get("alarms", [])]
    assert alarms and "above grpo.max_kl" in alarms[0]
    assert "alarm at step" in capsys.readouterr().err
    html = (out / "report.html").read_text()
    assert "Alarms (" in html and "above grpo.max_kl" in html


# ---- a top-level system: the prompt is a conversation (issue 17) ---------------------------------------------------

SYSTEM_RECORDS = [
    {"system": "You are a math tutor. Put the answer after ####.", "prompt": "What is 2+2?", "answer": "4"},
    {"system": "", "prompt": "What is 3+3?", "answer": "6"},
]
SEEN_REWARD = """
import json, os

def seen(prompts, completions, system=None, **kwargs):
    with open(os.environ["SEEN_LOG"], "a") as f:
        f.write(json.dumps({"prompts": prompts, "system": system}) + "\\n")
    return [0.0] * len(completions)
"""


def test_system_prompt_records_render_system_then_user_for_generation(tmp_path, tokenizer):
    """GRPO datasets with a `system` column beside a string prompt: [system, user] through the chat template with the
    generation prompt; an empty system adds no turn (the template's default shows) but the prompt is still chat. The
    system also stays a reward column, as TRL passes extra columns."""
    from alignline.data.prompts import load_prompts
    from alignline.rollout.types import render_prompt

    first, second = load_prompts(str(write_jsonl(tmp_path / "p.jsonl", SYSTEM_RECORDS)))
    system = SYSTEM_RECORDS[0]["system"]
    assert first.prompt == [{"role": "system", "content": system}, {"role": "user", "content": "What is 2+2?"}]
    assert first.columns == {"system": system, "answer": "4"}
    assert render_prompt(tokenizer, first.prompt) == (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert second.prompt == [{"role": "user", "content": "What is 3+3?"}]
    assert render_prompt(tokenizer, second.prompt) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is 3+3?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_system_prompt_with_message_list_and_refusals(tmp_path):
    from alignline.data.prompts import load_prompts
    from alignline.errors import DataError

    (unit,) = load_prompts(
        str(
            write_jsonl(
                tmp_path / "m.jsonl",
                [{"system": "Be brief.", "prompt": [{"role": "user", "content": "Hi"}], "answer": "x"}],
            )
        )
    )
    assert [m["role"] for m in unit.prompt] == ["system", "user"]
    for bad, needle in [
        ({"role": "system", "content": "Be long."}, "differs from the prompt's own system message"),
        (None, "expected a string, got int"),
    ]:
        rec = (
            {"system": "Be brief.", "prompt": [bad, {"role": "user", "content": "Hi"}]}
            if bad
            else {"system": 3, "prompt": "Hi"}
        )
        with pytest.raises(DataError, match=rf"line 1.*field 'system'.*{needle}"):
            load_prompts(str(write_jsonl(tmp_path / "bad.jsonl", [rec])))


def test_grpo_run_generates_from_the_system_prompt(tmp_path, tiny_model_dir, monkeypatch):
    """One real step: the rewards get the [system, user] prompt and the `system` column, and completions.jsonl logs the
    prompt the policy generated from."""
    (tmp_path / "seen_rewards.py").write_text(SEEN_REWARD)
    monkeypatch.setenv("SEEN_LOG", str(tmp_path / "seen.jsonl"))
    prompts = write_jsonl(tmp_path / "prompts.jsonl", SYSTEM_RECORDS[:1] * 2)
    recipe = write_recipe(
        tmp_path / "grpo.yaml",
        method="grpo",
        generation={"backend": "hf"},  # the tiny model is below vLLM's head sizes; vLLM: test_vllm_rollouts
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(prompts)},
        rewards=[{"name": "seen", "function": f"{tmp_path / 'seen_rewards.py'}:seen"}],
        grpo={"num_generations": 2, "max_new_tokens": 4, "log_completions_every": 1},
        training={"max_steps": 1, "batch_size": 2, "tensorboard": False, "max_length": 128, "threads": 1},
    )
    train(load_config(recipe), progress=False)
    system = SYSTEM_RECORDS[0]["system"]
    want = [{"role": "system", "content": system}, {"role": "user", "content": "What is 2+2?"}]
    calls = [json.loads(line) for line in (tmp_path / "seen.jsonl").read_text().splitlines()]
    assert calls and all(p == want for c in calls for p in c["prompts"])
    assert all(s == system for c in calls for s in c["system"])
    logged = [json.loads(line) for line in (tmp_path / "run" / "completions.jsonl").read_text().splitlines()]
    assert logged and all(r["prompt"] == want for r in logged)
