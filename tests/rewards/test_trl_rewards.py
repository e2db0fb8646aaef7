"""TRL itself calls our graders: a real `GRPOTrainer` (TRL 1.16, dev only) with built-in graders as its reward
functions scores conversational completions through its own `_calculate_rewards`."""

from __future__ import annotations

import math

import pytest

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """TRL's trainer initializes accelerate's process-wide state; later runs in this process get a fresh one."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def test_grpo_trainer_calls_our_graders(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from alignline.rewards.registry import get_grader

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = [
        {"prompt": [{"role": "user", "content": "2+2?"}], "answer": "4"},
        {"prompt": [{"role": "user", "content": "Capital of France?"}], "answer": None},
    ]
    graders = [
        get_grader("numeric_match"),
        get_grader("refusal"),
        get_grader("regex", pattern=r"^\d+$"),
        get_grader({"function": "length", "name": "short", "max": 5}),
    ]
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=4,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=graders,
        args=args,
        processing_class=tok,
        train_dataset=datasets.Dataset.from_list(rows),
    )
    assert trainer.reward_func_names == ["numeric_match", "refusal", "regex", "short"]
    completions = [
        [{"role": "assistant", "content": "4"}],
        [{"role": "assistant", "content": "I can't help with that."}],
    ]
    rewards = trainer._calculate_rewards(rows, [r["prompt"] for r in rows], completions, [[1], [2, 3]]).tolist()
    assert rewards[0] == [1.0, 0.0, 1.0, 1.0]
    assert math.isnan(rewards[1][0]) and rewards[1][1:] == [1.0, 0.0, 0.0]  # None (no answer) -> NaN in TRL
