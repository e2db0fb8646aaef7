"""Reward models (`method: rm`): a scalar head on a causal LM, trained on comparisons.

Bradley-Terry (`losses/reward.py`): -log sigmoid(r_chosen - r_rejected - margin), weighted by the
pair's annotator confidence, averaged over the step's pairs. Both answers of every pair go through
one packed forward pass; the reward is read at each sequence's last non-padding token, which is
where Hugging Face's sequence classifiers read it, so the saved model scores the same outside alignline.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from alignline.config import RunConfig
from alignline.losses.reward import bradley_terry_loss
from alignline.methods.base import NoExtraHooks
from alignline.methods.pairs import PairData, collate_pairs, summarize_pairs
from alignline.models.reward_model import RewardModel, last_non_pad


@dataclass
class RewardModeling(PairData, NoExtraHooks):
    _cfg: RunConfig
    name: str = "rm"
    model_kind: str = "reward"
    early_stopping: tuple[str, str] = ("eval_accuracy", "max")

    def collate(self, units, rows, pad_id):
        batch = collate_pairs(units, rows, pad_id, self._cfg.training.max_length, self._cfg.rm.use_weights)
        batch["last_index"] = last_non_pad(batch["input_ids"], batch["last_index"], pad_id)
        return batch

    def wrap(self, model, cfg):
        return RewardModel(model, fast=cfg.training.fast_path)

    def loss(self, model, batch, normalizer):
        rewards = model(**batch)
        chosen, rejected = rewards[0::2], rewards[1::2]
        weights = batch["pair_weight"]
        margin = batch["pair_margin"] if self._cfg.rm.use_margin else None
        # bradley_terry_loss is a weighted mean; times the batch weight over the step's weight = step mean
        loss = bradley_terry_loss(
            chosen,
            rejected,
            margin=margin,
            weights=weights,
            center_rewards_coefficient=self._cfg.rm.center_rewards_coefficient,
        )
        loss = loss * weights.sum() / normalizer
        diff = (chosen - rejected).detach()
        per_pair = -torch.nn.functional.logsigmoid(diff - (margin if margin is not None else 0.0))
        return loss, {
            "loss_sum": float((per_pair * weights).sum()),
            "weight_sum": float(weights.sum()),
            "pairs": float(diff.numel()),
            "correct": float((diff > 0).float().sum() + 0.5 * (diff == 0).float().sum()),
            "margin_sum": float(diff.sum()),
            "chosen_reward_sum": float(chosen.detach().sum()),
            "rejected_reward_sum": float(rejected.detach().sum()),
        }

    def summarize(self, sums):
        return summarize_pairs(sums)
