"""The one module every method calls: token ids in, log-probs of the target tokens out.

It wraps the (possibly PEFT-wrapped) causal LM so that `accelerate.prepare` wraps *this* module:
the forward then runs through DDP/FSDP as it must. The forward itself is `models/fast/forward.py`'s
`logprob_forward`, under the decision kept here. On the fast path it stops at the decoder's hidden
states and sends only the positions that carry a target through the output layer, applying what the
architecture applies there (`models/fast/head.py`: Cohere's scale, Granite's divisor, Gemma 2's
softcap, Phi's bias; `losses.token_logprobs`). On the plain path the log-probs come from the model's
own forward and its full logits (prompt and prefix tuning change the inputs inside peft's own forward,
so they always take it).

Which parts of the fast path are on is decided once, in `models/fast/decision.py`, and kept in
`self.fast_path`: packed rows attend per example (`models/fast/packed_attention.py`), LoRA layers run
as one autograd function (`models/fast/fast_lora.py`), RMSNorm and SwiGLU keep less for backward
(`models/fast/fused_layers.py`). The reward model's forward uses the same path (`forward.decoder_hidden`).
"""

from __future__ import annotations

import torch
from torch import nn

from alignline.losses.token_logprobs import DEFAULT_CHUNK
from alignline.models.fast.decision import Mode, choose_fast_path, prompt_learning
from alignline.models.fast.forward import logprob_forward


class TokenLogprobModel(nn.Module):
    def __init__(
        self, model, virtual_tokens: bool = False, chunk_size: int = DEFAULT_CHUNK, fast: Mode | bool = "auto"
    ):
        """`fast`: "auto" (or True) decides the fast path (`choose_fast_path`); "off" (or False) is the
        model's own forward throughout (`training.fast_path`)."""
        super().__init__()
        self.model = model
        self.virtual_tokens = virtual_tokens or prompt_learning(model)
        self.chunk_size = chunk_size
        self.fast_path = choose_fast_path(model, fast, "causal_lm", self.virtual_tokens)

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        targets: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T) ids, positions and targets -> (N,) float32 log-probs of the N targets != IGNORE,
        in row-major order."""
        return logprob_forward(
            self.model,
            self.fast_path,
            input_ids,
            position_ids,
            targets,
            attention_mask,
            self.virtual_tokens,
            self.chunk_size,
        )
