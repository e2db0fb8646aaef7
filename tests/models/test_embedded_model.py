"""The real embedded model: GGUF -> cached safetensors, its template's masks, and a few LoRA steps."""

import json

import pytest

from alignline.config import load_config
from alignline.data.formats import Conversation, Message
from alignline.data.templates import tokenize_sample
from alignline.evals.training import train
from alignline.models.loading import load_tokenizer, resolve_model_path
from alignline.train.metrics import read_metrics

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm_dir():
    return resolve_model_path("smollm2-135m")


def test_embedded_model_is_cached_as_safetensors(smollm_dir):
    from pathlib import Path

    assert (Path(smollm_dir) / "model.safetensors").is_file()
    assert json.loads((Path(smollm_dir) / "config.json").read_text())["model_type"] == "llama"


def test_smollm_template_masks(smollm_dir):
    tok = load_tokenizer(smollm_dir)
    conv = Conversation(
        [
            Message("system", "Be brief."),
            Message("user", "Hi"),
            Message("assistant", "Hello."),
            Message("user", "2+2?"),
            Message("assistant", "Four."),
        ]
    )
    ids, mask = tokenize_sample(tok, conv)
    trained = tok.decode([t for t, m in zip(ids, mask) if m])
    assert trained == "Hello.<|im_end|>Four.<|im_end|>"


def test_few_lora_steps_on_the_real_model_lower_the_loss(tmp_path):
    records = [
        {
            "messages": [
                {"role": "user", "content": f"Say the code word number {i}."},
                {"role": "assistant", "content": f"Answer: PINEAPPLE-{i}."},
            ]
        }
        for i in range(16)
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"method: sft\nmodel: smollm2-135m\ndata:\n  train: {data}\nadapter:\n  type: lora\n  r: 8\n"
        f"training:\n  lr: 2.0e-3\n  batch_size: 4\n  max_length: 64\n  max_steps: 6\n  packing: true\n"
        f"  lr_scheduler: constant\n  save_every: 100\n  eval_every: 100\n  tensorboard: false\n"
        f"data_gates: false\n"
        f"output_dir: {tmp_path / 'run'}\n"
    )
    train(load_config(recipe), progress=False)
    losses = [m["loss"] for m in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert losses[-1] < 0.7 * losses[0], losses
