"""Multi-step RL (`method: grpo` with `env:`): the loss sees exactly the policy's tokens, a tiny model's episode
reward rises on a learnable environment, tool-use monitors are counted right, config errors name the key, and a run
killed with SIGKILL resumes to the same result."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from alignline.cli import main
from alignline.config import load_config
from alignline.data.prompts import PromptUnit
from alignline.data.templates import IGNORE
from alignline.evals.training import train
from alignline.methods import get_method
from alignline.methods.rft import EpisodeGRPO, add_episode_metrics, summarize_episodes
from alignline.models.loading import load_causal_lm
from alignline.rollout.episodes import run_episodes
from alignline.rollout.types import SamplingParams
from alignline.train.metrics import read_metrics
from support import ScriptedTokenEngine, kill_when_exists, safetensors_weights, write_jsonl, write_recipe

ENV = '''
class Vowels:
    """Two turns: any reply, then "Once more."; the reward is the share of vowels over both replies (a random tiny
    model learns it by shifting token odds, as test_grpo's reward)."""

    def reset(self, seed=None, **task):
        self.replies = []
        return [{"role": "user", "content": task["prompt"]}], {}

    def step(self, action):
        self.replies.append(action)
        text = "".join(self.replies)
        share = sum(ch in "aeiou" for ch in text) / max(len(text), 1)
        if len(self.replies) == 1:
            return [{"role": "user", "content": "Once more."}], 0.0, False, False, {"components": {"vowels": 0.0}}
        return [], share, True, False, {"components": {"vowels": share}}
'''

CALL = '<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{}"}}}}\n</tool_call>'
TASKS = [
    {"prompt": [{"role": "user", "content": "Ann has 3 bags of 4 apples. How many apples?"}], "answer": 12},
    {"prompt": [{"role": "user", "content": "Tom had 9 pens and lost 2. How many now?"}], "answer": 7},
    {"prompt": [{"role": "user", "content": "Sue reads 5 pages a day for 6 days. How many pages?"}], "answer": 30},
]


PREFIX = [
    {"role": "system", "content": "Call the calculator, then answer."},
    {"role": "user", "content": "How many is 2 times 3?"},
    {"role": "assistant", "content": CALL.format("2 * 3")},
    {"role": "tool", "content": "6"},
    {"role": "assistant", "content": "Answer: 6"},
]


def reply(prompt: str, call: int) -> str:
    """Ann: a call, then the answer. Tom: a wrong answer at once. Sue: a call with a typo, a good call, the answer."""
    if "Ann" in prompt:
        return ["Let me compute.\n" + CALL.format("3 * 4"), "Answer: 12"][call]
    if "Tom" in prompt:
        return "Answer: 8"
    return [CALL.format("5 * 6)"), CALL.format("5 * 6"), "That is 30 pages. Answer: 30"][call]


@pytest.fixture
def calculator_recipe(tmp_path, tiny_model_dir):
    tasks = write_jsonl(tmp_path / "tasks.jsonl", TASKS * 4)
    return write_recipe(
        tmp_path / "rft.yaml",
        method="grpo",
        generation={"backend": "hf"},  # the tiny model is below vLLM's head sizes; vLLM: test_vllm_rollouts
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(tasks), "eval_fraction": 0.25},
        env={"name": "calculator", "max_turns": 3, "options": {"tool_call_reward": 0.1}, "prefix": PREFIX},
        grpo={"num_generations": 3, "max_new_tokens": 8},
        training={"max_steps": 2, "batch_size": 1, "tensorboard": False, "threads": 1},
    )


def test_the_loss_is_on_exactly_the_policys_tokens(calculator_recipe, tokenizer):
    cfg = load_config(calculator_recipe)
    method = get_method(cfg)
    assert isinstance(method, EpisodeGRPO)
    method.tokenizer = tokenizer
    _, model = load_causal_lm(cfg.model, "float32")
    engine = ScriptedTokenEngine(tokenizer, reply)
    tasks = [method.task(PromptUnit(t["prompt"], {"answer": t["answer"]})) for t in TASKS]
    assert all(t["prompt"][:5] == PREFIX for t in tasks)
    episodes = run_episodes(engine, method.make_env, tasks, SamplingParams(logprobs=True), max_turns=3)
    rewards, components = method.score(episodes)
    assert rewards.tolist() == pytest.approx([1.1, 0.0, 1.1])
    assert components == {"correct": [1.0, 0.0, 1.0], "tool": [1.0, 0.0, 1.0], "format": [1.0, 1.0, 1.0]}
    batch = method.experience_batch(method.wrap(model, cfg), episodes, rewards, "cpu")
    targets = batch["targets"][batch["targets"] != IGNORE]
    for s, episode in enumerate(episodes):
        trained = targets[batch["target_segment"] == s].tolist()
        generated = [t for c in episode.completions for t in c.token_ids]
        assert trained == generated  # the policy's turns, each with its end-of-turn token, and nothing else
        text = tokenizer.decode(trained)
        assert text == "".join(c.text + "<|im_end|>" for c in episode.completions)
        assert "<tool_response>" not in text and "How many" not in text  # no observation, no prompt
        assert "2 * 3" not in text and "Answer: 6" not in text  # the worked example's assistant turns are context
    assert [len(episode.completions) for episode in episodes] == [2, 1, 3]
    assert batch["gen_logps"].tolist() == pytest.approx([-0.5] * targets.numel())  # the scripted log-probs


@pytest.mark.parametrize("gated, watched", [(False, ["tool", "format"]), (True, [])])
def test_shaping_paid_only_when_correct_is_not_watched_for_hacking(calculator_recipe, tokenizer, gated, watched):
    """With `shaping_only_if_correct` the environment's shaping rewards are gated on correctness, so the
    reward-hacking rule leaves them out (shape alone earns them nothing); without it, both are watched."""
    cfg = load_config(calculator_recipe)
    cfg.env.options["shaping_only_if_correct"] = gated
    method = get_method(cfg)
    method.tokenizer = tokenizer
    tasks = [method.task(PromptUnit(t["prompt"], {"answer": t["answer"]})) for t in TASKS]
    engine = ScriptedTokenEngine(tokenizer, reply)
    method.score(run_episodes(engine, method.make_env, tasks, SamplingParams(logprobs=True), max_turns=3))
    assert method.monitor.accuracy == "correct" and method.monitor.others == watched


def test_tool_use_metrics_are_counted_per_episode(tokenizer):
    """Ann: 1 call, correct. Tom: none. Sue: 2 calls, 1 correct (the first is a calculator error).
    tool_calls_per_episode = 3/3; valid rate = 2/3; episodes with a correct call = 2/3; turns = (2+1+3)/3 = 2."""
    from alignline.rollout.env import env_factory

    episodes = run_episodes(
        ScriptedTokenEngine(tokenizer, reply), env_factory("calculator"), TASKS, SamplingParams(), max_turns=3
    )
    sums: dict = {}
    add_episode_metrics(sums, torch.tensor([1.0, 0.0, 1.0]), {}, episodes, 3)
    out = summarize_episodes(sums)
    assert out["tool_calls_per_episode"] == 1.0
    assert out["tool_call_valid_rate"] == pytest.approx(2 / 3) and out["tool_call_rate"] == pytest.approx(2 / 3)
    assert out["episode_turns"] == 2.0 and out["correct_rate"] == pytest.approx(2 / 3)


@pytest.fixture
def vowel_recipe(tmp_path, tiny_model_dir):
    (tmp_path / "my_env.py").write_text(ENV)
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"Say something about {i}."} for i in range(16)])
    recipe = write_recipe(
        tmp_path / "rft.yaml",
        method="grpo",
        generation={"backend": "hf"},  # the tiny model is below vLLM's head sizes; vLLM: test_vllm_rollouts
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(prompts), "eval_fraction": 0.25},
        env={"name": f"{tmp_path / 'my_env.py'}:Vowels", "max_turns": 3},
        grpo={"num_generations": 8, "max_new_tokens": 6, "log_completions_every": 5, "eval_prompts": 4},
        training={
            "max_steps": 16,
            "batch_size": 2,
            "lr": 3e-2,
            "eval_every": 100,
            "save_every": 100,
            "tensorboard": False,
            "max_length": 128,
            "threads": 1,
        },
    )
    return recipe, tmp_path / "run"


def test_mean_episode_reward_rises_on_a_learnable_env(vowel_recipe):
    recipe, out = vowel_recipe
    train(load_config(recipe), progress=False)
    metrics = read_metrics(out / "metrics.jsonl")
    rewards = [m["reward"] for m in metrics]
    assert sum(rewards[-4:]) / 4 > sum(rewards[:4]) / 4 + 0.1, rewards
    last = metrics[-1]
    for key in (
        "loss",
        "reward",
        "reward/vowels",
        "tool_calls_per_episode",
        "tool_call_valid_rate",
        "episode_turns",
        "entropy",
        "completion_length",
        "frac_zero_std",
        "eval_reward",
        "eval_reward/vowels",
        "eval_episode_turns",
    ):
        assert key in last, key
    assert all(m["episode_turns"] == 2.0 for m in metrics)  # the environment ends every episode at turn 2
    samples = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(samples) == 3 * 2 * 8 and [m["role"] for m in samples[0]["episode"]] == [
        "assistant",
        "user",
        "assistant",
    ]
    # Each held-out task's greedy episode at the evaluation (the end: step 16), with its 0/1 outcomes.
    evaluated = [json.loads(line) for line in (out / "eval_episodes.jsonl").read_text().splitlines()]
    assert [(r["step"], r["task"]) for r in evaluated] == [(16, i) for i in range(4)]
    assert all(r[k] in (0.0, 1.0) for r in evaluated for k in ("correct", "correct_call", "valid_calls"))
    assert [m["role"] for m in evaluated[0]["episode"]] == ["assistant", "user", "assistant"]
    assert sum(r["reward"] for r in evaluated) / 4 == pytest.approx(last["eval_reward"], abs=1e-6)


@pytest.mark.parametrize(
    "override, message",
    [
        ("env.name=no_such_env", "config key 'env.name': environment 'no_such_env'"),
        ("env.max_turns=0", "config key 'env.max_turns': must be >= 1"),
        ("env.options={nope: 1}", "config key 'env.options': environment 'calculator' does not take ['nope']"),
        ("method=sft", "config key 'env.name': environments train with method: grpo"),
        ("grpo.num_generations=1", "config key 'grpo.num_generations'"),
        ("env.prefix=[{role: user}]", "config key 'env.prefix[0]'"),
    ],
)
def test_config_errors_name_the_key(calculator_recipe, capsys, override, message):
    assert main(["train", str(calculator_recipe), "--quiet", override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err


def test_a_task_the_environment_cannot_start_names_the_record(calculator_recipe, tmp_path, capsys):
    write_jsonl(tmp_path / "tasks.jsonl", [*TASKS, {"prompt": "How many?"}])
    assert main(["train", str(calculator_recipe), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "tasks.jsonl" in err and "line 4" in err and "needs an `answer`" in err, err


def _cmd(recipe, out):
    return [
        sys.executable,
        "-m",
        "alignline.cli",
        "train",
        "--quiet",
        str(recipe),
        f"output_dir={out}",
        "training.max_steps=8",
        "training.save_every=4",
        "training.eval_every=100",
        "adapter.type=lora",
        "adapter.r=4",
        "adapter.alpha=8",
        "adapter.dropout=0.1",
        "grpo.max_new_tokens=4",
        "grpo.num_generations=4",
        "grpo.log_completions_every=2",
    ]


def test_sigkill_then_resume_equals_uninterrupted(vowel_recipe, tmp_path):
    recipe, _ = vowel_recipe
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_cmd(recipe, straight), check=True, env=env, timeout=600)
    kill_when_exists(_cmd(recipe, killed), killed / "checkpoints" / "step-4", env)
    assert not (killed / "final").exists(), "the run finished before the kill: the test proves nothing"
    subprocess.run(_cmd(recipe, killed), check=True, env=env, timeout=600)  # resume: auto
    keys = ("step", "loss", "reward", "reward/vowels", "completion_length", "tool_calls_per_episode")
    curve = lambda out: [{k: m[k] for k in keys if k in m} for m in read_metrics(out / "metrics.jsonl")]  # noqa: E731
    assert curve(killed) == curve(straight)
    a, b = safetensors_weights(straight / "final"), safetensors_weights(killed / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (killed / "completions.jsonl").read_text() == (straight / "completions.jsonl").read_text()
    assert (killed / "eval_episodes.jsonl").read_text() == (straight / "eval_episodes.jsonl").read_text()


def test_a_tasks_system_after_env_prefix_is_kept_once_or_refused(calculator_recipe, tmp_path, capsys):
    """A record's top-level `system` (issue 17) beside env.prefix's own system message: the same text is kept once;
    a different one is one line naming the record, never two system turns."""
    method = get_method(load_config(calculator_recipe))
    same = PromptUnit(
        [{"role": "system", "content": PREFIX[0]["content"]}, {"role": "user", "content": "Q?"}],
        {"system": PREFIX[0]["content"], "answer": 1},
        "t.jsonl, line 1",
    )
    assert method.task(same)["prompt"] == [*PREFIX, {"role": "user", "content": "Q?"}]
    write_jsonl(tmp_path / "tasks.jsonl", [*TASKS, {**TASKS[0], "system": "Never use tools."}])
    assert main(["train", str(calculator_recipe), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "line 4" in err and "'system'" in err and "env.prefix" in err, err
