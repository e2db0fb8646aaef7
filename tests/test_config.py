from pathlib import Path

import pytest

from alignline.config import AdapterConfig, load_config
from alignline.errors import ConfigError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_yaml_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: sft\ndata:\n  train: a.jsonl\nadapter:\n  type: lora\ntraining:\n  lr: 2e-4\n")
    cfg = load_config(recipe, ["lr=1e-4", "lora.r=32", "training.max_steps=7", "packing=false"])
    assert cfg.training.lr == 1e-4 and cfg.adapter.r == 32 and cfg.training.max_steps == 7
    assert cfg.training.packing is False
    assert cfg.data.train[0].path == "a.jsonl" and cfg.data.train[0].weight == 1.0


def test_lora_override_creates_adapter_section(tmp_path):
    cfg = load_config(None, ["lora.r=8"])
    assert cfg.adapter == AdapterConfig(r=8)


def test_weighted_sources(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  train:\n    - {path: d.jsonl, weight: 0.8}\n    - {path: g.jsonl, weight: 0.2}\n")
    cfg = load_config(recipe)
    assert [(s.path, s.weight) for s in cfg.data.train] == [("d.jsonl", 0.8), ("g.jsonl", 0.2)]


@pytest.mark.parametrize("text, overrides, message", [
    ("training:\n  lrr: 1\n", [], "unknown config key 'training.lrr'; allowed here: lr, batch_size"),
    ("training:\n  batch_size: eight\n", [], "config key 'training.batch_size': expected int, got 'eight'"),
    ("adapter:\n  type: lorax\n", [], "config key 'adapter.type': 'lorax' is not allowed; choose one of 'lora'"),
    ("", ["nonsense=1"], "unknown override key 'nonsense'"),
    ("", ["training.lr=-1"], "config key 'training.lr': must be > 0"),
    ("", ["lr"], "override 'lr' is not of the form key=value"),
    ("method: ppo\n", [], "config key 'method': 'ppo' is not allowed"),
])
def test_errors_name_the_key(tmp_path, text, overrides, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(recipe, overrides)
    assert message in str(err.value)


def test_every_recipe_loads():
    """Training recipes load as RunConfig; data-gate configs (gates*.yaml) load as gate configs."""
    import yaml

    from alignline.data.quality.gates import load_gate_config

    recipes = sorted(RECIPES.rglob("*.yaml"))
    assert len(recipes) >= 8, "recipes/ lost its examples"
    for path in recipes:
        if path.name.startswith("gates"):
            load_gate_config(path)
        else:
            assert "method" in yaml.safe_load(path.read_text()), f"{path}: a recipe names its method"
            load_config(path)
