"""What preference methods (reward models, the DPO family) share: pairs in, packed sequences out.

A micro-batch is `batch_size` pairs. Their 2B sequences (chosen at 2i, rejected at 2i+1) are packed
into as few rows as fit, so chosen and rejected go through one forward pass with no padding to the
longest answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from alignline.data.dataset import DataReportBase, load_split, settle_record_reasoning
from alignline.data.packing import BatchPlan, collate_sequences, single_rows
from alignline.data.preference import PairExample, load_pairs, tokenize_pair
from alignline.errors import DataError
from alignline.methods.base import Prepared


@dataclass
class PairReport(DataReportBase):
    """Preference pairs (`dropped`: pairs whose prompt alone fills max_length; `truncated`: answers cut)."""

    unit: ClassVar[str] = "pairs"
    json_names: ClassVar[dict[str, str]] = {"dropped": "dropped_pairs", "truncated": "truncated_sequences"}


def prepare_pairs(cfg, tokenizer) -> Prepared:
    data, t = cfg.data, cfg.training
    report = PairReport()
    train_pairs, held = load_split(cfg, load_pairs, report.sources)
    settle_record_reasoning(tokenizer, train_pairs + held, data.reasoning)

    def tokenize(pairs):
        out = []
        for pair in pairs:
            ex = tokenize_pair(tokenizer, pair, t.max_length)
            if ex is None:
                report.dropped += 1
                continue
            report.truncated += (ex.chosen.truncated > 0) + (ex.rejected.truncated > 0)
            out.append(ex)
        return out

    train, evals = tokenize(train_pairs), tokenize(held)
    if not train:
        raise DataError(data.train[0].path, f"no pair has a completion token left within max_length {t.max_length}")
    report.train_units, report.eval_units = len(train), len(evals)
    report.train_tokens = sum(len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in train)
    return Prepared(train, evals, report)


def pair_plan(units: list[PairExample], training, shuffle_seed: int | None) -> BatchPlan | None:
    if not units:
        return None
    lengths = [len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in units]
    return BatchPlan(
        single_rows(len(units)), lengths, training.batch_size, seed=shuffle_seed or 0, shuffle=shuffle_seed is not None
    )


def collate_pairs(
    units: list[PairExample], rows: list[list[int]], pad_id: int, max_length: int, use_weights: bool
) -> dict[str, torch.Tensor]:
    pairs = [units[i] for row in rows for i in row]
    sequences = [seq for p in pairs for seq in (p.chosen, p.rejected)]
    batch = collate_sequences(sequences, max_length, pad_id)
    batch["pair_weight"] = torch.tensor([p.weight if use_weights else 1.0 for p in pairs], dtype=torch.float32)
    batch["pair_margin"] = torch.tensor([p.margin for p in pairs], dtype=torch.float32)
    if all(p.ref is not None for p in pairs):
        batch["ref_logps"] = torch.tensor([v for p in pairs for v in p.ref], dtype=torch.float32)
    return batch


class PairData:
    """The data side every pairwise method shares (reward models, the DPO family): pairs read and
    tokenized, one pair per planned unit, the step averaged over pair weights. A one-level mixin for
    method dataclasses holding `_cfg`; the loss stays in each method."""

    def prepare(self, cfg, tokenizer, progress) -> Prepared:
        return prepare_pairs(cfg, tokenizer)

    def plan(self, units, cfg, shuffle_seed) -> BatchPlan | None:
        return pair_plan(units, cfg.training, shuffle_seed)

    def count(self, batch) -> float:
        return float(batch["pair_weight"].sum())


def summarize_pairs(sums: dict[str, float]) -> dict[str, float]:
    """Pair-metric sums -> logged means: loss (pair-weighted), accuracy (ties count half), and the mean of
    every other `<name>_sum` per pair."""
    pairs = max(sums.get("pairs", 0.0), 1.0)
    out = {
        "loss": sums.get("loss_sum", 0.0) / max(sums.get("weight_sum", 0.0), 1e-12),
        "accuracy": sums.get("correct", 0.0) / pairs,
    }
    for key, value in sums.items():
        if key.endswith("_sum") and key not in ("loss_sum", "weight_sum"):
            out[key.removesuffix("_sum")] = value / pairs
    return out
