"""Rows and micro-batches: sequence packing, length grouping, and the deterministic batch plan.

Packing puts several examples in one row of `max_length` tokens (best-fit decreasing, so little is
left as padding). Each example's position ids start again at 0; transformers turns restarting
position ids (with no 2D attention mask) into a block-diagonal causal mask, so attention stays
inside each example, and targets were shifted per example, so no example predicts another's tokens.

Without packing, batches are grouped by length (sorted inside shuffled mega-batches) to waste little
on padding. Rows are right-padded; causal attention means real tokens never see the padding.

The plan is a pure function of (seed, epoch), so resuming at micro-batch k replays exactly the data
an uninterrupted run would have seen.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

import torch

from alignline.data.templates import IGNORE, Example

Row = list[int]  # indices of the examples in one row


def pack_rows(lengths: list[int], max_length: int) -> list[Row]:
    """Best-fit decreasing: each example (longest first) goes in the fullest row it still fits."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[Row] = []
    free_keys: list[tuple[int, int]] = []  # sorted (free space, row index)
    for i in order:
        need = lengths[i]
        pos = bisect.bisect_left(free_keys, (need, -1))
        if pos < len(free_keys):
            free, row = free_keys.pop(pos)
            rows[row].append(i)
            bisect.insort(free_keys, (free - need, row))
        else:
            rows.append([i])
            bisect.insort(free_keys, (max_length - need, len(rows) - 1))
    return rows


def single_rows(n: int) -> list[Row]:
    return [[i] for i in range(n)]


@dataclass
class BatchPlan:
    """Which rows form micro-batch k, for any k, reproducibly."""

    rows: list[Row]
    lengths: list[int]
    batch_size: int
    seed: int
    group_by_length: bool = False
    shuffle: bool = True
    """Evaluation plans keep the file's order."""

    @property
    def batches_per_epoch(self) -> int:
        return max(1, -(-len(self.rows) // self.batch_size))

    def epoch(self, epoch: int) -> list[list[Row]]:
        rng = random.Random(self.seed * 100_003 + epoch)
        order = list(range(len(self.rows)))
        if self.shuffle:
            rng.shuffle(order)
        if self.group_by_length:
            row_len = [sum(self.lengths[i] for i in r) for r in self.rows]
            mega = self.batch_size * 50
            order = [
                i for s in range(0, len(order), mega) for i in sorted(order[s : s + mega], key=lambda j: -row_len[j])
            ]
        batches = [
            [self.rows[j] for j in order[s : s + self.batch_size]] for s in range(0, len(order), self.batch_size)
        ]
        if self.group_by_length and self.shuffle:
            rng.shuffle(batches)
        return batches

    def batch(self, k: int) -> list[Row]:
        """Micro-batch k of the endless stream of epochs."""
        epoch, index = divmod(k, self.batches_per_epoch)
        if getattr(self, "_cached_epoch", None) != epoch:
            self._cached, self._cached_epoch = self.epoch(epoch), epoch
        return self._cached[index]


def collate(examples: list[Example], rows: list[Row], pad_id: int) -> dict[str, torch.Tensor]:
    """Rows of examples to tensors: `input_ids`, `position_ids`, `targets` (B, T); T is the longest row."""
    flat_ids, flat_pos, flat_tgt = [], [], []
    for row in rows:
        ids, pos, tgt = [], [], []
        for i in row:
            ex = examples[i]
            ids += ex.input_ids
            pos += range(len(ex.input_ids))
            tgt += ex.targets
        flat_ids.append(ids)
        flat_pos.append(pos)
        flat_tgt.append(tgt)
    width = max(len(r) for r in flat_ids)
    for ids, pos, tgt in zip(flat_ids, flat_pos, flat_tgt):
        pad = width - len(ids)
        # Padding continues the last example's positions: no restart, so it opens no new block.
        start = pos[-1] + 1 if pos else 0
        ids += [pad_id] * pad
        pos += range(start, start + pad)
        tgt += [IGNORE] * pad
    return {
        "input_ids": torch.tensor(flat_ids, dtype=torch.long),
        "position_ids": torch.tensor(flat_pos, dtype=torch.long),
        "targets": torch.tensor(flat_tgt, dtype=torch.long),
    }


def collate_sequences(sequences: list[Example], max_length: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Many short sequences (the two sides of preference pairs) packed into as few rows as fit.

    Besides `collate`'s tensors: `target_segment` (N,), the sequence index of each target in
    row-major order (for per-sequence log-prob sums), and `last_index` (S,), the flat position of
    each sequence's last token (where a reward head reads).
    """
    lengths = [len(s.input_ids) for s in sequences]
    rows = pack_rows(lengths, max(max_length, max(lengths)))
    batch = collate(sequences, rows, pad_id)
    width = batch["input_ids"].shape[1]
    segment = torch.full_like(batch["input_ids"], -1)
    last_index = torch.empty(len(sequences), dtype=torch.long)
    row_lengths = []
    for r, row in enumerate(rows):
        offset = 0
        for i in row:
            segment[r, offset : offset + lengths[i]] = i
            last_index[i] = r * width + offset + lengths[i] - 1
            offset += lengths[i]
        row_lengths.append(offset)
    batch["target_segment"] = segment[batch["targets"] != IGNORE]
    batch["last_index"] = last_index
    batch["attention_mask"] = torch.arange(width)[None, :] < torch.tensor(row_lengths)[:, None]
    return batch
