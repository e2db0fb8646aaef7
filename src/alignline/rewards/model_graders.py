"""The `reward_model` grader: a trained reward model's score of each (prompt, completion), as in `alignline score`.

Built from options `{model: PATH}` (plus `max_length`, `batch_size`) and kept by `get_grader`, so the model
loads once however often a suite names it; it loads on first use, not when the suite is read. Texts go
through the model's chat template and are read at the last token, exactly as in reward-model training
(`rewards/reward_models.py`). Plain-string prompts and completions become a user and an assistant turn.
"""

from __future__ import annotations

from alignline.errors import ConfigError


class RewardModelGrader:
    """The reward model's scalar score per completion (higher: preferred), unbounded.

    Options: model (a reward-model directory from `method: rm`), max_length (2048), batch_size (8).
    """

    def __init__(self, model: str, max_length: int = 2048, batch_size: int = 8):
        if not isinstance(model, str) or not model:
            raise ConfigError(f"grader 'reward_model': option 'model' must be a path or name, got {model!r}")
        self.model, self.max_length, self.batch_size = model, max_length, batch_size
        self.scorer = None
        self.__name__ = "reward_model"

    def __call__(self, prompts=None, completions=(), **columns) -> list[float]:
        from alignline.rewards.reward_models import RewardScorer, as_chat  # lazy: torch, only once a model scores

        if self.scorer is None:
            self.scorer = RewardScorer(self.model, self.max_length)
        prompts = prompts if prompts is not None else [""] * len(completions)
        pairs = [as_chat(p, c) for p, c in zip(prompts, completions)]
        return self.scorer([p for p, _ in pairs], [r for _, r in pairs], batch_size=self.batch_size)
