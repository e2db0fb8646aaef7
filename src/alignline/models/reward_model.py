"""The reward model's forward: a scalar head read at the last token of each packed sequence.

The model is a Hugging Face sequence classifier with one label (`score`, a bias-free linear layer on
the decoder's last hidden state), so `AutoModelForSequenceClassification` loads what we save. HF reads
the score at the last non-padding token; here sequences are packed, so we read it at each sequence's
last token directly (the same position: sequences end with no padding inside them). On the fast path
the decoder runs as every other method's does (`logprob_model.decoder_hidden`) and only the last
tokens go through `score`; on the plain path the model's own forward runs and its per-token scores are
caught on their way into its pooling (every transformers classifier pools by picking the last non-pad
token, the one the collator already names in `last_index`). `models/fast/decision.py` decides which, once.
"""

from __future__ import annotations

import torch
from torch import nn

from alignline.models.fast.decision import FastPath, Mode, choose_fast_path, unwrap
from alignline.models.logprob_model import decoder_hidden


class RewardModel(nn.Module):
    def __init__(self, model, fast: Mode | bool = "auto"):
        super().__init__()
        self.model = model
        self.fast_path = choose_fast_path(model, fast, "reward")

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, last_index: torch.Tensor,
                **_: torch.Tensor) -> torch.Tensor:
        """(B, T) packed ids and positions, (S,) flat index of each sequence's last token -> (S,) rewards."""
        return reward_forward(self.model, self.fast_path, input_ids, position_ids, last_index)


def reward_forward(model, fast_path: FastPath, input_ids: torch.Tensor, position_ids: torch.Tensor,
                   last_index: torch.Tensor) -> torch.Tensor:
    """`RewardModel.forward` under a given decision (the self-check calls it too)."""
    base = unwrap(model)
    if fast_path.fused_head:
        decoder = getattr(base, base.base_model_prefix)
        hidden = decoder_hidden(base, decoder, input_ids, position_ids, fast_path.packed_attention)
        last = hidden.reshape(-1, hidden.shape[-1])[last_index]  # (S, H)
        return base.score(last).squeeze(-1).float()
    caught: list[torch.Tensor] = []
    hook = base.score.register_forward_hook(lambda module, args, out: caught.append(out))
    try:
        # Without a pad id transformers pools only batches of one: then go a row at a time.
        rows = [input_ids] if base.config.pad_token_id is not None else input_ids.split(1)
        positions = [position_ids] if len(rows) == 1 else position_ids.split(1)
        for ids, pos in zip(rows, positions):
            model(input_ids=ids, position_ids=pos, use_cache=False)
    finally:
        hook.remove()
    scores = torch.cat(caught)  # (B, T, 1), before the model's own pooling
    return scores.reshape(-1, scores.shape[-1])[last_index, 0].float()


def last_non_pad(input_ids: torch.Tensor, last_index: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Step each sequence's last position back over trailing pad-id tokens (HF pools there)."""
    flat, index = input_ids.reshape(-1), last_index.clone()
    while True:
        on_pad = flat[index] == pad_id
        if not on_pad.any():
            return index
        index[on_pad] -= 1
