"""What a method is: a small Protocol, not a trainer subclass.

The one training loop (`train/loop.py`) owns batching, accumulation, clipping, checkpoints and
logging; a method only says which records it takes and how a micro-batch becomes a loss.
"""

from __future__ import annotations

from typing import Protocol

import torch


class Method(Protocol):
    name: str
    formats: tuple[str, ...] | None
    """Sample formats accepted (`chat`, `prompt_completion`, `text`); None: all."""
    split_long: bool
    """Cut long samples into max_length windows (pretraining) instead of truncating them."""

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor],
             normalizer: float) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of one micro-batch, already divided by `normalizer` (the step's target count, so that
        accumulated micro-batches add up to the mean over the whole step), and additive metrics."""
        ...
