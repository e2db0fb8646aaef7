"""What preference methods (reward models, the DPO family) share: pairs in, packed sequences out.

A micro-batch is `batch_size` pairs. Their 2B sequences (chosen at 2i, rejected at 2i+1) are packed
into as few rows as fit, so chosen and rejected go through one forward pass with no padding to the
longest answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from alignline.data.dataset import mix, settle_record_reasoning, split_off
from alignline.data.packing import BatchPlan, collate_sequences, single_rows
from alignline.data.preference import PairExample, load_pairs, tokenize_pair
from alignline.data.sources import file_sha256
from alignline.errors import DataError
from alignline.methods.base import Prepared


@dataclass
class PairReport:
    sources: list[dict] = field(default_factory=list)
    train_pairs: int = 0
    eval_pairs: int = 0
    dropped_pairs: int = 0
    """Pairs whose prompt alone fills max_length."""
    truncated_sequences: int = 0
    train_tokens: int = 0


def load_split(cfg, load: Callable[..., list], sources: list[dict], unit: str = "pairs") -> tuple[list, list]:
    """Every training source read with `load(path, split, columns)`, `eval_fraction` of each held out (seeded) before the weighted mix,
    or the eval file; one entry per file appended to `sources`. -> (train records, held-out records)."""
    data = cfg.data
    if not data.train:
        raise DataError("<recipe>", "no training data: set data.train", field="data.train")
    rng = random.Random(cfg.training.seed)
    per_source, held = [], []
    for src in data.train:
        records = load(src.path, data.split, data.columns)
        train_part, held_part = split_off(records, data.eval_fraction if data.eval is None else 0.0, rng)
        per_source.append(train_part)
        held += held_part
        sources.append({"path": src.path, "sha256": file_sha256(src.path), unit: len(records),
                        "weight": src.weight, "held_out": len(held_part)})
    train = per_source[0] if len(per_source) == 1 and data.mix_size is None else mix(
        per_source, [s.weight for s in data.train], data.mix_size, rng)
    if data.eval is not None:
        held = load(data.eval, data.eval_split or data.split, data.columns)
        sources.append({"path": data.eval, "sha256": file_sha256(data.eval), unit: len(held), "role": "eval"})
    return train, held


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
                report.dropped_pairs += 1
                continue
            report.truncated_sequences += (ex.chosen.truncated > 0) + (ex.rejected.truncated > 0)
            out.append(ex)
        return out

    train, evals = tokenize(train_pairs), tokenize(held)
    if not train:
        raise DataError(data.train[0].path, f"no pair has a completion token left within max_length {t.max_length}")
    report.train_pairs, report.eval_pairs = len(train), len(evals)
    report.train_tokens = sum(len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in train)
    return Prepared(train, evals, report)


def pair_plan(units: list[PairExample], training, shuffle_seed: int | None) -> BatchPlan | None:
    if not units:
        return None
    lengths = [len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in units]
    return BatchPlan(single_rows(len(units)), lengths, training.batch_size, seed=shuffle_seed or 0,
                     shuffle=shuffle_seed is not None)


def collate_pairs(units: list[PairExample], rows: list[list[int]], pad_id: int, max_length: int,
                  use_weights: bool) -> dict[str, torch.Tensor]:
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


def per_sequence_sums(values: torch.Tensor, segment: torch.Tensor, n_sequences: int) -> torch.Tensor:
    """(N,) per-target values summed per sequence -> (S,)."""
    return torch.zeros(n_sequences, dtype=values.dtype, device=values.device).index_add_(0, segment, values)


def summarize_pairs(sums: dict[str, float]) -> dict[str, float]:
    """Pair-metric sums -> logged means: loss (pair-weighted), accuracy (ties count half), and the mean of
    every other `<name>_sum` per pair."""
    pairs = max(sums.get("pairs", 0.0), 1.0)
    out = {"loss": sums.get("loss_sum", 0.0) / max(sums.get("weight_sum", 0.0), 1e-12),
           "accuracy": sums.get("correct", 0.0) / pairs}
    for key, value in sums.items():
        if key.endswith("_sum") and key not in ("loss_sum", "weight_sum"):
            out[key.removesuffix("_sum")] = value / pairs
    return out
