"""Unpaired preference losses: each completion is judged alone, desirable or undesirable.

KTO, Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization", eq. 7, as TRL 1.16's
`KTOTrainer` computes it. With the log-ratio `r = log π(y|x) - log π_ref(y|x)` of each completion, the reference
point `z` (an estimate of KL(π || π_ref)), and `λ_D`, `λ_U` = `desirable_weight`, `undesirable_weight`:

- desirable:   `λ_D · (1 - σ(β(r - z)))`
- undesirable: `λ_U · (1 - σ(β(z - r)))`

`z` is estimated from mismatched pairs: each prompt of the batch with another example's completion (TRL rotates the
completions by one within the batch), `z = max(0, mean(log π(y'|x) - log π_ref(y'|x)))`, detached, so it shifts the
target without being a training signal itself (`kto_kl`). The variants of `KTOLossType`:

- `kto`: the above.
- `apo_zero_unpaired`: the unpaired APO-zero loss, D'Oosterlinck et al. 2024, "Anchored Preference Optimization and
  Contrastive Revisions", eq. 7: desirable `1 - σ(βr)`, undesirable `σ(βr)`; no reference point, so no KL term.

The batch loss is `Σ w·l / Σ w` over the per-example `l` (class weights included) with optional per-example weights
`w`; with `w = 1` it is TRL's `losses.nanmean()`. Everything is a pure function of tensors; `B` is the number of
completions in the batch, `M` the number of mismatched (KL) sequences.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import NamedTuple

import torch
from torch import Tensor

from alignline.losses.reward import require_batch, weighted_mean


class KTOLossType(str, Enum):
    KTO = "kto"
    APO_ZERO_UNPAIRED = "apo_zero_unpaired"


class KTOOutput(NamedTuple):
    loss: Tensor
    """Scalar: the (weighted) mean of `losses`; what to backpropagate."""
    losses: Tensor
    """`(B,)` per-completion loss, times `desirable_weight` or `undesirable_weight` by its label."""
    rewards: Tensor
    """`(B,)` implicit reward `β(log π - log π_ref)` of each completion; detached."""
    kl: Tensor
    """Scalar: the reference point `z` used (0 for variants without one)."""


LossTerm = Callable[[Tensor, Tensor, float], Tensor]  # (log-ratios (B,), z scalar, β) -> (B,) losses


class _Variant(NamedTuple):
    desirable: LossTerm
    undesirable: LossTerm
    uses_kl: bool


_VARIANTS: dict[KTOLossType, _Variant] = {
    KTOLossType.KTO: _Variant(
        desirable=lambda r, z, beta: 1 - torch.sigmoid(beta * (r - z)),
        undesirable=lambda r, z, beta: 1 - torch.sigmoid(beta * (z - r)),
        uses_kl=True,
    ),
    KTOLossType.APO_ZERO_UNPAIRED: _Variant(
        desirable=lambda r, z, beta: 1 - torch.sigmoid(beta * r),
        undesirable=lambda r, z, beta: torch.sigmoid(beta * r),
        uses_kl=False,
    ),
}


def parse_loss_type(loss_type: str | KTOLossType) -> KTOLossType:
    try:
        return KTOLossType(loss_type)
    except ValueError:
        allowed = ", ".join(t.value for t in KTOLossType)
        raise ValueError(f"unknown loss_type {loss_type!r}; allowed: {allowed}") from None


def uses_kl(loss_type: str | KTOLossType) -> bool:
    """Whether the variant needs the mismatched (KL) sequences at all."""
    return _VARIANTS[parse_loss_type(loss_type)].uses_kl


def kto_kl(
    policy_kl_logps: Tensor, ref_kl_logps: Tensor, mean_across_processes: Callable[[Tensor], Tensor] | None = None
) -> Tensor:
    """The reference point `z`: `max(0, mean(policy - ref))` over the `(M,)` mismatched sequences, detached.

    `mean_across_processes` (scalar -> scalar), when given, averages the per-process means before the clamp, as TRL
    does with `gather_for_metrics(kl).mean()`.
    """
    if policy_kl_logps.ndim != 1 or policy_kl_logps.numel() == 0:
        raise ValueError(f"KL log-probs must have shape (M,) with M > 0, got {tuple(policy_kl_logps.shape)}")
    require_batch("ref_kl_logps", ref_kl_logps, policy_kl_logps.shape)
    kl = (policy_kl_logps - ref_kl_logps).mean().detach()
    if mean_across_processes is not None:
        kl = mean_across_processes(kl)
    return kl.clamp(min=0)


def kto_loss(
    policy_logps: Tensor,
    ref_logps: Tensor,
    labels: Tensor,
    kl: Tensor | None,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    loss_type: str | KTOLossType = KTOLossType.KTO,
    weights: Tensor | None = None,
) -> KTOOutput:
    """Unpaired preference loss of one batch; see the module docstring for each `loss_type`.

    Args:
        policy_logps: `(B,)` summed log-probs of each completion under the policy.
        ref_logps: `(B,)` the same under the frozen reference.
        labels: `(B,)` bool, True for desirable completions.
        kl: scalar reference point `z` from `kto_kl` for `kto`; None for `apo_zero_unpaired`, which has none.
        beta: inverse temperature; larger keeps the policy closer to the reference.
        desirable_weight, undesirable_weight: `λ_D`, `λ_U`, to balance unequal numbers of each kind (the paper's
            eq. 8 suggests `λ_D n_D / (λ_U n_U)` in [1, 4/3]).
        weights: `(B,)` non-negative per-completion weights (a record's `weight`); the loss is `Σ w·l / Σ w`.
    """
    kind = parse_loss_type(loss_type)
    variant = _VARIANTS[kind]
    if policy_logps.ndim != 1:
        raise ValueError(f"policy_logps must have shape (B,), got {tuple(policy_logps.shape)}")
    require_batch("ref_logps", ref_logps, policy_logps.shape)
    require_batch("labels", labels, policy_logps.shape)
    if labels.dtype != torch.bool:
        raise ValueError(f"labels must be bool (True: desirable), got {labels.dtype}")
    if variant.uses_kl and kl is None:
        raise ValueError(f"loss_type {kind.value!r} needs the KL reference point: pass kl=kto_kl(...)")
    if not variant.uses_kl and kl is not None:
        raise ValueError(f"loss_type {kind.value!r} has no KL reference point: pass kl=None")
    z = kl.detach() if kl is not None else policy_logps.new_zeros(())
    logratios = policy_logps - ref_logps
    losses = torch.where(
        labels,
        desirable_weight * variant.desirable(logratios, z, beta),
        undesirable_weight * variant.undesirable(logratios, z, beta),
    )
    return KTOOutput(loss=weighted_mean(losses, weights), losses=losses, rewards=beta * logratios.detach(), kl=z)
