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


def test_adapter_type_override_creates_adapter_section(tmp_path):
    """Only an explicit adapter.type may add the section (in either order on the command line)."""
    assert load_config(None, ["adapter.type=lora", "lora.r=8"]).adapter == AdapterConfig(r=8)
    assert load_config(None, ["r=8", "adapter.type=lora"]).adapter == AdapterConfig(r=8)


@pytest.mark.parametrize("override", ["r=8", "lora.r=8", "adapter.dropout=0.1"])
def test_leaf_override_does_not_turn_full_finetuning_into_lora(tmp_path, override):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: sft\n")
    with pytest.raises(ConfigError) as err:
        load_config(recipe, [override])
    assert f"override '{override}'" in str(err.value)
    assert "the recipe has no 'adapter:' section" in str(err.value) and "adapter.type=lora" in str(err.value)


def test_weighted_sources(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  train:\n    - {path: d.jsonl, weight: 0.8}\n    - {path: g.jsonl, weight: 0.2}\n")
    cfg = load_config(recipe)
    assert [(s.path, s.weight) for s in cfg.data.train] == [("d.jsonl", 0.8), ("g.jsonl", 0.2)]


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("training:\n  lrr: 1\n", [], "unknown config key 'training.lrr'; allowed here: lr, batch_size"),
        ("training:\n  batch_size: eight\n", [], "config key 'training.batch_size': expected int, got 'eight'"),
        ("adapter:\n  type: lorax\n", [], "config key 'adapter.type': 'lorax' is not allowed; choose one of 'lora'"),
        ("", ["nonsense=1"], "unknown override key 'nonsense'"),
        ("", ["training.lr=-1"], "config key 'training.lr': must be > 0"),
        ("", ["lr"], "override 'lr' is not of the form key=value"),
        ("method: reinforce\n", [], "config key 'method': 'reinforce' is not allowed"),
        ("training:\n  lr: .nan\n", [], "config key 'training.lr': must be a finite number, got nan"),
        ("training:\n  lr: .inf\n", [], "config key 'training.lr': must be a finite number, got inf"),
        ("", ["lr=.inf"], "config key 'training.lr': must be a finite number"),
        ("training:\n  max_grad_norm: .nan\n", [], "config key 'training.max_grad_norm': must be a finite number"),
        ("dpo:\n  beta: .inf\n", [], "config key 'dpo.beta': must be a finite number"),
        ("training:\n  threads: -1\n", [], "config key 'training.threads': must be > 0, got -1"),
        ("training:\n  freeze_layers: -1\n", [], "config key 'training.freeze_layers': must be >= 0, got -1"),
        ("training:\n  warmup_steps: -5\n", [], "config key 'training.warmup_steps': must be >= 0, got -5"),
        ("training:\n  max_grad_norm: -1\n", [], "config key 'training.max_grad_norm': must be >= 0"),
        (
            "adapter:\n  type: prompt\n  num_virtual_tokens: 0\n",
            [],
            "config key 'adapter.num_virtual_tokens': must be > 0, got 0",
        ),
        ("adapter:\n  r: 0\n", [], "config key 'adapter.r': must be > 0, got 0"),
        (
            "training:\n  epochs: 2\n  max_steps: 10\n",
            [],
            "config keys 'training.max_steps' (10) and 'training.epochs' (2.0) are both set",
        ),
        ("training:\n  epochs: 2\n", ["max_steps=10"], "'training.max_steps' (10) and 'training.epochs' (2.0)"),
        (
            "training:\n  early_stopping_patience: 2\n",
            [],
            "config key 'training.early_stopping_patience': early stopping needs evaluation data",
        ),
    ],
)
def test_errors_name_the_key(tmp_path, text, overrides, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(recipe, overrides)
    assert message in str(err.value)


def test_every_recipe_loads(monkeypatch):
    """Training recipes load as RunConfig; data-gate configs (gates*.yaml) load as gate configs; release- and
    stage-gate rules (*release-gates.yaml, *stage-gates.yaml, for `alignline gate` and pipelines) load as gate
    rules; pipelines (a `stages:` list, for `alignline pipeline`) load whole, every stage's recipe included."""
    import yaml

    monkeypatch.chdir(RECIPES.parent)  # a pipeline names its recipes from the repository root

    from alignline.data.quality.gates import load_gate_config

    recipes = sorted(RECIPES.rglob("*.yaml"))
    assert len(recipes) >= 8, "recipes/ lost its examples"
    for path in recipes:
        if path.name.startswith("gates"):
            load_gate_config(path)
        elif path.parent.name == "evals":  # eval suites (`alignline eval --suite`)
            from alignline.evals.suites import load_suite

            assert load_suite(str(path)).records
        elif path.name.endswith(("release-gates.yaml", "stage-gates.yaml")):
            from alignline.evals.gate import load_gates

            assert load_gates(path)
        elif "stages" in yaml.safe_load(path.read_text()):
            from alignline.pipeline.config import load_pipeline

            assert load_pipeline(path).stages
        else:
            assert "method" in yaml.safe_load(path.read_text()), f"{path}: a recipe names its method"
            load_config(path)


def test_epochs_default_and_one_of_epochs_or_steps(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("training:\n  epochs: 2\n")
    assert load_config(None).training.epochs is None
    assert load_config(recipe).training.epochs == 2.0
    cfg = load_config(recipe, ["epochs=null", "max_steps=10"])  # the way out the error names
    assert cfg.training.max_steps == 10 and cfg.training.epochs is None
    ok = load_config(None, ["early_stopping_patience=2", "eval_fraction=0.1"])
    assert ok.training.early_stopping_patience == 2


def test_cli_config_errors_are_one_line_exit_2(tmp_path, capsys):
    from alignline.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: sft\ntraining:\n  lr: .nan\n")
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err == "alignline: error: config key 'training.lr': must be a finite number, got nan\n"


def test_unreadable_recipe_is_one_line(tmp_path, capsys, monkeypatch):
    import os

    from alignline.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: sft\n")
    if os.geteuid() == 0:  # root reads a chmod 000 file anyway: simulate the refusal
        real = Path.read_text

        def deny(self, *a, **k):
            if self == recipe:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *a, **k)

        monkeypatch.setattr(Path, "read_text", deny)
    else:
        recipe.chmod(0)
    try:
        assert main(["train", str(recipe)]) == 2
    finally:
        recipe.chmod(0o644)
    assert capsys.readouterr().err == f"alignline: error: {recipe}: permission denied reading the recipe file\n"


def test_recipe_symlink_loop_is_named(tmp_path):
    loop = tmp_path / "r.yaml"
    loop.symlink_to(loop)
    with pytest.raises(ConfigError, match="recipe file is a symlink loop"):
        load_config(loop)
