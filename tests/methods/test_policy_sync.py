"""Rollouts on an external engine (`rollout/policy_sync.py`): one policy sync per step (a fresh adapter version
hot-loaded, or the full weights reloaded), its time logged, truncated importance sampling on its log-probs; and
the engine choice refusing or falling back in one line. The external engine here is a fake standing for vLLM: it
loads what the sync gives it into its own copy of the base and samples with our HF engine (the real vLLM run is
`test_vllm_rollouts.py`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from torch.testing import assert_close

from alignline.config import AdapterConfig, GenerationConfig, GRPOConfig, load_config
from alignline.errors import ConfigError
from alignline.evals.training import train
from alignline.methods.online import policy_loss
from alignline.models.loading import load_causal_lm
from alignline.rollout import policy_sync
from alignline.rollout.hf import HFEngine
from alignline.rollout.policy_sync import rollout_engine
from alignline.train.metrics import read_metrics
from support import write_jsonl, write_recipe

REWARDS = """
def vowels(completions, **kwargs):
    return [sum(ch in "aeiou" for ch in c) / max(len(c), 1) for c in completions]
"""


class FakeExternalEngine:
    """Stands for `VLLMEngine`: `load_lora` loads the adapter directory onto its own base (a new id each call),
    `load_weights` copies the named tensors into it; `generate` samples from what it was last given."""

    name = "fake-vllm"
    dtype = "float32"

    def __init__(self, base: str, first_adapter: Path | None):
        self.base = base
        self.tokenizer, self.model = load_causal_lm(base, "float32")
        self.loras: list[tuple[int, str, list[str]]] = []
        self.weight_loads: list[set[str]] = []
        self.first_adapter = first_adapter

    def load_lora(self, path: str, name: str = "policy") -> int:
        files = sorted(p.name for p in Path(path).iterdir())
        _, base = load_causal_lm(self.base, "float32")
        self.model = PeftModel.from_pretrained(base, path)
        self.loras.append((len(self.loras) + 1, path, files))
        return len(self.loras)

    def load_weights(self, named_tensors) -> None:
        named = dict(named_tensors)
        self.weight_loads.append(set(named))
        self.model.load_state_dict(named, strict=False)

    def generate(self, prompts, params):
        self.model.eval()
        return HFEngine(self.model, self.tokenizer, batch_size=64).generate(prompts, params)


@pytest.fixture
def fake_engine(monkeypatch):
    made: list[FakeExternalEngine] = []

    def open_engine(generation, base, first_adapter):
        made.append(FakeExternalEngine(base, first_adapter))
        return made[-1]

    monkeypatch.setattr(policy_sync, "external_engine", open_engine)
    monkeypatch.setattr(policy_sync, "base_cannot_serve", lambda base: None)  # the fake serves any model
    return made


def _recipe(
    tmp_path: Path, model_dir: Path, adapter: dict | None, method: str = "grpo", lora_sync: str = "adapter"
) -> Path:
    (tmp_path / "my_rewards.py").write_text(REWARDS)
    prompts = write_jsonl(
        tmp_path / "prompts.jsonl", [{"prompt": [{"role": "user", "content": f"Say {i}."}]} for i in range(8)]
    )
    sections = dict(
        method=method,
        model=str(model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(prompts), "eval_fraction": 0.0},
        generation={"backend": "vllm", "dtype": "float32", "lora_sync": lora_sync},
        rewards=[{"name": "vowels", "function": f"{tmp_path / 'my_rewards.py'}:vowels"}],
        grpo={"num_generations": 4, "max_new_tokens": 6, "log_completions_every": 0},
        ppo={"num_generations": 2, "max_new_tokens": 6, "num_ppo_epochs": 1, "log_completions_every": 0},
        training={"max_steps": 3, "batch_size": 2, "lr": 1e-2, "save_every": 10, "tensorboard": False, "threads": 1},
    )
    if adapter is not None:
        sections["adapter"] = adapter
    return write_recipe(tmp_path / "grpo.yaml", **sections)


def test_lora_one_sync_per_step_a_new_version_each(tmp_path, tiny_model_dir, fake_engine):
    adapter = {"type": "lora", "r": 4, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}  # dropout: a mismatch
    recipe = _recipe(tmp_path, tiny_model_dir, adapter)
    out = Path(train(load_config(recipe), progress=False))
    (engine,) = fake_engine
    assert [i for i, _, _ in engine.loras] == [1, 2, 3]
    assert [Path(p).name for _, p, _ in engine.loras] == ["step-000000", "step-000001", "step-000002"]
    assert all("adapter_model.safetensors" in files and "adapter_config.json" in files for _, _, files in engine.loras)
    assert sorted(p.name for p in (out / "rollout-adapter").iterdir()) == ["step-000001", "step-000002"]
    metrics = read_metrics(out / "metrics.jsonl")
    assert len(metrics) == 3
    for m in metrics:
        assert m["sync_seconds"] > 0 and m["rollout_seconds"] > 0
        assert m["generator_mismatch"] < 1e-3  # the same weights in float32: only numerics differ
        assert abs(m["is_ratio_mean"] - 1) < 1e-2 and m["is_clipped_share"] == 0
    generation = json.loads((out / "run.json").read_text())["generation"]
    assert generation == {"backend": "vllm", "dtype": "float32", "sync": "lora"}


def test_lora_merged_sync_writes_only_the_adapted_layers_merged(tmp_path, tiny_model_dir, fake_engine):
    """`lora_sync: merged` (auto's choice on a CPU): no adapter is saved or hot-loaded; each step the adapted
    layers' weights, with the adapter's delta folded in, go to the engine under the base's names; the engine
    then samples what the trainer's adapter model would (the mismatch stays at numerics)."""
    adapter = {"type": "lora", "r": 4, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    out = Path(train(load_config(_recipe(tmp_path, tiny_model_dir, adapter, lora_sync="merged")), progress=False))
    (engine,) = fake_engine
    assert engine.loras == [] and engine.first_adapter is None
    assert not (out / "rollout-adapter").exists()
    assert len(engine.weight_loads) == 3
    base_names = set(dict(load_causal_lm(str(tiny_model_dir), "float32")[1].named_parameters()))
    for names in engine.weight_loads:  # every weight under the base's names (vLLM rebuilds stacked q/k/v whole)
        assert names == base_names
    for m in read_metrics(out / "metrics.jsonl"):
        assert m["generator_mismatch"] < 1e-3 and m["sync_seconds"] > 0
    assert json.loads((out / "run.json").read_text())["generation"]["sync"] == "merged"


def test_merged_lora_weights_are_base_plus_scaled_delta(tiny_model_dir):
    """By hand: W + (alpha / r) * B @ A for each adapted layer, every other weight as it is, all under the
    base's names; the trainer's own weight is not changed."""
    import peft

    base = load_causal_lm(str(tiny_model_dir), "float32")[1]
    names = set(dict(base.named_parameters()))  # before peft wraps it
    model = peft.get_peft_model(base, peft.LoraConfig(r=2, lora_alpha=6, target_modules=["q_proj"]))
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    torch.manual_seed(0)
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_()
    before = layer.base_layer.weight.clone()
    merged = dict(policy_sync.merged_lora_weights(model))
    expected = before + 3.0 * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    assert_close(merged["model.layers.0.self_attn.q_proj.weight"], expected)
    assert_close(layer.base_layer.weight, before, rtol=0, atol=0)
    assert set(merged) == names
    k_proj = model.base_model.model.model.layers[0].self_attn.k_proj.weight
    assert_close(merged["model.layers.0.self_attn.k_proj.weight"], k_proj, rtol=0, atol=0)


def test_lora_sync_auto_is_merged_on_cpu_and_adapter_on_a_server():
    assert policy_sync.lora_sync_mode(GenerationConfig(backend="vllm")) == "merged"
    assert policy_sync.lora_sync_mode(GenerationConfig(backend="vllm", server="http://h:8000")) == "lora"
    assert policy_sync.lora_sync_mode(GenerationConfig(backend="vllm", lora_sync="adapter")) == "lora"
    with pytest.raises(ConfigError, match="generation.lora_sync"):
        policy_sync.lora_sync_mode(GenerationConfig(backend="vllm", server="http://h:8000", lora_sync="merged"))


def test_full_fine_tuning_reloads_weights_by_their_hf_names(tmp_path, tiny_model_dir, fake_engine):
    out = Path(train(load_config(_recipe(tmp_path, tiny_model_dir, None)), progress=False))
    (engine,) = fake_engine
    assert engine.loras == [] and len(engine.weight_loads) == 3
    _, base = load_causal_lm(str(tiny_model_dir), "float32")
    names = engine.weight_loads[0]
    assert "model.embed_tokens.weight" in names and names <= set(base.state_dict())
    assert not (out / "rollout-adapter").exists()
    metrics = read_metrics(out / "metrics.jsonl")
    assert all(m["generator_mismatch"] < 1e-3 for m in metrics)


def test_ppo_syncs_per_step_and_weights_its_loss(tmp_path, tiny_model_dir, fake_engine):
    """PPO's old log-probs are its rollout forward's (the trainer's): the weights compare them with the engine's."""
    adapter = {"type": "lora", "r": 4, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    out = Path(train(load_config(_recipe(tmp_path, tiny_model_dir, adapter, method="ppo")), progress=False))
    (engine,) = fake_engine
    assert [Path(p).name for _, p, _ in engine.loras] == ["step-000000", "step-000001", "step-000002"]
    for m in read_metrics(out / "metrics.jsonl"):
        assert m["sync_seconds"] > 0 and m["generator_mismatch"] < 1e-3
        assert abs(m["is_ratio_mean"] - 1) < 1e-2 and m["is_clipped_share"] == 0


def test_engine_choice_refuses_or_falls_back_in_one_line(tmp_path, tiny_model_dir, capsys):
    model = torch.nn.Linear(1, 1)  # never reached: each case is decided before any model is read
    bottleneck = AdapterConfig(type="bottleneck", reduction_factor=4)
    with pytest.raises(ConfigError, match="LoRA adapters only, not adapter.type 'bottleneck'"):
        rollout_engine(GenerationConfig(backend="vllm"), str(tiny_model_dir), bottleneck, model, tmp_path)
    chosen = rollout_engine(GenerationConfig(backend="auto"), str(tiny_model_dir), bottleneck, model, tmp_path)
    assert chosen.backend == "hf" and not chosen.external
    assert "rollouts on the hf engine (vLLM serves LoRA adapters only" in capsys.readouterr().err
    missing = rollout_engine(
        GenerationConfig(), str(tiny_model_dir), AdapterConfig(), model, tmp_path, cannot_serve=lambda base: "gone"
    )
    assert missing.backend == "hf" and missing.note == "generation.backend auto: rollouts on the hf engine (gone)"
    small = rollout_engine(GenerationConfig(), str(tiny_model_dir), AdapterConfig(), model, tmp_path)
    assert small.backend == "hf" and "head size 8" in small.note  # the shared tiny model: below vLLM's CPU sizes
    with pytest.raises(ConfigError, match="a server gets adapters only"):
        rollout_engine(
            GenerationConfig(backend="vllm", server="http://x:1"), str(tiny_model_dir), None, model, tmp_path
        )
    assert rollout_engine(GenerationConfig(backend="hf"), str(tiny_model_dir), None, model, tmp_path).record() == {
        "backend": "hf",
        "dtype": "as trained",
        "sync": "none",
    }


def _tis_batch() -> tuple[dict, torch.Tensor]:
    """Two sequences (advantages 1 and -1), tokens 0, 0, 1; trainer p = 0.5, 0.25, 0.5; generator p = 0.3,
    0.5, 0.1: ratios 5/3, 0.5, 5 -> capped at 2: weights 5/3, 0.5, 2."""
    logps = torch.tensor([math.log(0.5), math.log(0.25), math.log(0.5)], requires_grad=True)
    batch = {
        "input_ids": torch.zeros(1, 4, dtype=torch.long),
        "position_ids": torch.zeros(1, 4, dtype=torch.long),
        "targets": torch.zeros(1, 4, dtype=torch.long),
        "target_segment": torch.tensor([0, 0, 1]),
        "seq_weight": torch.ones(2),
        "advantages": torch.tensor([1.0, -1.0]),
        "gen_logps": torch.tensor([math.log(0.3), math.log(0.5), math.log(0.1)]),
    }
    return batch, logps


def test_policy_loss_truncated_importance_sampling_hand_computed():
    """One pass (r = 1): the per-token loss is -A · w, dapo sums it: -(5/3 + 0.5) + 2 = -1/6 over 3 tokens;
    without the correction -(1 + 1) + 1 = -1. Mismatch |log p_t - log p_g|: (log 5/3 + log 2 + log 5) / 3."""
    batch, logps = _tis_batch()
    g = GRPOConfig(loss_type="dapo")
    loss, metrics = policy_loss(g, lambda *args: logps, batch, 3.0, 8, tis_cap=2.0)
    assert_close(loss, torch.tensor(-1 / 6 / 3))
    assert (
        metrics["is_ratio_sum"] == pytest.approx(5 / 3 + 2.5)
        and metrics["is_clipped"] == 1
        and metrics["is_tokens"] == 3
    )
    assert metrics["mismatch_sum"] / metrics["mismatch_tokens"] == pytest.approx(math.log(50 / 3) / 3)
    loss.backward()
    assert_close(logps.grad, torch.tensor([-5 / 3, -0.5, 2.0]) / 3)  # the weights scale the gradient, detached
    plain, plain_metrics = policy_loss(g, lambda *args: logps, batch, 3.0, 8)
    assert_close(plain, torch.tensor(-1.0 / 3))
    assert "is_ratio_sum" not in plain_metrics and "mismatch_sum" in plain_metrics
