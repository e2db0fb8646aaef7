"""Pairwise preference-optimization losses on sequence log-probabilities.

With `Δ = (log π(y_c) - log π_ref(y_c)) - (log π(y_r) - log π_ref(y_r))` and `ε = label_smoothing`, the
variants of `DPOLossType` are, per pair:

- `sigmoid`: DPO, Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a Reward
  Model": `-log σ(βΔ)`. With `ε > 0` it is conservative DPO (Mitchell 2023, "A note on DPO with noisy preferences
  & relationship to IPO"), the cross-entropy against labels flipped with probability ε:
  `-(1-ε) log σ(βΔ) - ε log σ(-βΔ)`.
- `robust`: robust DPO, Chowdhury et al. 2024, "Provably Robust DPO: Aligning Language Models with Noisy
  Feedback": the unbiased estimator of the clean-label loss under flip rate ε,
  `[-(1-ε) log σ(βΔ) + ε log σ(-βΔ)] / (1 - 2ε)`; equals `sigmoid` at ε = 0.
- `ipo`: IPO, Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human Preferences",
  eq. 17: `(Δ - 1/(2β))²`, β playing the paper's τ. The square does not saturate, so unlike DPO it keeps the policy
  near the reference even on pairs that are already separated.
- `hinge`: SLiC-HF, Zhao et al. 2023, "SLiC-HF: Sequence Likelihood Calibration with Human Feedback":
  `max(0, 1 - βΔ)`.
- `simpo`: SimPO, Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free Reward":
  `-log σ(β(log π̄(y_c) - log π̄(y_r)) - γ)` on length-normalized log-probs `log π̄` and no reference model;
  ε smooths it as in conservative DPO. SimPO's β is around 2, not DPO's 0.1.

Optionally `rpo_alpha · NLL(y_c)` is added per pair: RPO, Pang et al. 2024, "Iterative Reasoning Preference
Optimization", whose NLL term (length-normalized) keeps the chosen likelihood from falling while the margin grows.

Inputs are `(B,)` sequence log-probs from `sequence_logps`; everything is a pure function of tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from alignline.losses.reward import require_batch, require_pairs, reward_metrics, weighted_mean


class DPOLossType(str, Enum):
    SIGMOID = "sigmoid"
    IPO = "ipo"
    ROBUST = "robust"
    HINGE = "hinge"
    SIMPO = "simpo"


class DPOOutput(NamedTuple):
    loss: Tensor
    """Scalar: the (weighted) mean of `losses`; what to backpropagate."""
    losses: Tensor
    """`(B,)` per-pair loss, including the `rpo_alpha` NLL term."""
    chosen_rewards: Tensor
    """`(B,)` implicit reward `β(log π - log π_ref)` of the chosen responses (`β log π̄` for simpo); detached."""
    rejected_rewards: Tensor
    """`(B,)` the same for the rejected responses; detached."""


class _Hyper(NamedTuple):
    beta: float
    label_smoothing: float
    simpo_gamma: float


def _smoothed_logistic(logits: Tensor, eps: float) -> Tensor:
    return -(1 - eps) * F.logsigmoid(logits) - eps * F.logsigmoid(-logits)


def _robust(delta: Tensor, h: _Hyper) -> Tensor:
    eps = h.label_smoothing
    return (-(1 - eps) * F.logsigmoid(h.beta * delta) + eps * F.logsigmoid(-h.beta * delta)) / (1 - 2 * eps)


_LOSSES: dict[DPOLossType, Callable[[Tensor, _Hyper], Tensor]] = {
    DPOLossType.SIGMOID: lambda delta, h: _smoothed_logistic(h.beta * delta, h.label_smoothing),
    DPOLossType.ROBUST: _robust,
    DPOLossType.IPO: lambda delta, h: (delta - 1 / (2 * h.beta)) ** 2,
    DPOLossType.HINGE: lambda delta, h: torch.relu(1 - h.beta * delta),
    DPOLossType.SIMPO: lambda delta, h: _smoothed_logistic(h.beta * delta - h.simpo_gamma, h.label_smoothing),
}

# Allowed label_smoothing per variant. ipo and hinge have no noisy-label form, so a nonzero value would be silently
# ignored and is refused instead; robust DPO divides by 1 - 2ε, hence its open bound.
_SMOOTHING_RANGE: dict[DPOLossType, tuple[str, Callable[[float], bool]]] = {
    DPOLossType.SIGMOID: ("[0, 0.5]", lambda eps: 0.0 <= eps <= 0.5),
    DPOLossType.ROBUST: ("[0, 0.5)", lambda eps: 0.0 <= eps < 0.5),
    DPOLossType.SIMPO: ("[0, 0.5]", lambda eps: 0.0 <= eps <= 0.5),
    DPOLossType.IPO: ("exactly 0", lambda eps: eps == 0.0),
    DPOLossType.HINGE: ("exactly 0", lambda eps: eps == 0.0),
}

_REFERENCE_FREE = frozenset({DPOLossType.SIMPO})


def _parse_loss_type(loss_type: str | DPOLossType) -> DPOLossType:
    try:
        return DPOLossType(loss_type)
    except ValueError:
        allowed = ", ".join(t.value for t in DPOLossType)
        raise ValueError(f"unknown loss_type {loss_type!r}; allowed: {allowed}") from None


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor | None,
    ref_rejected_logps: Tensor | None,
    *,
    beta: float = 0.1,
    loss_type: str | DPOLossType = DPOLossType.SIGMOID,
    label_smoothing: float = 0.0,
    weights: Tensor | None = None,
    simpo_gamma: float = 0.5,
    rpo_alpha: float = 0.0,
    chosen_nll: Tensor | None = None,
) -> DPOOutput:
    """Preference loss of one batch of pairs; see the module docstring for each `loss_type`.

    Args:
        policy_chosen_logps: `(B,)` summed log-probs of the chosen responses under the policy (length-normalized,
            i.e. `sequence_logps(..., average=True)`, for `simpo`).
        policy_rejected_logps: `(B,)` the same for the rejected responses.
        ref_chosen_logps: `(B,)` under the frozen reference model; must be None for `simpo`, which has none.
        ref_rejected_logps: `(B,)` likewise.
        beta: inverse temperature (τ for `ipo`). Larger keeps the policy closer to the reference.
        loss_type: a `DPOLossType` or its string value.
        label_smoothing: assumed label flip rate ε: conservative DPO for `sigmoid`/`simpo`, robust DPO for `robust`.
        weights: `(B,)` non-negative per-pair weights (e.g. annotator confidence); the loss is `Σ w·l / Σ w`.
        simpo_gamma: SimPO's target reward margin γ, in reward units (after β).
        rpo_alpha: weight of the RPO NLL term; 0 disables it.
        chosen_nll: `(B,)` per-token mean NLL of the chosen responses, `-sequence_logps(..., average=True)` under
            the policy; required when `rpo_alpha` is nonzero.

    Note: TRL's `ipo` divides Δ's log-ratios by completion length before squaring (its IPO authors' choice, not in
    the paper); pass `average=True` log-probs here to reproduce that.
    """
    kind = _parse_loss_type(loss_type)
    batch = require_pairs(policy_chosen_logps, policy_rejected_logps, "policy ")
    allowed, smoothing_ok = _SMOOTHING_RANGE[kind]
    if not smoothing_ok(label_smoothing):
        raise ValueError(f"label_smoothing={label_smoothing} for loss_type {kind.value!r} must be {allowed}")
    given_refs = (ref_chosen_logps is not None, ref_rejected_logps is not None)
    if kind in _REFERENCE_FREE:
        if any(given_refs):
            raise ValueError(f"loss_type {kind.value!r} is reference-free: pass ref_*_logps=None")
        chosen_scores, rejected_scores = policy_chosen_logps, policy_rejected_logps
    else:
        if not all(given_refs):
            raise ValueError(f"loss_type {kind.value!r} needs both ref_chosen_logps and ref_rejected_logps")
        require_pairs(ref_chosen_logps, ref_rejected_logps, "reference ")
        require_batch("ref_chosen_logps", ref_chosen_logps, batch)
        chosen_scores = policy_chosen_logps - ref_chosen_logps
        rejected_scores = policy_rejected_logps - ref_rejected_logps

    losses = _LOSSES[kind](chosen_scores - rejected_scores, _Hyper(beta, label_smoothing, simpo_gamma))
    if rpo_alpha:
        if chosen_nll is None:
            raise ValueError("rpo_alpha is nonzero but chosen_nll was not given")
        require_batch("chosen_nll", chosen_nll, batch)
        losses = losses + rpo_alpha * chosen_nll
    # The NLL term shares the pair weights: a pair we trust less is also a weaker fine-tuning target.
    return DPOOutput(
        loss=weighted_mean(losses, weights),
        losses=losses,
        chosen_rewards=beta * chosen_scores.detach(),
        rejected_rewards=beta * rejected_scores.detach(),
    )


def preference_metrics(out: DPOOutput) -> dict[str, float]:
    """Floats to log: `loss` and `rewards/{accuracy,margin,chosen,rejected}` (means; ties count as half right)."""
    rewards = reward_metrics(out.chosen_rewards, out.rejected_rewards)
    return {"loss": out.loss.detach().item(), **{f"rewards/{name}": value for name, value in rewards.items()}}


def _row_token_logps(logits: Tensor, labels: Tensor) -> Tensor:
    # float32 for the normalizer: a bf16 logsumexp over a large vocabulary is off by ~0.05 per token, and that error
    # accumulates over hundreds of summed tokens.
    logits = logits.float()
    return logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def sequence_logps(logits: Tensor, labels: Tensor, ignore_index: int = -100, average: bool = False) -> Tensor:
    """Log-probability of each label sequence: `(B, T, V)` logits, `(B, T)` labels -> `(B,)` float32.

    Labels are unshifted, as for a Hugging Face `model(labels=...)` call (and TRL's `get_batch_logps`): `labels` is
    `input_ids` with prompt and padding set to `ignore_index`. This function does the causal shift, scoring
    `labels[:, t + 1]` with `logits[:, t]`.

    Args:
        average: False: sum over counted tokens (DPO, IPO per the paper). True: mean over counted tokens (SimPO,
            RPO's NLL, TRL-style IPO). A row with no counted tokens gives 0 either way.
    """
    if logits.ndim != 3 or logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits (B, T, V) and labels (B, T) disagree: {tuple(logits.shape)} vs {tuple(labels.shape)}")
    logits, labels = logits[:, :-1], labels[:, 1:]
    counted = labels != ignore_index
    safe_labels = labels.masked_fill(~counted, 0)
    if logits.shape[0] == 0:
        return logits.new_zeros(0, dtype=torch.float32)
    # One row at a time caps the float32 copy at (T, V): a whole-batch copy of a 150k vocabulary runs to gigabytes,
    # which matters most in the gradient-free reference pass.
    token_logps = torch.stack([_row_token_logps(row, row_labels) for row, row_labels in zip(logits, safe_labels)])
    total = (token_logps * counted).sum(dim=-1)
    return total / counted.sum(dim=-1).clamp_min(1) if average else total
