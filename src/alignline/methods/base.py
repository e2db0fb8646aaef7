"""What a method is: a small Protocol, not a trainer subclass.

The one training loop (`train/loop.py`) owns the schedule of steps, accumulation, clipping,
checkpoints, evaluation and logging; a method says how its records become units (an SFT example, a
preference pair), how units become a micro-batch, and how a micro-batch becomes a loss. Metrics are
returned as sums, so the loop can add them over micro-batches and processes before the method turns
them into means (`summarize`): every method averages the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from alignline.config import RunConfig
from alignline.data.packing import BatchPlan


@dataclass
class Prepared:
    train: list[Any]
    eval: list[Any]
    report: Any
    extra: dict = field(default_factory=dict)


class Method(Protocol):
    name: str
    model_kind: str
    """`causal_lm` or `reward` (a scalar-head sequence classifier)."""
    early_stopping: tuple[str, str]
    """(eval metric, 'min' | 'max') watched by training.early_stopping_patience."""

    def prepare(self, cfg: RunConfig, tokenizer, progress: bool) -> Prepared: ...

    def plan(self, units: list[Any], cfg: RunConfig, shuffle_seed: int | None) -> BatchPlan | None: ...

    def collate(self, units: list[Any], rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]: ...

    def count(self, batch: dict[str, torch.Tensor]) -> float:
        """What the step's loss is averaged over (target tokens, pairs), in this micro-batch."""
        ...

    def wrap(self, model, cfg: RunConfig) -> torch.nn.Module: ...

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor],
             normalizer: float) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of one micro-batch divided by `normalizer` (the whole step's count), and metric sums."""
        ...

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        """Summed metrics to logged values (means); must include `loss`."""
        ...
