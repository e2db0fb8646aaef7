"""The forwards of `TokenLogprobModel` and `RewardModel` under a given `FastPath` decision.

On the fast path the decoder runs alone (`decoder_hidden`, packed rows attending per example) and only
the positions that matter go through the output layer: the targets through the LM head, applying what
the architecture applies there (`head.py`: Cohere's scale, Granite's divisor, Gemma 2's softcap, Phi's
bias; `losses.token_logprobs`), or each sequence's last token through the reward model's `score`. On the
plain path the model's own forward runs. The wrappers in `models/logprob_model.py` and
`models/reward_model.py` call these, and so does the self-check (`self_check.py`), which compares them
against the model's own forward before the decision is made: hence they live here, below the decision.
"""

from __future__ import annotations

import torch

from alignline.data.templates import IGNORE
from alignline.losses.token_logprobs import DEFAULT_CHUNK, token_logprobs, token_logprobs_reference
from alignline.models.fast.head import output_head
from alignline.models.fast.packed_attention import PACKED_ATTENTION, Segments, use_attention
from alignline.models.fast.path import FastPath
from alignline.models.peft_unwrap import unwrap


def logprob_forward(
    model,
    fast_path: FastPath,
    input_ids: torch.Tensor,
    position_ids: torch.Tensor,
    targets: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    virtual_tokens: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """(B, T) ids, positions and targets -> (N,) float32 log-probs of the N targets != IGNORE, row-major."""
    keep = targets != IGNORE  # (B, T)
    if fast_path.fused_head:
        base = unwrap(model)
        head = output_head(base)  # read at every call: FSDP and device moves may swap the tensors
        if not isinstance(head, str):
            hidden = decoder_hidden(base, base.get_decoder(), input_ids, position_ids, fast_path.packed_attention)
            return token_logprobs(
                hidden[keep], head.weight, targets[keep], chunk_size, head.bias, head.scale, head.softcap
            )
    if virtual_tokens:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        logits = logits[:, -input_ids.shape[1] :]  # prompt tuning prepends virtual-token positions
    else:
        # Position ids and no mask: transformers then attends within each packed example.
        logits = model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits
    return token_logprobs_reference(logits[keep], targets[keep])


def reward_forward(
    model, fast_path: FastPath, input_ids: torch.Tensor, position_ids: torch.Tensor, last_index: torch.Tensor
) -> torch.Tensor:
    """(B, T) packed ids and positions, (S,) flat index of each sequence's last token -> (S,) rewards."""
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


def decoder_hidden(
    base, decoder, input_ids: torch.Tensor, position_ids: torch.Tensor, packed_attention: bool
) -> torch.Tensor:
    """(B, T) packed ids and positions -> (B, T, H) last hidden states, attention kept inside each example."""
    # Gradient checkpointing re-runs layers in backward, outside this call: keep the standard mask then.
    if packed_attention and not _checkpointing(base):
        with use_attention(base.config, PACKED_ATTENTION):
            return decoder(
                input_ids=input_ids,
                position_ids=position_ids,
                use_cache=False,
                alignline_segments=Segments.from_positions(position_ids),
            ).last_hidden_state
    return decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False).last_hidden_state


def _checkpointing(model) -> bool:
    # transformers 5 renamed the flag (the old name warns); older versions have only the old one.
    flag = getattr(model, "is_activation_checkpointing", None)
    return bool(flag if flag is not None else getattr(model, "is_gradient_checkpointing", False))
