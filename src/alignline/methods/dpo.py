"""The DPO family (`method: dpo`): the policy learns from comparisons directly, leashed to a reference.

The losses are pure functions in `losses/preference.py`; this module gets them their inputs:
sequence log-probs of the chosen and rejected answers under the policy and the reference, from one
packed forward pass each. The reference is, in order of preference:
- precomputed once before training (`dpo.precompute_ref_logps`), so nothing else stays in memory;
- `dpo.ref_model`, any model by path;
- with LoRA, the same model with its adapters switched off (no second copy in memory);
- otherwise a frozen copy of the starting policy.
Pairs are weighted by their `weight`/`confidence` (annotator agreement), and the step's loss is the
weighted mean over all its pairs, across micro-batches and processes.

At each evaluation, besides preference accuracy and margins on held-out pairs, a few held-out
prompts are answered by the policy and KL(policy || reference) is estimated on those samples:
sum over generated tokens of log pi - log pi_ref, averaged over prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from alignline.config import RunConfig
from alignline.data.templates import IGNORE, Example
from alignline.losses.preference import dpo_loss
from alignline.methods.base import NoExtraHooks
from alignline.methods.pairs import (
    PairData,
    collate_pairs,
    summarize_pairs,
)
from alignline.models.reference import DPOModel, frozen_reference


@dataclass
class DPO(PairData, NoExtraHooks):
    _cfg: RunConfig
    name: str = "dpo"
    model_kind: str = "causal_lm"
    early_stopping: tuple[str, str] = ("eval_accuracy", "max")

    def collate(self, units, rows, pad_id):
        return collate_pairs(units, rows, pad_id, self._cfg.training.max_length, self._cfg.dpo.use_weights)

    def wrap(self, model, cfg):
        d = cfg.dpo
        reference = None if d.loss_type == "simpo" else frozen_reference(model, d.ref_model, cfg.training.dtype)
        return DPOModel(model, reference, reference_free=d.loss_type == "simpo", fast=cfg.training.fast_path)

    def setup(self, wrapped, data, pad_id, device) -> None:
        """Precompute reference log-probs for every pair, when asked (and needed)."""
        d = self._cfg.dpo
        if not d.precompute_ref_logps or d.loss_type == "simpo":
            return
        for units in (data.train, data.eval):
            for start in range(0, len(units), self._cfg.training.batch_size):
                rows = [[i] for i in range(start, min(start + self._cfg.training.batch_size, len(units)))]
                batch = {k: v.to(device) for k, v in self.collate(units, rows, pad_id).items()}
                ref = wrapped.reference_logps(batch).tolist()
                for j, (i,) in enumerate(rows):
                    units[i].ref = (ref[2 * j], ref[2 * j + 1])
        wrapped.drop_reference_copy()  # the point of precomputing: no reference in memory while training

    def loss(self, model, batch, normalizer):
        d = self._cfg.dpo
        policy, ref, counts = model(**batch)
        chosen, rejected = policy[0::2], policy[1::2]
        if d.loss_type == "simpo":  # length-normalized, reference-free
            chosen, rejected = chosen / counts[0::2], rejected / counts[1::2]
        out = dpo_loss(
            chosen,
            rejected,
            None if ref is None else ref[0::2],
            None if ref is None else ref[1::2],
            beta=d.beta,
            loss_type=d.loss_type,
            label_smoothing=d.label_smoothing,
            simpo_gamma=d.simpo_gamma,
            rpo_alpha=d.rpo_alpha,
            chosen_nll=-policy[0::2] / counts[0::2] if d.rpo_alpha else None,
        )
        weights = batch["pair_weight"]
        loss = (out.losses * weights).sum() / normalizer
        margin = out.chosen_rewards - out.rejected_rewards
        correct = (margin > 0).float() + 0.5 * (margin == 0).float()
        sums = {
            "loss_sum": float((out.losses.detach() * weights).sum()),
            "weight_sum": float(weights.sum()),
            "pairs": float(weights.numel()),
            "correct": float(correct.sum()),
            "margin_sum": float(margin.sum()),
            "chosen_reward_sum": float(out.chosen_rewards.sum()),
            "rejected_reward_sum": float(out.rejected_rewards.sum()),
            "chosen_logp_sum": float(policy[0::2].detach().sum()),
            "rejected_logp_sum": float(policy[1::2].detach().sum()),
        }
        return loss, sums

    def summarize(self, sums):
        return summarize_pairs(sums)

    @torch.no_grad()
    def stop_reason(self, evaluation: dict[str, float]) -> str | None:
        bound, kl = self._cfg.dpo.max_kl, evaluation.get("eval_kl")
        if bound is not None and kl is not None and kl > bound:
            return f"eval_kl {kl:.3g} exceeded dpo.max_kl {bound:g}"
        return None

    def extra_eval(self, wrapped, data, pad_id, device, tokenizer, step) -> dict[str, float]:
        """KL(policy || reference) on answers the policy samples for a few held-out prompts."""
        d = self._cfg.dpo
        if d.kl_prompts <= 0 or not data.eval or wrapped.reference_free or not wrapped.has_reference():
            return {}
        kls = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._cfg.training.seed)
            for unit in data.eval[: d.kl_prompts]:
                ex = unit.chosen
                first = next(t for t, v in enumerate(ex.targets) if v != IGNORE) + 1  # first answer token
                prompt = torch.tensor([ex.input_ids[:first]], device=device)
                out = wrapped.model.generate(
                    input_ids=prompt,
                    attention_mask=torch.ones_like(prompt),
                    do_sample=True,
                    temperature=1.0,
                    top_k=0,
                    top_p=1.0,
                    max_new_tokens=d.kl_max_new_tokens,
                    pad_token_id=pad_id,
                    use_cache=True,
                )
                ids = out[0].tolist()
                mask = [False] * first + [True] * (len(ids) - first)
                sample = Example(ids, [ids[t + 1] if mask[t + 1] else IGNORE for t in range(len(ids) - 1)] + [IGNORE])
                batch = {k: v.to(device) for k, v in self.collate([_Single(sample)], [[0]], pad_id).items()}
                policy = wrapped.sequence_logps(wrapped.policy, batch)[0]
                kls.append(float(policy - wrapped.reference_logps(batch)[0]))
        return {"kl": sum(kls) / len(kls)} if kls else {}


class _Single:
    """One sequence posing as a pair (both sides the same) for the pair collate."""

    def __init__(self, example: Example):
        self.chosen = self.rejected = example
        self.weight, self.margin, self.ref = 1.0, 0.0, None
