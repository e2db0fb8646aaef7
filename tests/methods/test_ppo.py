"""`method: ppo` on the one loop: a tiny model's mean reward rises on a learnable reward, the value head and the
KL coefficient are saved and restored, a run killed with SIGKILL resumes to the same result, LoRA keeps no
second model, a trained `method: rm` directory serves as the reward, and one collected batch's losses equal
their formulas.

TRL 1.16 (the dev dependency) ships no PPO trainer, so there is nothing of TRL's to run on a whole batch here:
the PPO losses and GAE are checked against hand-computed values and TRL 0.26's source in tests/losses/test_ppo.py,
and the method's batch against those same functions' formulas below.
"""

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
from alignline.evals.training import train
from alignline.methods import get_method
from alignline.methods.ppo import logprobs_and_hidden
from alignline.models.adapters import apply_adapter
from alignline.models.loading import load_model, load_tokenizer_for
from alignline.models.logprob_model import TokenLogprobModel
from alignline.train.checkpoint import METHOD_STATE, load_method_state
from alignline.train.metrics import read_metrics
from support import kill_when_exists, random_packed_batch, safetensors_weights, write_jsonl, write_recipe

VOWELS = '''
def vowels(completions, **kwargs):
    """Share of vowels in the completion: learnable by a random tiny model (it only shifts token odds)."""
    return [sum(ch in "aeiou" for ch in c) / max(len(c), 1) for c in completions]
'''
LORA = ["adapter.type=lora", "adapter.r=4", "adapter.alpha=8", "adapter.dropout=0.0"]


@pytest.fixture
def ppo_recipe(tmp_path, tiny_model_dir):
    (tmp_path / "my_rewards.py").write_text(VOWELS)
    prompts = write_jsonl(
        tmp_path / "prompts.jsonl",
        [{"prompt": [{"role": "user", "content": f"Say something about {i}."}], "answer": str(i)} for i in range(16)],
    )
    recipe = write_recipe(
        tmp_path / "ppo.yaml",
        method="ppo",
        generation={"backend": "hf"},  # the tiny model is below vLLM's head sizes; vLLM: test_vllm_rollouts
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(prompts), "eval_fraction": 0.25},
        rewards=[{"name": "vowels", "function": f"{tmp_path / 'my_rewards.py'}:vowels"}],
        ppo={
            "num_generations": 4,
            "max_new_tokens": 12,
            "log_completions_every": 2,
            "num_ppo_epochs": 2,
            "kl_coef": 0.01,
        },
        training={
            "max_steps": 12,
            "batch_size": 4,
            "lr": 3e-2,
            "lr_scheduler": "constant",
            "eval_every": 6,
            "save_every": 6,
            "tensorboard": False,
            "max_length": 128,
            "threads": 1,
        },
    )
    return recipe, tmp_path / "run"


def test_mean_reward_rises_and_every_monitor_is_logged(ppo_recipe):
    recipe, out = ppo_recipe
    train(load_config(recipe, ["ppo.max_kl=0.001"]), progress=False)  # full fine-tuning: a frozen copy is the reference
    metrics = read_metrics(out / "metrics.jsonl")
    rewards = [m["reward"] for m in metrics]
    assert sum(rewards[-4:]) / 4 > sum(rewards[:4]) / 4 + 0.1, rewards
    for key in (
        "loss",
        "policy_loss",
        "value_loss",
        "reward",
        "reward/vowels",
        "kl",
        "kl_sequence",
        "kl_coef",
        "entropy",
        "completion_length",
        "clip_fraction",
        "value_clip_fraction",
        "approx_kl",
        "explained_variance",
        "score",
        "non_score_reward",
        "rlhf_reward",
        "generator_mismatch",
        "truncated_share",
        "grad_norm",
    ):
        assert key in metrics[-1], key
    assert metrics[0]["kl"] == 0 and metrics[-1]["kl"] > 0.01  # k1 on samples: a mean, positive once drifted
    assert metrics[-1]["generator_mismatch"] < 1e-4  # the rollout's log-probs are the sampler's
    assert "eval_reward" in metrics[5] and "eval_reward/vowels" in metrics[-1]
    samples = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert {s["step"] for s in samples} == set(range(2, 13, 2)) and len(samples) == 6 * 4 * 4
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    alarms = [line for m in metrics for line in m.get("alarms", [])]
    assert any("above ppo.max_kl 0.001" in line for line in alarms), alarms
    assert "above ppo.max_kl" in (out / "report.html").read_text()
    state = safetensors_weights(out / "checkpoints" / "step-12")
    assert {"value_head.weight", "value_head.bias", "kl_coef"} <= set(state)
    assert (out / "final" / "model.safetensors").is_file() and not any(
        "value_head" in k for k in safetensors_weights(out / "final")
    )


