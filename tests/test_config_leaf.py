"""`config` is a leaf (issue 18): loading a recipe imports no torch, no method, model or reward module and runs no
user code, and a recipe gets the same verdict whatever sections it has."""

import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from alignline.config import MethodName, load_config
from alignline.config_checks import BOTTLENECK_NON_LINEARITIES, KTO_LOSSES_WITH_KL, top_level_names
from alignline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
LEAF_MODULES = {"alignline", "alignline.config", "alignline.config_checks", "alignline.errors", "alignline.io"}

MARKER_REWARD = """
from pathlib import Path

Path(__file__).with_name("imported.marker").write_text("the reward file ran")


def shout(completions, **kwargs):
    return [1.0 for _ in completions]
"""


def grpo_recipe_with_marker_reward(tmp_path: Path, adapter: bool = True, **grpo) -> Path:
    """recipes/grpo-lora.yaml with one more reward: a user file that leaves a marker file when it is imported."""
    (tmp_path / "marker_reward.py").write_text(MARKER_REWARD)
    raw = yaml.safe_load((RECIPES / "grpo-lora.yaml").read_text())
    raw["rewards"].append({"name": "shout", "function": f"{tmp_path / 'marker_reward.py'}:shout"})
    raw["grpo"].update(grpo)
    if not adapter:
        raw.pop("adapter")
        raw["training"].pop("freeze_layers", None)
    path = tmp_path / ("grpo.yaml" if adapter else "grpo-full.yaml")
    path.write_text(yaml.safe_dump(raw))
    return path


def loaded_modules_in_fresh_interpreter(recipe: Path) -> list[str]:
    code = (
        "import json, sys\nfrom alignline.config import load_config\n"
        f"load_config({str(recipe)!r})\nprint(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_loading_a_recipe_imports_no_torch_no_method_and_runs_no_reward_file(tmp_path):
    recipe = grpo_recipe_with_marker_reward(tmp_path)
    modules = loaded_modules_in_fresh_interpreter(recipe)
    assert "torch" not in modules
    assert sorted(m for m in modules if m.startswith("alignline") and m not in LEAF_MODULES) == []
    assert not (tmp_path / "imported.marker").exists(), "load_config ran the user's reward file"


def test_the_shipped_grpo_recipe_loads_as_a_leaf():
    modules = loaded_modules_in_fresh_interpreter(RECIPES / "grpo-lora.yaml")
    assert "torch" not in modules and {m for m in modules if m.startswith("alignline")} <= LEAF_MODULES


@pytest.mark.parametrize("adapter", [True, False])
def test_num_generations_1_is_refused_with_or_without_an_adapter(tmp_path, adapter):
    recipe = grpo_recipe_with_marker_reward(tmp_path, adapter=adapter, num_generations=1)
    with pytest.raises(ConfigError) as e:
        load_config(recipe)
    assert str(e.value) == "config key 'grpo.num_generations': a group needs at least 2 completions"
    assert not (tmp_path / "imported.marker").exists()


@pytest.mark.parametrize("adapter", [True, False])
def test_same_verdict_for_every_section_check_with_or_without_an_adapter(tmp_path, adapter):
    recipe = grpo_recipe_with_marker_reward(tmp_path, adapter=adapter)
    cases = [
        (["method=ppo", "ppo.kl_coef=0"], "config key 'ppo.kl_coef'"),
        (["method=kto", "training.batch_size=1"], "config key 'training.batch_size': kto.loss_type 'kto'"),
        (["env.name=calculator", "env.max_turns=0"], "config key 'env.max_turns': must be >= 1, got 0"),
        (["env.name=calculator", "env.prefix=[{role: user}]"], "config key 'env.prefix[0]'"),
        (["save_merged=true", "adapter.type=prompt"], "config key 'save_merged': prompt and prefix tuning"),
        (["rewards=[]"], "config key 'rewards': an online method needs at least one reward"),
        (
            ["rewards=[{name: a, function: exact_match}, {name: a, function: math_answer}]"],
            "config key 'rewards': names must be unique",
        ),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError) as e:
            load_config(recipe, overrides)
        assert message in str(e.value), (overrides, str(e.value))


def test_a_missing_reward_file_or_function_is_named_without_running_it(tmp_path):
    recipe = grpo_recipe_with_marker_reward(tmp_path)
    raw = yaml.safe_load(recipe.read_text())
    for function, problem in (
        (f"{tmp_path / 'marker_reward.py'}:nope", "has no function 'nope'"),
        (f"{tmp_path / 'absent.py'}:shout", "no such file"),
    ):
        raw["rewards"][2]["function"] = function
        recipe.write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError) as e:
            load_config(recipe)
        assert str(e.value).startswith(f"config key 'rewards[2]' (reward 'shout'): grader '{function}': ")
        assert problem in str(e.value)
    assert not (tmp_path / "imported.marker").exists()


