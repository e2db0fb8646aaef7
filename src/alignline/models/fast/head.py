"""What a causal LM applies between its last hidden state and its logits, read off the model.

Most decoders end in `logits = lm_head(h)`, but not all: Cohere multiplies by `logit_scale`, Granite
divides by `config.logits_scaling`, Gemma 2 softcaps (`cap * tanh(logits / cap)`), Phi's head has a
bias. The fused head (`losses.token_logprobs`) applies exactly these; an output layer it cannot read
(not a plain `nn.Linear`, hooks on it, a trainable scale) gives a reason instead, and the log-probs then
come from the model's own full logits. Whether a class applies anything *else* is what the allow-list
in `models/fast/decision.py` and its one-batch self-check are for.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class OutputHead:
    """logits = softcap(scale * (h @ weight.T + bias)); softcap(z) = cap * tanh(z / cap) when set."""

    weight: torch.Tensor  # (V, H)
    bias: torch.Tensor | None  # (V,)
    scale: float
    softcap: float | None

    def describe(self) -> str:
        """The formula, as run.json records it: `logits = 1.5 tanh((h @ W^T) * 0.25 / 1.5)`."""
        expr = "h @ W^T" + (" + b" if self.bias is not None else "")
        if self.scale != 1.0:
            expr = f"({expr}) * {self.scale:g}"
        if self.softcap is not None:
            expr = f"{self.softcap:g} tanh({expr} / {self.softcap:g})"
        return f"logits = {expr}"


def output_head(base) -> OutputHead | str:
    """The output head of `base` (a transformers causal LM, unwrapped from peft), or why it cannot be read."""
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if head is None:
        return "the model has no output embeddings"
    if type(head) is not nn.Linear:  # a LoRA'd or wrapped head computes more than its weight says
        return f"the output layer is a {type(head).__name__}, not a plain Linear"
    if head._forward_hooks or head._forward_pre_hooks or "forward" in head.__dict__:
        return "the output layer has hooks or a replaced forward"
    config = base.config
    scale = 1.0
    logit_scale = getattr(base, "logit_scale", None)  # Cohere: logits * logit_scale
    if logit_scale is not None:
        if isinstance(logit_scale, torch.Tensor):
            if logit_scale.requires_grad or logit_scale.numel() != 1:
                return "the logit scale is a trained tensor"
            logit_scale = logit_scale.item()
        scale *= float(logit_scale)
    divisor = getattr(config, "logits_scaling", None)  # Granite: logits / logits_scaling
    if divisor is not None:
        scale /= float(divisor)
    softcap = getattr(config, "final_logit_softcapping", None)  # Gemma 2
    return OutputHead(head.weight, head.bias, scale, float(softcap) if softcap is not None else None)
