"""A local model directory that does not load says which file is wrong, not that the hub is off."""

from __future__ import annotations

import shutil

import pytest

from alignline.errors import ModelError
from alignline.models.loading import load_model, load_tokenizer_for


@pytest.fixture
def model_copy(tmp_path, tiny_model_dir):
    return shutil.copytree(tiny_model_dir, tmp_path / "model")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_weights_name_the_file(model_copy, damage):
    weights = model_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not a model" * 20, "empty": b""}[damage])
    with pytest.raises(ModelError) as err:
        load_model(str(model_copy))
    text = str(err.value)
    assert f"{weights} is not a readable safetensors file, truncated or corrupt" in text and "Hub" not in text


def test_no_weights(model_copy):
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=f"the directory {model_copy} has no weights"):
        load_model(str(model_copy))


def test_model_dir_without_tokenizer(model_copy):
    for f in model_copy.glob("tokenizer*"):
        f.unlink()
    with pytest.raises(ModelError) as err:
        load_tokenizer_for(str(model_copy))
    assert f"the directory {model_copy} has no tokenizer" in str(err.value) and "Hub" not in str(err.value)


def test_train_on_corrupt_weights_is_one_line(sft_recipe, model_copy, capsys):
    from alignline.cli import main

    recipe, out = sft_recipe
    (model_copy / "model.safetensors").write_bytes(b"garbage" * 10)
    assert main(["train", "--quiet", str(recipe), f"model={model_copy}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.safetensors is not a readable safetensors file" in err[0]
    assert not out.exists()  # it failed before the run wrote anything
