"""The one way to reach the transformers model under a peft wrapper (LoRA, prompt tuning, our bottleneck
adapters, which keep peft's `get_base_model`). Fast-path decisions, layer freezing and generation all
need the architecture's own module, not the wrapper."""

from __future__ import annotations

from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model