def test_lora_value_head_and_kl_coef_are_saved_and_restored(ppo_recipe, tiny_model_dir):
    """LoRA: only the adapter and the value head train; the reference is the base with the adapters off (no
    second model). The adaptive controller (horizon 10) moves kl_coef each step; the checkpoint holds the value
    head and kl_coef, and they load back into a freshly built model exactly."""
    recipe, out = ppo_recipe
    cfg = load_config(
        recipe, LORA + ["training.max_steps=3", "training.save_every=1", "ppo.horizon=10", "ppo.kl_coef=0.2"]
    )
    train(cfg, progress=False)
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3] and metrics[0]["kl"] == 0 and all("kl" in m for m in metrics)
    coefs = [m["kl_coef"] for m in metrics]
    assert coefs[0] == 0.2 and len(set(coefs)) == 3, coefs
    adapter = safetensors_weights(out / "final")
    assert adapter and all("lora_" in k for k in adapter)
    saved = safetensors_weights(out / "checkpoints" / "step-3")
    assert saved["value_head.weight"].abs().sum() > 0 and float(saved["kl_coef"]) not in coefs

    method = get_method(cfg)
    model = apply_adapter(load_model(str(tiny_model_dir)), cfg.adapter, cfg.training)
    fresh = method.wrap(model, cfg)
    assert fresh._reference == [] and fresh.shares_reference_weights()  # adapters off: no second model
    assert float(fresh.kl_coef) == 0.2 and fresh.value_head.weight.abs().sum() == 0
    load_method_state(out / "checkpoints" / "step-3", fresh, method.checkpoint_extras)
    assert torch.equal(fresh.value_head.weight, saved["value_head.weight"])
    assert torch.equal(fresh.value_head.bias, saved["value_head.bias"]) and torch.equal(fresh.kl_coef, saved["kl_coef"])


def test_resume_without_the_value_head_is_one_line(ppo_recipe, capsys):
    recipe, out = ppo_recipe
    assert main(["train", str(recipe), "--quiet", *LORA, "training.max_steps=2", "training.save_every=1"]) == 0
    (out / "checkpoints" / "step-2" / METHOD_STATE).unlink()
    capsys.readouterr()
    code = main(["train", str(recipe), "--quiet", *LORA, "training.max_steps=3", "training.save_every=1"])
    *warnings, error = capsys.readouterr().err.strip().splitlines()  # the schedule changed: a warning first
    assert code == 2 and all("warning" in w for w in warnings), warnings
    assert error.startswith("alignline: error: checkpoint file") and METHOD_STATE in error and "missing" in error


def test_references_lora_full_and_none(ppo_recipe, tiny_model_dir):
    recipe, _ = ppo_recipe
    full = load_config(recipe)
    wrapped = get_method(full).wrap(load_model(str(tiny_model_dir)), full)
    assert len(wrapped._reference) == 1 and not wrapped.shares_reference_weights()  # a frozen copy
    assert not any(p.requires_grad for p in wrapped._reference[0].parameters())
    none = load_config(recipe, ["ppo.kl_coef=0", "ppo.adaptive_kl=false"])
    wrapped = get_method(none).wrap(load_model(str(tiny_model_dir)), none)
    batch = random_packed_batch(wrapped.model.config.vocab_size, rows=2, width=16)
    assert wrapped._reference == [] and wrapped.reference_logps(batch) is None

    lora = load_config(recipe, LORA)
    model = apply_adapter(load_model(str(tiny_model_dir)), lora.adapter, lora.training)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    wrapped = get_method(lora).wrap(model, lora)
    args = (batch["input_ids"], batch["position_ids"], batch["targets"])
    base = TokenLogprobModel(load_model(str(tiny_model_dir)))(*args)
    torch.testing.assert_close(wrapped.reference_logps(batch), base)
    assert not torch.allclose(wrapped(*args)[0], base)


