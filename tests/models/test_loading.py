"""Model loading: what users see when a model loads."""

from __future__ import annotations

from alignline.models.loading import load_model


def test_reward_model_load_prints_no_missing_head_table(tiny_model_dir, capfd, caplog):
    """A causal LM loaded as a reward model gets a new `score` head; transformers' LOAD REPORT table
    about it is expected noise and is not shown."""
    model = load_model(str(tiny_model_dir), kind="reward", pad_token_id=0)
    assert type(model).__name__ == "LlamaForSequenceClassification"
    captured = capfd.readouterr()
    assert "LOAD REPORT" not in captured.out + captured.err + caplog.text
