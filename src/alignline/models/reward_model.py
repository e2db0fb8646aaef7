"""The reward model's forward: a scalar head read at the last token of each packed sequence.

The model is a Hugging Face sequence classifier with one label (`score`, a bias-free linear layer on
the decoder's last hidden state), so `AutoModelForSequenceClassification` loads what we save. HF reads
the score at the last non-padding token; here sequences are packed, so we read it at each sequence's
last token directly (the same position: sequences end with no padding inside them). On the fast path
the decoder runs as every other method's does (`models/fast/forward.py`'s `reward_forward`) and only
the last tokens go through `score`; on the plain path the model's own forward runs and its per-token scores are
caught on their way into its pooling (every transformers classifier pools by picking the last non-pad
token, the one the collator already names in `last_index`). `models/fast/decision.py` decides which, once.
"""

from __future__ import annotations

import torch
from torch import nn

from alignline.models.fast.decision import Mode, choose_fast_path
from alignline.models.fast.forward import reward_forward


class RewardModel(nn.Module):
    def __init__(self, model, fast: Mode | bool = "auto"):
        super().__init__()
        self.model = model
        self.fast_path = choose_fast_path(model, fast, "reward")

    def forward(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor, last_index: torch.Tensor, **_: torch.Tensor
    ) -> torch.Tensor:
        """(B, T) packed ids and positions, (S,) flat index of each sequence's last token -> (S,) rewards."""
        return reward_forward(self.model, self.fast_path, input_ids, position_ids, last_index)


def last_non_pad(input_ids: torch.Tensor, last_index: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Step each sequence's last position back over trailing pad-id tokens (HF pools there)."""
    flat, index = input_ids.reshape(-1), last_index.clone()
    while True:
        on_pad = flat[index] == pad_id
        if not on_pad.any():
            return index
        index[on_pad] -= 1
