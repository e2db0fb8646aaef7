"""Packed rows, attended per example: examples gathered into buckets of similar length, each bucket
plain causal SDPA, so attention costs sum(len^2) instead of T^2 per row and needs no mask.

transformers turns restarting position ids into a (B, 1, T, T) block-diagonal mask, and SDPA then
computes every query against every key of the row and masks afterwards: on a CPU that was a fifth
of an SFT step. This module registers an attention implementation ("alignline_packed") that
`TokenLogprobModel` switches on for its own forward only, when `models/fast/decision.py` turned it on.
Exact: same math as the masked path.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass

import torch

PACKED_ATTENTION = "alignline_packed"
BUCKET = 64  # examples are padded to a multiple of this in their bucket; flash kernels work in blocks of it
QUERY_BLOCK = 128  # CPU: causal attention over longer sequences goes this many queries at a time


@dataclass
class Segments:
    """Where each example of a (B, T) batch lies, and how to gather them into buckets of padded length.

    `buckets[i] = (P, index)`: `index` (n*P,) picks, from the flattened (B*T) tokens, n examples padded
    to P; padding slots repeat the example's last token (they come after it, so causal attention keeps
    real queries from seeing them, and their outputs are dropped). `unpack` (B*T,) gives, for each
    token, its row in the concatenated bucket outputs. `whole_rows`: every row is one sequence.
    """

    buckets: list[tuple[int, torch.Tensor]]
    unpack: torch.Tensor | None
    whole_rows: bool

    @staticmethod
    def from_positions(position_ids: torch.Tensor) -> Segments:
        b, t = position_ids.shape
        flat = position_ids.reshape(-1)
        starts = torch.ones(b * t, dtype=torch.bool, device=flat.device)
        # A new example starts where positions do not continue by one (as transformers detects packing).
        starts[1:] = flat[1:] != flat[:-1] + 1
        starts[::t] = True
        begin = starts.nonzero().squeeze(1).tolist()
        if len(begin) == b:
            return Segments([], None, True)
        lengths = [e - s for s, e in zip(begin, begin[1:] + [b * t])]
        groups: dict[int, list[tuple[int, int]]] = {}
        for s, n in zip(begin, lengths):
            groups.setdefault(-(-n // BUCKET) * BUCKET, []).append((s, n))
        buckets, unpack, offset = [], torch.empty(b * t, dtype=torch.long), 0
        for width, items in sorted(groups.items()):
            slot = torch.arange(width)
            index = torch.cat([s + slot.clamp(max=n - 1) for s, n in items])
            for k, (s, n) in enumerate(items):
                unpack[s : s + n] = torch.arange(offset + k * width, offset + k * width + n)
            buckets.append((width, index.to(flat.device)))
            offset += len(items) * width
        return Segments(buckets, unpack.to(flat.device), False)


def packed_attention_forward(
    module,
    query,
    key,
    value,
    attention_mask,
    scaling=None,
    dropout: float = 0.0,
    alignline_segments: Segments | None = None,
    **kwargs,
):
    """transformers attention interface: (B, H, T, D) query, (B, Hkv, T, D) key/value -> (B, T, H, D)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    segments = alignline_segments
    if segments is None:  # not called through TokenLogprobModel: behave as SDPA does
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    if segments.whole_rows:
        return _causal(query, key, value, scaling, dropout).transpose(1, 2).contiguous(), None
    b, h, t, d = query.shape
    hk = key.shape[1]
    # (B*T, H*D) views: the projections are laid out token-major, so these are usually free.
    q, k, v = (x.transpose(1, 2).reshape(b * t, -1) for x in (query, key, value))
    outs = []
    for width, index in segments.buckets:
        n = index.numel() // width
        qb = q.index_select(0, index).view(n, width, h, d).transpose(1, 2)
        kb = k.index_select(0, index).view(n, width, hk, d).transpose(1, 2)
        vb = v.index_select(0, index).view(n, width, hk, d).transpose(1, 2)
        outs.append(_causal(qb, kb, vb, scaling, dropout).transpose(1, 2).reshape(n * width, h * d))
    out = torch.cat(outs).index_select(0, segments.unpack)
    return out.view(b, t, h, d), None


def _causal(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale, dropout: float) -> torch.Tensor:
    """Causal SDPA from position 0. On a CPU, long sequences go a block of queries at a time, each
    against only the keys up to its own end: the CPU flash kernel works on whole key blocks of up to 512
    and gains little from `is_causal`, so this skips the upper triangle it would otherwise compute
    (about a quarter less attention work at 512 tokens)."""
    sdpa = torch.nn.functional.scaled_dot_product_attention
    gqa = q.shape[1] != k.shape[1]
    length = q.shape[2]
    if q.device.type != "cpu" or length <= QUERY_BLOCK:
        return sdpa(q, k, v, is_causal=True, scale=scale, dropout_p=dropout, enable_gqa=gqa)
    outs = []
    for start in range(0, length, QUERY_BLOCK):
        end = min(start + QUERY_BLOCK, length)
        mask = None if start == 0 else _prefix_causal_mask(start, end, q.device)
        outs.append(
            sdpa(
                q[:, :, start:end],
                k[:, :, :end],
                v[:, :, :end],
                attn_mask=mask,
                is_causal=mask is None,
                scale=scale,
                dropout_p=dropout,
                enable_gqa=gqa,
            )
        )
    return torch.cat(outs, dim=2)


@functools.lru_cache(maxsize=64)
def _prefix_causal_mask(start: int, end: int, device: torch.device) -> torch.Tensor:
    """(end - start, end) boolean: queries start..end-1 see every earlier key and themselves."""
    return torch.ones(end - start, end, dtype=torch.bool, device=device).tril(diagonal=start)


def packed_attention_unsupported(config) -> str | None:
    """Why per-example attention does not apply to this model (None: it does). Only where the model would
    run SDPA over full causal attention anyway."""
    implementation = getattr(config, "_attn_implementation", None)
    if implementation != "sdpa":
        # eager keeps its weights; flash-attention kernels already take packed rows natively
        return f"attention implementation is {implementation!r}, not 'sdpa'"
    if getattr(config, "sub_configs", None):
        return "a composite config (vision or audio towers)"
    if getattr(config, "sliding_window", None) is not None and getattr(config, "use_sliding_window", True):
        return "sliding-window attention"
    if getattr(config, "layer_types", None) and any(kind != "full_attention" for kind in config.layer_types):
        return "layers other than full attention"
    if getattr(config, "attn_logit_softcapping", None) is not None:
        return "attention logit softcapping"
    return None


def register_packed_attention() -> None:
    """Make `PACKED_ATTENTION` a name transformers' attention registries know (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(PACKED_ATTENTION, packed_attention_forward)
    # The standard mask is still built (a few ms): a model that does not pass our keyword on to its
    # attention layers then falls back to SDPA with the right block-diagonal mask instead of none.
    AttentionMaskInterface.register(PACKED_ATTENTION, sdpa_mask)


@contextmanager
def use_attention(config, name: str):
    """Switch the model to another registered attention for one forward."""
    before = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = before
