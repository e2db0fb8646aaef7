"""Shared fixtures: a tiny random Llama and tokenizer written once per session. Helpers live in
`tests/support/` (`from support import ...`)."""

from __future__ import annotations

import os

# Tests never reach the network: set before transformers / huggingface_hub read it.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest

from support import chat_records, save_tiny_model, tiny_tokenizer, write_jsonl, write_recipe


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """Runs with `training.threads: 1` (tiny matmuls gain nothing from a second thread) set torch's process-wide
    thread count; every test gets it back as it found it."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def private_run_registry(tmp_path_factory):
    """Every run a test starts is recorded in a registry of this session, never in ./runs/registry.db."""
    os.environ["ALIGNLINE_REGISTRY"] = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'registry.db'}"
    yield
    os.environ.pop("ALIGNLINE_REGISTRY", None)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture
def sft_recipe(tmp_path, tiny_model_dir):
    """A recipe for a few LoRA SFT steps on the tiny model; returns (path, output_dir)."""
    data = write_jsonl(tmp_path / "train.jsonl", chat_records())
    out = tmp_path / "run"
    recipe = write_recipe(
        tmp_path / "recipe.yaml",
        method="sft",
        model=str(tiny_model_dir),
        output_dir=str(out),
        data_gates=False,
        data={"train": str(data), "eval_fraction": 0.2},
        adapter={"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        training={
            "max_steps": 4,
            "batch_size": 2,
            "max_length": 128,
            "eval_every": 2,
            "save_every": 2,
            "lr": 1e-3,
            "tensorboard": False,
            "log_every": 1,
        },
    )
    return recipe, out
