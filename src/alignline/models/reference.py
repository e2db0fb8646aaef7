"""The frozen reference a method trains against (DPO, KTO, GRPO, PPO, episode GRPO, annotate's active sampling), and
`DPOModel`, the policy beside its reference giving sequence log-probs of both (DPO, KTO, annotate).

One rule for all of them: `ref_model` by path when given; with adapters, no second copy (the base with its adapters
switched off serves, and the wrappers holding a reference know it); otherwise, full fine-tuning, a frozen copy of
the starting policy.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from alignline.models.loading import load_model
from alignline.models.logprob_model import TokenLogprobModel


def frozen_reference(model, ref_model: str | None, dtype: str) -> nn.Module | None:
    """The reference a `DPOModel` holds: `ref_model` loaded by path; None with adapters (the base with them switched
    off serves); otherwise, full fine-tuning, a frozen copy of the starting policy."""
    reference = None
    if ref_model:
        reference = load_model(ref_model, dtype)
    elif not hasattr(model, "disable_adapter"):
        reference = copy.deepcopy(model)
    if reference is not None:
        reference.requires_grad_(False).eval()
    return reference


class DPOModel(nn.Module):
    """Policy log-probs with gradient, reference log-probs without; per sequence."""

    def __init__(self, model, reference: nn.Module | None, reference_free: bool, fast: str = "auto"):
        super().__init__()
        self.model = model
        self.policy = TokenLogprobModel(model, fast=fast)
        # Kept out of the module tree: no gradients, not in checkpoints, not wrapped by DDP/FSDP.
        self._reference = [TokenLogprobModel(reference, fast=fast)] if reference is not None else []
        self.reference_free = reference_free

    def sequence_logps(self, module: nn.Module, batch: dict) -> torch.Tensor:
        logps = module(batch["input_ids"], batch["position_ids"], batch["targets"])
        return per_sequence_sums(logps, batch["target_segment"], batch["last_index"].numel())

    def has_reference(self) -> bool:
        return bool(self._reference) or hasattr(self.model, "disable_adapter")

    def drop_reference_copy(self) -> None:
        self._reference.clear()

    @torch.no_grad()
    def reference_logps(self, batch: dict) -> torch.Tensor:
        if self._reference:
            return self.sequence_logps(self._reference[0], batch)
        with self.model.disable_adapter():
            return self.sequence_logps(self.policy, batch)

    def forward(self, **batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """-> policy (S,), reference (S,) or None, target counts (S,); S = 2 x pairs, chosen first."""
        policy = self.sequence_logps(self.policy, batch)
        counts = per_sequence_sums(
            torch.ones_like(batch["target_segment"], dtype=torch.float32),
            batch["target_segment"],
            batch["last_index"].numel(),
        )
        if self.reference_free:
            return policy, None, counts
        ref = batch["ref_logps"] if "ref_logps" in batch else self.reference_logps(batch)
        return policy, ref, counts


def per_sequence_sums(values: torch.Tensor, segment: torch.Tensor, n_sequences: int) -> torch.Tensor:
    """(N,) per-target values summed per sequence -> (S,)."""
    return torch.zeros(n_sequences, dtype=values.dtype, device=values.device).index_add_(0, segment, values)