def test_top_level_names_reads_defs_assignments_and_imports():
    import ast

    tree = ast.parse(
        "import os.path as p\nfrom m import f as g\nx = y = 1\nclass C: pass\n"
        "if True:\n    def h(): pass\ntry:\n    def k(): pass\nexcept Exception:\n    pass\n"
        "def outer():\n    def inner(): pass\n"
    )
    assert top_level_names(tree) == {"p", "g", "x", "y", "C", "h", "k", "outer"}


def test_every_recipe_still_loads():
    """Every training recipe under recipes/ (subfolders walked): gates, eval suites, release and stage gates and
    pipelines are other formats, loaded by test_config.py's test_every_recipe_loads."""
    recipes = [
        p
        for p in sorted(RECIPES.rglob("*.yaml"))
        if not p.name.startswith("gates")
        and p.parent.name != "evals"
        and not p.name.endswith(("release-gates.yaml", "stage-gates.yaml"))
        and "stages" not in yaml.safe_load(p.read_text())  # a pipeline (`alignline pipeline run`)
    ]
    assert len(recipes) >= 8
    for path in recipes:
        assert load_config(path).method == yaml.safe_load(path.read_text())["method"]


def test_method_names_are_the_registry():
    from alignline.methods import METHODS

    assert set(typing.get_args(MethodName)) == set(METHODS)


def test_method_names_in_the_refusal():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["method=reinforce"])
    assert str(e.value).startswith("config key 'method': 'reinforce' is not allowed; choose one of 'sft'")
    assert "'grpo'" in str(e.value) and "'ppo'" in str(e.value)


def test_the_pure_facts_match_their_implementations():
    from alignline.losses.kto import KTOLossType, uses_kl
    from alignline.models.bottleneck import NON_LINEARITIES

    assert BOTTLENECK_NON_LINEARITIES == tuple(NON_LINEARITIES)
    assert KTO_LOSSES_WITH_KL == tuple(t.value for t in KTOLossType if uses_kl(t))


def test_config_show_runs_no_reward_file_and_dry_run_says_it_imported_it(tmp_path, tiny_model_dir, capsys):
    from alignline.cli import main
    from support import write_jsonl, write_recipe

    (tmp_path / "marker_reward.py").write_text(MARKER_REWARD)
    prompts = write_jsonl(
        tmp_path / "prompts.jsonl",
        [{"prompt": [{"role": "user", "content": f"Say {i}."}], "answer": str(i)} for i in range(4)],
    )
    reward_file = tmp_path / "marker_reward.py"
    recipe = write_recipe(
        tmp_path / "grpo.yaml",
        method="grpo",
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(prompts)},
        rewards=[{"name": "shout", "function": f"{reward_file}:shout"}],
        grpo={"num_generations": 2, "max_new_tokens": 4},
        training={"max_steps": 1, "batch_size": 2},
    )
    assert main(["config", "show", str(recipe)]) == 0
    assert not (tmp_path / "imported.marker").exists()
    capsys.readouterr()
    assert main(["train", str(recipe), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"imported reward file {reward_file} (dry run)" in out.splitlines()
    assert (tmp_path / "imported.marker").exists() and not (tmp_path / "run").exists()