def test_hidden_states_come_from_the_same_forward_on_both_paths(tiny_model_dir):
    model = load_model(str(tiny_model_dir))
    batch = random_packed_batch(model.config.vocab_size, rows=3, width=24, seed=1)
    args = (batch["input_ids"], batch["position_ids"], batch["targets"])
    fast, plain = TokenLogprobModel(model, fast="auto"), TokenLogprobModel(model, fast="off")
    assert fast.fast_path.fused_head and not plain.fast_path.fused_head
    (lp_fast, h_fast), (lp_plain, h_plain) = logprobs_and_hidden(fast, *args), logprobs_and_hidden(plain, *args)
    torch.testing.assert_close(lp_fast, fast(*args))
    # float32, fused chunked head against the plain one: token log-probs of ~5 agree to ~100 ulp over a 32-wide
    # matmul and a 96-way logsumexp; the hidden states come from one forward and are equal
    torch.testing.assert_close(lp_fast, lp_plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_fast, h_plain, atol=1e-5, rtol=1e-5)
    assert h_fast.shape == (int((batch["targets"] != -100).sum()), model.config.hidden_size)


def test_one_collected_batch_follows_the_formulas(ppo_recipe, tiny_model_dir):
    """Before any update the ratio is 1 and values equal the rollout's, so the loss is the token mean of
    `-A + vf_coef · 0.5 (V - R)²`. With γ = λ = 1 and V_T = 0, GAE telescopes: at each completion's first token
    `R_0 = A_0 + V_0 = Σ_t r_t = score - kl_coef · Σ_t KL_t`. Advantages are whitened over the step (both
    micro-batches together): mean 0, Bessel std 1."""
    recipe, _ = ppo_recipe
    cfg = load_config(recipe, ["ppo.gamma=1.0", "ppo.lam=1.0", "ppo.kl_coef=0.3", "ppo.adaptive_kl=false"])
    method = get_method(cfg)
    tok = load_tokenizer_for(str(tiny_model_dir))
    method.tokenizer = tok
    wrapped = method.wrap(load_model(str(tiny_model_dir)), cfg)
    with torch.no_grad():
        wrapped.value_head.weight.normal_(0, 0.3)  # non-zero values, so the value terms are exercised
    units = [PromptUnit(f"Tell me about {i}.", {}) for i in range(4)]
    experience = method.collect(wrapped, units, [[[0], [1]], [[2], [3]]], step=0, device="cpu")
    batches = experience.micro_batches
    assert len(batches) == 2 and experience.metrics["completions"] == 16
    advantages = torch.cat([b["advantages"] for b in batches])
    torch.testing.assert_close(advantages.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(advantages.std(), torch.tensor(1.0), atol=1e-4, rtol=0)
    vowels = method.rewards.graders["vowels"]
    for b in batches:
        segment = b["target_segment"]
        first = torch.stack([(segment == s).nonzero()[0, 0] for s in range(int(segment.max()) + 1)])
        kl = torch.zeros(first.numel()).index_add(0, segment, b["old_logps"] - wrapped.reference_logps(b))
        texts = tok.batch_decode(
            [
                b["input_ids"].flatten()[b["last_index"][s] - n + 1 : b["last_index"][s] + 1]
                for s, n in enumerate(torch.bincount(segment).tolist())
            ],
            skip_special_tokens=True,
        )
        scores = torch.tensor(vowels(completions=texts))
        torch.testing.assert_close(b["returns"][first], scores - 0.3 * kl, atol=1e-4, rtol=1e-4)
        loss, metrics = method.loss(wrapped, b, normalizer=1.0)
        expected = (-b["advantages"] + 0.1 * 0.5 * (b["old_values"] - b["returns"]) ** 2).sum()
        torch.testing.assert_close(loss, expected, atol=1e-4, rtol=1e-4)
        assert metrics["clipped"] == 0 and metrics["approx_kl_sum"] < 1e-8
    assert float(wrapped.kl_coef) == 0.3  # fixed controller


@pytest.mark.parametrize(
    "override, key",
    [
        ("ppo.cliprange=0", "ppo.cliprange"),
        ("ppo.num_ppo_epochs=0", "ppo.num_ppo_epochs"),
        ("ppo.gamma=1.5", "ppo.gamma"),
        ("ppo.kl_coef=0", "ppo.kl_coef"),
        ("ppo.top_p=0", "ppo.top_p"),
        ("ppo.reward_clip=-1", "ppo.reward_clip"),
        ("ppo.adaptive_kl=maybe", "ppo.adaptive_kl"),
        ("ppo.horizon=0", "ppo.horizon"),
    ],
)
def test_config_errors_name_the_key(ppo_recipe, capsys, override, key):
    recipe, out = ppo_recipe
    code = main(["train", str(recipe), "--quiet", override])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and f"'{key}'" in err, err
    assert not (out / "final").exists()


def test_a_trained_reward_model_is_the_reward(tmp_path, tiny_model_dir, ppo_recipe):
    """`method: rm`'s final/ directory, named by the reward_model grader, scores PPO's completions."""
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {
                "prompt": [{"role": "user", "content": f"Question {i}?"}],
                "chosen": [{"role": "assistant", "content": "Yes."}],
                "rejected": [{"role": "assistant", "content": f"No, {i} times no."}],
            }
            for i in range(8)
        ],
    )
    rm = write_recipe(
        tmp_path / "rm.yaml",
        method="rm",
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "rm"),
        data_gates=False,
        data={"train": str(pairs)},
        adapter={"type": "lora", "r": 4, "alpha": 8},
        training={
            "max_steps": 2,
            "batch_size": 4,
            "max_length": 64,
            "tensorboard": False,
            "threads": 1,
            "eval_every": 100,
            "save_every": 100,
        },
    )
    train(load_config(rm), progress=False)
    recipe, out = ppo_recipe
    spec = json.dumps(
        [{"name": "rm", "function": "reward_model", "options": {"model": str(tmp_path / "rm" / "final")}}]
    )
    train(
        load_config(recipe, LORA + [f"rewards={spec}", "training.max_steps=2", "ppo.missing_eos_penalty=1.0"]),
        progress=False,
    )
    metrics = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    assert all("reward/rm" in m and m["reward/rm"] != 0 for m in metrics)
    assert all(m["score"] <= m["reward"] for m in metrics)  # the missing-EOS penalty lowers the score


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
        "ppo.max_new_tokens=8",
        "ppo.num_generations=2",
        "ppo.horizon=20",
        "ppo.whiten_rewards=true",
    ]


