"""Supervised and instruction fine-tuning: next-token loss on the assistant's turns (or completions).

Token-level averaging over the whole optimizer step (all micro-batches, all processes): every
trained token weighs the same, so batch 8 x accumulation 1 equals batch 1 x accumulation 8, and long
answers are not down-weighted against short ones as a per-sequence mean would do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def causal_lm_loss(logps: torch.Tensor, normalizer: float) -> torch.Tensor:
    """Summed negative log-likelihood of the targets over `normalizer`. logps: (N,)."""
    return -logps.sum() / normalizer


@dataclass(frozen=True)
class SFT:
    name: str = "sft"
    formats: tuple[str, ...] | None = None
    split_long: bool = False

    def loss(self, model, batch, normalizer):
        logps = model(**batch)
        loss = causal_lm_loss(logps, normalizer)
        return loss, {"nll_sum": float(-logps.detach().sum()), "targets": float(logps.numel())}
