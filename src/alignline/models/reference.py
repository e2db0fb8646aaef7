"""The frozen reference a method trains against (DPO, KTO, GRPO, PPO, episode GRPO, annotate's active sampling).

One rule for all of them: `ref_model` by path when given; with adapters, no second copy (the base with its adapters
switched off serves, and the wrappers holding a reference know it); otherwise, full fine-tuning, a frozen copy of
the starting policy.
"""

from __future__ import annotations

import copy

from torch import nn

from alignline.models.loading import load_model


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