def test_sigkill_then_resume_equals_uninterrupted(ppo_recipe, tmp_path):
    """The adaptive controller (horizon 20) moves kl_coef every step and the value head trains: both must come
    back from the checkpoint for the curves and the weights to match."""
    recipe, _ = ppo_recipe
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_cmd(recipe, straight), check=True, env=env, timeout=600)
    kill_when_exists(_cmd(recipe, killed), killed / "checkpoints" / "step-4", env)
    assert not (killed / "final").exists(), "the run finished before the kill: the test proves nothing"
    subprocess.run(_cmd(recipe, killed), check=True, env=env, timeout=600)  # resume: auto
    keys = ("step", "loss", "value_loss", "reward", "kl_coef", "explained_variance", "completion_length")
    curve = lambda out: [{k: m[k] for k in keys if k in m} for m in read_metrics(out / "metrics.jsonl")]  # noqa: E731
    assert curve(killed) == curve(straight)
    assert len({m["kl_coef"] for m in curve(straight)}) > 1
    for directory in ("final", "checkpoints/step-8"):
        a, b = safetensors_weights(straight / directory), safetensors_weights(killed / directory)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "value_head.weight" in safetensors_weights(killed / "checkpoints" / "step-8")
    assert (killed / "completions.jsonl").read_text() == (straight / "completions.jsonl").read_text()
