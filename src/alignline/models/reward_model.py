"""The reward model's forward: a scalar head read at the last token of each packed sequence.

The model is a Hugging Face sequence classifier with one label (`score`, a bias-free linear layer on
the decoder's last hidden state), so `AutoModelForSequenceClassification` loads what we save. HF reads
the score at the last non-padding token; here sequences are packed, so we read it at each sequence's
last token directly (the same position: sequences end with no padding inside them). The decoder runs
through the same exact fast path as every other method (`logprob_model.decoder_hidden`).
"""

from __future__ import annotations

import torch
from torch import nn

from alignline.models.logprob_model import decoder_hidden, enable_fast_path


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class RewardModel(nn.Module):
    def __init__(self, model, fast: bool = True):
        super().__init__()
        self.model = model
        self.packed_attention = fast and enable_fast_path(model)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, last_index: torch.Tensor,
                **_: torch.Tensor) -> torch.Tensor:
        """(B, T) packed ids and positions, (S,) flat index of each sequence's last token -> (S,) rewards."""
        base = _base(self.model)
        decoder = getattr(base, base.base_model_prefix)
        hidden = decoder_hidden(base, decoder, input_ids, position_ids, self.packed_attention)
        last = hidden.reshape(-1, hidden.shape[-1])[last_index]  # (S, H)
        return base.score(last).squeeze(-1).float()
