"""The one module every method calls: token ids in, log-probs of the target tokens out.

It wraps the (possibly PEFT-wrapped) causal LM so that `accelerate.prepare` wraps *this* module:
the forward then runs through DDP/FSDP as it must. On the fast path it stops at the decoder's hidden
states and sends only the positions that carry a target through the output layer, applying what the
architecture applies there (`models/fast/head.py`: Cohere's scale, Granite's divisor, Gemma 2's
softcap, Phi's bias; `losses.token_logprobs`). On the plain path the log-probs come from the model's
own forward and its full logits (prompt and prefix tuning change the inputs inside peft's own forward,
so they always take it).

Which parts of the fast path are on is decided once, in `models/fast/decision.py`, and kept in
`self.fast_path`: packed rows attend per example (`models/fast/packed_attention.py`), LoRA layers run
as one autograd function (`models/fast/fast_lora.py`), RMSNorm and SwiGLU keep less for backward
(`models/fast/fused_layers.py`). The reward model's forward uses the same path (`decoder_hidden`).
"""

from __future__ import annotations

import torch
from torch import nn

from alignline.data.templates import IGNORE
from alignline.losses.token_logprobs import DEFAULT_CHUNK, token_logprobs, token_logprobs_reference
from alignline.models.fast.decision import FastPath, Mode, choose_fast_path, prompt_learning, unwrap
from alignline.models.fast.head import output_head
from alignline.models.fast.packed_attention import PACKED_ATTENTION, Segments, use_attention


class TokenLogprobModel(nn.Module):
    def __init__(self, model, virtual_tokens: bool = False, chunk_size: int = DEFAULT_CHUNK,
                 fast: Mode | bool = "auto"):
        """`fast`: "auto" (or True) decides the fast path (`choose_fast_path`); "off" (or False) is the
        model's own forward throughout (`training.fast_path`)."""
        super().__init__()
        self.model = model
        self.virtual_tokens = virtual_tokens or prompt_learning(model)
        self.chunk_size = chunk_size
        self.fast_path = choose_fast_path(model, fast, "causal_lm", self.virtual_tokens)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, targets: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids, positions and targets -> (N,) float32 log-probs of the N targets != IGNORE,
        in row-major order."""
        return logprob_forward(self.model, self.fast_path, input_ids, position_ids, targets, attention_mask,
                               self.virtual_tokens, self.chunk_size)


def logprob_forward(model, fast_path: FastPath, input_ids: torch.Tensor, position_ids: torch.Tensor,
                    targets: torch.Tensor, attention_mask: torch.Tensor | None = None, virtual_tokens: bool = False,
                    chunk_size: int = DEFAULT_CHUNK) -> torch.Tensor:
    """`TokenLogprobModel.forward` under a given decision (the self-check calls it too)."""
    keep = targets != IGNORE  # (B, T)
    if fast_path.fused_head:
        base = unwrap(model)
        head = output_head(base)  # read at every call: FSDP and device moves may swap the tensors
        if not isinstance(head, str):
            hidden = decoder_hidden(base, base.get_decoder(), input_ids, position_ids, fast_path.packed_attention)
            return token_logprobs(hidden[keep], head.weight, targets[keep], chunk_size, head.bias, head.scale,
                                  head.softcap)
    if virtual_tokens:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        logits = logits[:, -input_ids.shape[1]:]  # prompt tuning prepends virtual-token positions
    else:
        # Position ids and no mask: transformers then attends within each packed example.
        logits = model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits
    return token_logprobs_reference(logits[keep], targets[keep])


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
