"""The one module every method calls: token ids in, log-probs of the target tokens out.

It wraps the (possibly PEFT-wrapped) causal LM so that `accelerate.prepare` wraps *this* module:
the forward then runs through DDP/FSDP as it must, while inside it we stop at the decoder's hidden
states and send only the positions that carry a target through the output layer
(`losses.token_logprobs`). Prompt and prefix tuning change the inputs inside peft's own forward, so
they take the plain path through full logits.

Three things make the fused path fast, all exact (checked against the plain path, `fast=False`):
packed rows attend per example (`models/packed_attention.py`), LoRA layers run as one autograd
function (`models/fast_lora.py`), and RMSNorm and SwiGLU keep less for backward
(`models/fused_layers.py`). The reward model's forward uses the same path (`decoder_hidden`).
"""

from __future__ import annotations

import torch
from torch import nn

from alignline.data.templates import IGNORE
from alignline.losses.token_logprobs import DEFAULT_CHUNK, token_logprobs, token_logprobs_reference
from alignline.models.fast_lora import install_fast_lora
from alignline.models.fused_layers import install_fused_layers
from alignline.models.packed_attention import (PACKED_ATTENTION, Segments, packed_attention_supported,
                                               use_attention)

def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class TokenLogprobModel(nn.Module):
    def __init__(self, model, virtual_tokens: bool = False, chunk_size: int = DEFAULT_CHUNK, fast: bool = True):
        super().__init__()
        self.model = model
        self.virtual_tokens = virtual_tokens
        self.chunk_size = chunk_size
        base = _base(model)
        head = base.get_output_embeddings()
        softcap = getattr(base.config, "final_logit_softcapping", None)
        # The fused path assumes logits = h @ W^T exactly; anything else takes the plain path.
        self.fused = not virtual_tokens and getattr(head, "bias", None) is None and softcap is None
        self.packed_attention = self.fused and fast and enable_fast_path(model)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, targets: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids, positions and targets -> (N,) float32 log-probs of the N targets != IGNORE,
        in row-major order."""
        keep = targets != IGNORE  # (B, T)
        if self.fused:
            base = _base(self.model)
            hidden = decoder_hidden(base, base.get_decoder(), input_ids, position_ids, self.packed_attention)
            return token_logprobs(hidden[keep], base.get_output_embeddings().weight, targets[keep],
                                  self.chunk_size)
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        logits = logits[:, -input_ids.shape[1]:]  # prompt tuning prepends virtual-token positions
        return token_logprobs_reference(logits[keep], targets[keep])


def enable_fast_path(model) -> bool:
    """Install the fast LoRA and fused layers on `model`; True where per-example packed attention applies."""
    install_fast_lora(model)
    install_fused_layers(model)
    return packed_attention_supported(_base(model).config)


def decoder_hidden(base, decoder, input_ids: torch.Tensor, position_ids: torch.Tensor,
                   packed_attention: bool) -> torch.Tensor:
    """(B, T) packed ids and positions -> (B, T, H) last hidden states, attention kept inside each example."""
    # Gradient checkpointing re-runs layers in backward, outside this call: keep the standard mask then.
    if packed_attention and not _checkpointing(base):
        with use_attention(base.config, PACKED_ATTENTION):
            return decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False,
                           alignline_segments=Segments.from_positions(position_ids)).last_hidden_state
    return decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False).last_hidden_state


def _checkpointing(model) -> bool:
    # transformers 5 renamed the flag (the old name warns); older versions have only the old one.
    flag = getattr(model, "is_activation_checkpointing", None)
    return bool(flag if flag is not None else getattr(model, "is_gradient_checkpointing", False))
