"""Reward-model losses and metrics on scalar rewards.

- `bradley_terry_loss`: the Bradley-Terry pairwise likelihood used to train reward models (Bradley & Terry 1952;
  as in InstructGPT, Ouyang et al. 2022): `-log σ(r_c - r_r - m)`, with the optional per-pair margin `m` of
  Llama 2 (Touvron et al. 2023) and TRL's `center_rewards_coefficient` term `coef · mean((r_c + r_r)²)`
  (Eisenstein et al. 2023), which pins the otherwise free offset of the rewards near zero.
- `reward_metrics`: accuracy and margin of a batch of reward pairs; ties count as half right.
- `combine_rewards`: weighted sum of the heads of a multi-objective reward model.
- `weighted_mean`: the per-pair weighting shared with `alignline.losses.preference`.

All functions are pure: tensors in, tensors (or plain floats for metrics) out. `B` is the number of pairs.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor


def require_batch(name: str, tensor: Tensor, batch: torch.Size) -> None:
    # A (B, 1) reward head output against a (B,) margin broadcasts to (B, B) and trains on nonsense without
    # any error, so shapes are checked exactly rather than trusted to broadcasting.
    if tensor.shape != batch:
        raise ValueError(f"{name} must have shape {tuple(batch)} (one value per pair), got {tuple(tensor.shape)}")


def require_pairs(chosen: Tensor, rejected: Tensor, prefix: str = "") -> torch.Size:
    if chosen.ndim != 1:
        raise ValueError(f"{prefix}chosen values must have shape (B,), got {tuple(chosen.shape)}")
    require_batch(f"{prefix}rejected values", rejected, chosen.shape)
    return chosen.shape


def weighted_mean(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean of `values` `(B,)`, or `sum(w · v) / sum(w)` with non-negative `weights` `(B,)`. Returns a scalar.

    A batch whose weights are all zero gives 0 rather than NaN: such a batch carries no signal, and a NaN would
    poison the optimizer state. Weights are not checked for sign, since that would force a device sync each step.
    """
    if weights is None:
        return values.mean()
    require_batch("weights", weights, values.shape)
    weights = weights.to(values.dtype)
    return (weights * values).sum() / weights.sum().clamp_min(torch.finfo(values.dtype).tiny)


def bradley_terry_loss(
    chosen_rewards: Tensor,
    rejected_rewards: Tensor,
    margin: Tensor | None = None,
    weights: Tensor | None = None,
    center_rewards_coefficient: float | None = None,
) -> Tensor:
    """Pairwise reward-model loss. Returns a scalar.

    Args:
        chosen_rewards: `(B,)` rewards of the preferred responses (squeeze a `(B, 1)` head output first).
        rejected_rewards: `(B,)` rewards of the dispreferred responses.
        margin: `(B,)` how much more the chosen response must score, e.g. from annotator preference strength.
        weights: `(B,)` per-pair weights (e.g. annotator confidence); the loss becomes a weighted mean.
        center_rewards_coefficient: adds `coef · mean((r_c + r_r)²)`. This term is left unweighted, as in TRL,
            because it regularizes the reward scale of the whole model rather than scoring any one pair.
    """
    batch = require_pairs(chosen_rewards, rejected_rewards)
    diff = chosen_rewards - rejected_rewards
    if margin is not None:
        require_batch("margin", margin, batch)
        diff = diff - margin
    loss = weighted_mean(-F.logsigmoid(diff), weights)
    if center_rewards_coefficient is not None:
        loss = loss + center_rewards_coefficient * torch.mean((chosen_rewards + rejected_rewards) ** 2)
    return loss


def reward_metrics(chosen_rewards: Tensor, rejected_rewards: Tensor) -> dict[str, float]:
    """Batch metrics for `(B,)` reward pairs: `accuracy`, `margin`, `chosen`, `rejected` (means, as floats).

    A tie counts as half right, so a model that cannot tell the two apart (e.g. a DPO policy at step 0, whose
    implicit rewards are all exactly zero) reads 0.5, the chance level. TRL counts ties as wrong and logs 0.0 there.
    """
    require_pairs(chosen_rewards, rejected_rewards)
    with torch.no_grad():
        chosen, rejected = chosen_rewards.detach().float(), rejected_rewards.detach().float()
        right = (chosen > rejected).float() + 0.5 * (chosen == rejected).float()
        return {
            "accuracy": right.mean().item(),
            "margin": (chosen - rejected).mean().item(),
            "chosen": chosen.mean().item(),
            "rejected": rejected.mean().item(),
        }


def combine_rewards(components: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """Weighted sum `Σ_k weights[k] · components[k]` of the heads of a multi-objective reward model.

    Args:
        components: name -> rewards, all of one shape (typically `(B,)`), e.g. `{"helpful": ..., "harmless": ...}`.
        weights: name -> weight; must name exactly the keys of `components`.

    Returns:
        Tensor of the components' shape.
    """
    missing = sorted(set(weights) - set(components))
    unweighted = sorted(set(components) - set(weights))
    if missing or unweighted:
        # A component silently dropped from the sum is an objective nobody is optimizing: refuse rather than guess.
        problems = [f"weights name components not given: {missing}"] * bool(missing)
        problems += [f"components have no weight: {unweighted}"] * bool(unweighted)
        raise ValueError(f"combine_rewards: {'; '.join(problems)} (components: {sorted(components)})")
    if not components:
        raise ValueError("combine_rewards: no reward components given")
    names = sorted(components)
    shape = components[names[0]].shape
    mismatched = {name: tuple(components[name].shape) for name in names if components[name].shape != shape}
    if mismatched:
        raise ValueError(f"combine_rewards: components differ in shape from {names[0]!r} {tuple(shape)}: {mismatched}")
    return torch.stack([weights[name] * components[name] for name in names]).sum(dim=0)
