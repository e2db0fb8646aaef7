"""Supervised and instruction fine-tuning: next-token loss on the assistant's turns (or completions).

Token-level averaging over the whole optimizer step (all micro-batches, all processes): every
trained token weighs the same, so batch 8 x accumulation 1 equals batch 1 x accumulation 8, and long
answers are not down-weighted against short ones as a per-sequence mean would do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from alignline.config import RunConfig
from alignline.data.dataset import prepare_data
from alignline.data.packing import BatchPlan, collate, pack_rows, single_rows
from alignline.data.templates import IGNORE, Example
from alignline.methods.base import NoExtraHooks, Prepared
from alignline.models.adapters import uses_virtual_tokens
from alignline.models.logprob_model import TokenLogprobModel


def causal_lm_loss(logps: torch.Tensor, normalizer: float) -> torch.Tensor:
    """Summed negative log-likelihood of the targets over `normalizer`. logps: (N,)."""
    return -logps.sum() / normalizer


def example_plan(examples: list[Example], training, packing: bool, shuffle_seed: int | None) -> BatchPlan | None:
    """Rows of packed (or single, length-grouped) examples, `batch_size` rows per micro-batch."""
    if not examples:
        return None
    lengths = [len(e.input_ids) for e in examples]
    rows = pack_rows(lengths, training.max_length) if packing else single_rows(len(examples))
    return BatchPlan(
        rows,
        lengths,
        training.batch_size,
        seed=shuffle_seed or 0,
        group_by_length=not packing,
        shuffle=shuffle_seed is not None,
    )


def with_attention_mask(batch: dict[str, torch.Tensor], row_lengths: list[int]) -> dict[str, torch.Tensor]:
    """Right-padding mask: only the prompt/prefix-tuning path reads it (packed rows need none)."""
    width = batch["input_ids"].shape[1]
    batch["attention_mask"] = torch.arange(width)[None, :] < torch.tensor(row_lengths)[:, None]
    return batch


@dataclass(frozen=True)
class SFT(NoExtraHooks):
    name: str = "sft"
    formats: tuple[str, ...] | None = None
    """Sample formats accepted (`chat`, `prompt_completion`, `text`); None: all."""
    split_long: bool = False
    """Cut long samples into max_length windows (pretraining) instead of truncating them."""
    model_kind: str = "causal_lm"
    early_stopping: tuple[str, str] = ("eval_loss", "min")

    def prepare(self, cfg, tokenizer, progress):
        train, evals, report = prepare_data(
            cfg.data,
            tokenizer,
            cfg.training.max_length,
            cfg.training.seed,
            self.formats,
            self.split_long,
            progress=progress,
        )
        return Prepared(train, evals, report)

    def plan(self, units, cfg, shuffle_seed):
        packing = cfg.training.packing and not uses_virtual_tokens(cfg.adapter)  # peft's virtual tokens need a mask
        return example_plan(units, cfg.training, packing, shuffle_seed)

    def collate(self, units, rows, pad_id):
        return with_attention_mask(
            collate(units, rows, pad_id), [sum(len(units[i].input_ids) for i in r) for r in rows]
        )

    def count(self, batch):
        return float((batch["targets"] != IGNORE).sum())

    def wrap(self, model, cfg):
        return TokenLogprobModel(model, virtual_tokens=uses_virtual_tokens(cfg.adapter), fast=cfg.training.fast_path)

    def loss(self, model, batch, normalizer):
        logps = model(**batch)
        return causal_lm_loss(logps, normalizer), {
            "nll_sum": float(-logps.detach().sum()),
            "targets": float(logps.numel()),
        }

    def summarize(self, sums):
        loss = sums.get("nll_sum", 0.0) / max(sums.get("targets", 0.0), 1.0)
        return {"loss": loss, "ppl": math.exp(min(loss, 50.0))}


def sft_method(cfg: RunConfig) -> SFT:
    """The `sft` entry of `methods.METHODS`: SFT reads its settings from the config when it runs."""
    return SFT()
