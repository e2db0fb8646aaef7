"""Artifacts that work on another machine: the base model named by its hub id (and still loadable offline
here), files readable by others (0644), and a real model card in final/README.md."""

import hashlib
import json
import shutil
import stat

import pytest

from alignline.config import load_config
from alignline.evals.training import train
from alignline.models.loading import HUB_IDS, load_model, resolve
from alignline.report.model_card import write_model_card

HUB_ID = HUB_IDS["smollm2-135m"]


@pytest.fixture
def embedded_is_tiny(tmp_path, tiny_model_dir, monkeypatch):
    """Stand the tiny model in for the embedded one: its converted copy is looked up in ALIGNLINE_CACHE."""
    cache = tmp_path / "cache"
    shutil.copytree(tiny_model_dir, cache / "models" / "smollm2-135m-instruct")
    monkeypatch.setenv("ALIGNLINE_CACHE", str(cache))
    return cache


def test_adapter_names_the_embedded_base_by_hub_id_and_loads_offline(sft_recipe, embedded_is_tiny):
    recipe, out = sft_recipe
    train(load_config(recipe, ["model=smollm2-135m"]), progress=False)
    for folder in [out / "final", *sorted((out / "checkpoints").iterdir())]:
        config = json.loads((folder / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == HUB_ID, folder
    # without our own record of the base, the hub id alone still loads here, offline (conftest: HF_HUB_OFFLINE)
    (out / "final" / "alignline_model.json").unlink()
    base, adapter = resolve(str(out / "final"))
    assert base == str(embedded_is_tiny / "models" / "smollm2-135m-instruct") and adapter == str(out / "final")
    model = load_model(str(out / "final"))
    assert any("lora_" in name for name, _ in model.named_parameters())
    card = (out / "final" / "README.md").read_text()
    assert f"base_model: {HUB_ID}" in card and "library_name: peft" in card


def test_every_artifact_is_readable_by_others(sft_recipe):
    recipe, out = sft_recipe
    train(load_config(recipe, ["save_merged=true"]), progress=False)
    for folder in ("final", "checkpoints", "merged"):
        files = [p for p in (out / folder).rglob("*")]
        assert files
        for p in files:
            mode = stat.S_IMODE(p.stat().st_mode)
            assert mode == (0o755 if p.is_dir() else 0o644), (p, oct(mode))
    for name in ("run.json", "metrics.jsonl", "report.html"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644
    assert "AutoModelForCausalLM" in (out / "merged" / "README.md").read_text()


def test_model_card_says_what_the_model_is_and_how_to_load_it(sft_recipe):
    recipe, out = sft_recipe
    train(load_config(recipe, []), progress=False)
    card = (out / "final" / "README.md").read_text()
    run = json.loads((out / "run.json").read_text())
    data_file = run["data"]["sources"][0]["path"]
    sha = hashlib.sha256(open(data_file, "rb").read()).hexdigest()
    assert card.startswith("---\n") and "## Training" in card and "## Data" in card
    assert "| method | sft |" in card and "| adapter.type | lora |" in card and "| adapter.r | 4 |" in card
    assert data_file in card and sha in card
    assert "## Data gates" in card and "Off (`data_gates: false`)" in card
    last_eval = run["evals"][-1]
    assert f"| eval_loss (step {last_eval['step']}) | {last_eval['eval_loss']:.4g} |" in card
    assert "AutoPeftModelForCausalLM.from_pretrained" in card and f"alignline {run['packages']['alignline']}" in card
    assert "<!-- Provide a quick summary" not in card  # not PEFT's template
    # rewritable from run.json alone
    (out / "final" / "README.md").unlink()
    assert write_model_card(out) == [out / "final" / "README.md"]
