"""Group-relative policy-gradient losses (GRPO and its variants, RLOO) and their advantage estimators.

Representation. alignline never builds padded `(B, T)` logits for RL: every per-token quantity is a flat `(N,)`
tensor over the completion tokens of all `S` sequences of a micro-batch, and `seq_index` `(N,)` long gives each
token's sequence, `0..S-1`. Sequences are grouped by prompt: sequences `g·G .. g·G + G - 1` are the `G` completions
of prompt `g`. Tokens that carry no loss (tool outputs, masked truncated completions) are simply not in the flat
tensors; a sequence left with none still counts as a sequence.

Pipeline of one GRPO step, with `A` the advantage of a sequence broadcast to its tokens, `r = π/π_old` per token:

1. `group_advantages` (or `rloo_advantages`) on the `(S,)` rewards of the whole generation batch;
2. `per_token_policy_loss`: the PPO-clip surrogate `-min(r A, clip(r, 1-ε, 1+ε_high) A)`, times the truncated
   importance weights of `truncated_importance_weights` when the generator is not the trainer, plus `β · KL`;
3. `aggregate`: a loss sum and the count it must be divided by, summed over micro-batches and processes by the
   shared loop (`train/step.py`) and divided once; `loss_count` gives the count from sizes alone, before the
   forward pass, as the loop asks for it.

Sources: GRPO, Shao et al. 2024, "DeepSeekMath" (eq. 3 and the k3 KL of eq. 4); Dr. GRPO, Liu et al. 2025,
"Understanding R1-Zero-Like Training" (no std scaling, a constant length normalizer); DAPO, Yu et al. 2025
(clip-higher, token-level mean); RLOO, Ahmadian et al. 2024, "Back to Basics". The numbers match TRL 1.16's
`GRPOTrainer` (advantages in `_generate_and_score_completions`, loss in `_compute_loss`) and `RLOOTrainer`; the
tests run TRL's own code on the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import NamedTuple

import torch
from torch import Tensor


class ScaleRewards(str, Enum):
    GROUP = "group"
    BATCH = "batch"
    NONE = "none"


class GRPOLossType(str, Enum):
    GRPO = "grpo"
    BNPO = "bnpo"
    DR_GRPO = "dr_grpo"
    DAPO = "dapo"


class KLEstimator(str, Enum):
    K1 = "k1"
    K2 = "k2"
    K3 = "k3"


def _parse(enum: type[Enum], value, what: str):
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ValueError(f"unknown {what} {value!r}; allowed: {allowed}") from None


def _require_flat(name: str, tensor: Tensor, n: int) -> None:
    # A (N, 1) tensor against a (N,) one broadcasts to (N, N) and trains on nonsense without any error.
    if tensor.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one value per completion token), got {tuple(tensor.shape)}")


def _grouped(rewards: Tensor, group_size: int) -> Tensor:
    if rewards.ndim != 1:
        raise ValueError(f"rewards must have shape (S,), got {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of group_size={group_size}")
    return rewards.reshape(-1, group_size)  # (num_groups, G)


def nanstd(x: Tensor, dim: int | None = None) -> Tensor:
    """Standard deviation ignoring NaNs, with Bessel's correction (`unbiased`, as TRL's `nanstd` and `torch.std`).

    Over all of `x` when `dim` is None. NaN where fewer than two values are not NaN.
    """
    if dim is None:
        x, dim = x.reshape(-1), 0
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    count = (~torch.isnan(x)).sum(dim=dim)
    variance = torch.nanmean((x - mean) ** 2, dim=dim)
    variance = torch.where(count > 1, variance * count / (count - 1).clamp(min=1), torch.nan)
    return variance.sqrt()


def _group_std(grouped: Tensor) -> Tensor:
    # A group of one (only in evaluation) has std 0 in TRL rather than NaN; its advantage is 0 either way.
    std = nanstd(grouped, dim=1) if grouped.shape[1] > 1 else torch.zeros_like(grouped[:, 0])
    return std.repeat_interleave(grouped.shape[1])


def _batch_std(grouped: Tensor) -> Tensor:
    std = nanstd(grouped) if grouped.numel() > 1 else grouped.new_zeros(())
    return std.expand(grouped.numel())


# Per-sequence denominator `(S,)` of each scaling, from the `(num_groups, G)` rewards; None: no division.
_SCALES: dict[ScaleRewards, Callable[[Tensor], Tensor] | None] = {
    ScaleRewards.GROUP: _group_std,
    ScaleRewards.BATCH: _batch_std,
    ScaleRewards.NONE: None,
}


def group_advantages(
    rewards: Tensor, group_size: int, scale_rewards: str | ScaleRewards = "group", eps: float = 1e-4
) -> Tensor:
    """GRPO advantages `(S,)`: each reward minus its group's mean, over a standard deviation plus `eps`.

    `A_i = (R_i - mean_g(R)) / (std + eps)` with `std` by `scale_rewards`:

    - `group`: the std of the prompt's group (GRPO; DeepSeekMath eq. 3 "outcome supervision");
    - `batch`: the std of all `S` rewards given, the mean staying per group (Lite PPO, Liu et al. 2025, "Part I:
      Tricks or Traps? A Deep Dive into RL for LLM Reasoning");
    - `none`: no division (Dr. GRPO: dividing by the group std up-weights prompts that are nearly always solved or
      failed, a difficulty bias).

    Exactly TRL 1.16's `GRPOTrainer`: Bessel-corrected std (`unbiased=True`) and `eps` added to the std, outside
    the square root. Call it on the whole generation batch (all processes' rewards), as TRL does, so `batch`
    sees every reward and no group is split. A NaN reward (an unscorable completion, every grader said "not
    applicable") is left out of its group's mean and std and gets advantage 0.

    Args:
        rewards: `(S,)` one scalar reward per sequence, grouped by prompt.
        group_size: `G`, completions per prompt; `S` must be a multiple of it.
    """
    scale = _parse(ScaleRewards, scale_rewards, "scale_rewards")
    grouped = _grouped(rewards, group_size)
    advantages = rewards - torch.nanmean(grouped, dim=1).repeat_interleave(group_size)
    denominator = _SCALES[scale]
    if denominator is not None:
        advantages = advantages / (denominator(grouped) + eps)
    return torch.nan_to_num(advantages, nan=0.0)


def rloo_advantages(rewards: Tensor, group_size: int, normalize: bool = False) -> Tensor:
    """REINFORCE leave-one-out advantages `(S,)`: `A_i = R_i - mean_{j≠i in the group}(R_j)`.

    Ahmadian et al. 2024: the baseline of each completion is the mean reward of the `G - 1` other completions of
    its prompt, so it is independent of the completion itself and the estimator stays unbiased. Equivalently
    `A_i = G/(G-1) · (R_i - mean_g(R))`. NaN rewards are left out of the baselines and get advantage 0 (as
    TRL's `RLOOTrainer`); `normalize` then whitens the advantages over the batch, `(A - mean) / (std + 1e-4)`,
    TRL's `normalize_advantages`.
    """
    grouped = _grouped(rewards, group_size)
    if group_size < 2:
        raise ValueError("rloo_advantages needs group_size >= 2: a leave-one-out baseline needs another completion")
    scorable = (~torch.isnan(grouped)).sum(dim=1, keepdim=True)
    baselines = (torch.nansum(grouped, dim=1, keepdim=True) - grouped) / (scorable - 1)
    advantages = rewards - baselines.reshape(-1)
    if normalize:
        advantages = (advantages - torch.nanmean(advantages)) / (nanstd(advantages) + 1e-4)
    return torch.nan_to_num(advantages, nan=0.0)


def zero_std_groups(rewards: Tensor, group_size: int) -> Tensor:
    """`(num_groups,)` bool: True where a group's rewards are all equal, so its advantages are all zero.

    These groups carry no learning signal (DAPO's dynamic sampling drops and refills them); the fraction is TRL's
    `frac_reward_zero_std`. "Equal" is `torch.isclose(std, 0)`, TRL's test; NaN rewards are ignored, and a group
    with fewer than two scorable rewards also counts as zero-std (TRL's NaN std would not, but it is as empty).
    """
    grouped = _grouped(rewards, group_size)
    if group_size == 1:
        return torch.ones(grouped.shape[0], dtype=torch.bool, device=rewards.device)
    std = nanstd(grouped, dim=1)
    return torch.isclose(std, torch.zeros_like(std)) | torch.isnan(std)


# Schulman 2020, "Approximating KL Divergence", with x = log π_ref - log π on tokens sampled from π.
_KL: dict[KLEstimator, Callable[[Tensor], Tensor]] = {
    KLEstimator.K1: lambda x: -x,
    KLEstimator.K2: lambda x: 0.5 * x**2,
    KLEstimator.K3: lambda x: torch.exp(x) - x - 1,
}


def kl_penalty(logps: Tensor, ref_logps: Tensor, estimator: str | KLEstimator = "k3") -> Tensor:
    """Per-token estimate of KL(π || π_ref), the shape of `logps` (`(N,)`), from tokens sampled from π.

    Schulman 2020, "Approximating KL Divergence". With `x = log π_ref(y_t) - log π(y_t)`:

    - `k1 = -x = log π - log π_ref`: unbiased, high variance, negative on some tokens;
    - `k2 = x² / 2`: biased (exact to second order as π → π_ref), low variance, never negative;
    - `k3 = exp(x) - x - 1`: unbiased, never negative, low variance (GRPO's, DeepSeekMath eq. 4, and TRL's
      `GRPOTrainer`'s); large where π puts far less mass than π_ref on a token.

    As a *loss term* differentiated through `logps` (GRPO's `β · KL`, on-policy samples), the expected gradients
    differ from the values' (Tang & Munos 2025, "On a few pitfalls in KL divergence gradient estimation for RL"):
    k1's is zero (`E_π[∇log π] = 0`), k2's is that of KL(π || π_ref), k3's that of the forward KL(π_ref || π).
    As a *reward* penalty (PPO-RLHF's `token_rewards`, no gradient), k1 is the usual choice.
    """
    kind = _parse(KLEstimator, estimator, "kl_estimator")
    if ref_logps.shape != logps.shape:
        raise ValueError(f"ref_logps must have the shape of logps {tuple(logps.shape)}, got {tuple(ref_logps.shape)}")
    return _KL[kind](ref_logps - logps)


def truncated_importance_weights(trainer_logps: Tensor, generator_logps: Tensor, cap: float) -> Tensor:
    """Per-token `min(π_trainer / π_generator, cap)` `(N,)`, detached: truncated importance sampling (TIS).

    When completions are sampled by an engine other than the trainer (vLLM, or the trainer's own model in another
    precision), `π_generator ≠ π_old` even on-policy; weighting each token's policy loss by this ratio corrects
    the gradient for the mismatch, and truncating it at `cap` bounds the variance (Yao et al. 2025, "Your
    Efficient RL Framework Secretly Brings You Off-Policy RL Training"). TRL calls it
    `vllm_importance_sampling_correction` with `vllm_importance_sampling_mode="token_truncate"` and the cap
    `vllm_importance_sampling_clip_max` (formerly `vllm_importance_sampling_cap`, default 3); verl calls it
    TIS, with the cap `tis_imp_ratio_cap` (later `rollout_is_threshold`). As TRL, a token whose generator
    log-prob is NaN (the engine could not score it) gets weight 1.

    Args:
        trainer_logps: `(N,)` log-probs under the trainer's policy when the batch was collected (`old_logps`).
        generator_logps: `(N,)` log-probs the generator reported when sampling.
    """
    _require_flat("generator_logps", generator_logps, trainer_logps.numel())
    diff = torch.nan_to_num(trainer_logps.detach() - generator_logps.detach(), nan=0.0)
    return torch.exp(diff).clamp(max=cap)


def per_token_policy_loss(
    logps: Tensor,
    old_logps: Tensor,
    advantages: Tensor,
    seq_index: Tensor,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    ref_logps: Tensor | None = None,
    beta: float = 0.0,
    kl_estimator: str | KLEstimator = "k3",
    importance_weights: Tensor | None = None,
    *,
    delta: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO-clip surrogate per token, GRPO-style: `(N,)` loss and `(N,)` detached stats.

    `loss_t = -min(r_t A, clip(r_t, 1 - ε, 1 + ε_high) A) · w_t + β · KL_t`, with `r_t = exp(logp_t - old_t)`,
    `A` the advantage of the token's sequence, `w_t` the `importance_weights` (1 when not given) and `KL_t` the
    `kl_estimator` of `kl_penalty`. As in TRL, the importance weights scale the policy term only, not the KL.

    Args:
        logps: `(N,)` log-probs of the completion tokens under the policy being trained (with gradient).
        old_logps: `(N,)` the same under the policy that collected the batch (no gradient); `logps.detach()` for
            a single update per batch, where `r = 1` and the loss is plain policy gradient.
        advantages: `(S,)` one per sequence (`group_advantages`), broadcast to tokens through `seq_index`.
        seq_index: `(N,)` long, each token's sequence in `0..S-1`.
        epsilon: lower clip `ε`; `epsilon_high`: upper clip, `ε` when None (DAPO's clip-higher uses 0.28).
        ref_logps: `(N,)` under the frozen reference; required when `beta > 0`. Given with `beta = 0` it only
            feeds `stats["kl"]`.
        delta: TRL's two-sided clip (`delta`, INTELLECT-2): caps `r` at `delta` in the unclipped term too, so a
            negative-advantage token with a huge ratio cannot blow up the loss.

    Returns:
        `(per_token_loss, stats)`; stats: `ratio`, `clipped_low` (r < 1 - ε with A < 0), `clipped_high`
        (r > 1 + ε_high with A > 0), `clipped` (either: the clip zeroed the token's gradient), and `kl` when
        `ref_logps` is given.
    """
    n = logps.numel()
    if logps.ndim != 1:
        raise ValueError(f"logps must have shape (N,), got {tuple(logps.shape)}")
    _require_flat("old_logps", old_logps, n)
    _require_flat("seq_index", seq_index, n)
    if advantages.ndim != 1:
        raise ValueError(f"advantages must have shape (S,) (one per sequence), got {tuple(advantages.shape)}")
    if beta and ref_logps is None:
        raise ValueError(f"beta={beta} needs ref_logps for the KL term")
    high = epsilon if epsilon_high is None else epsilon_high
    token_advantages = advantages[seq_index].to(logps.dtype)  # (N,)
    ratio = torch.exp(logps - old_logps.detach())
    clipped_ratio = ratio.clamp(1 - epsilon, 1 + high)
    unclipped = ratio if delta is None else ratio.clamp(max=delta)
    loss = -torch.min(unclipped * token_advantages, clipped_ratio * token_advantages)
    if importance_weights is not None:
        _require_flat("importance_weights", importance_weights, n)
        loss = loss * importance_weights.detach()
    stats: dict[str, Tensor] = {"ratio": ratio.detach()}
    if ref_logps is not None:
        kl = kl_penalty(logps, ref_logps.detach(), kl_estimator)
        if beta:
            loss = loss + beta * kl
        stats["kl"] = kl.detach()
    with torch.no_grad():
        stats["clipped_low"] = (ratio < 1 - epsilon) & (token_advantages < 0)
        stats["clipped_high"] = (ratio > 1 + high) & (token_advantages > 0)
        stats["clipped"] = stats["clipped_low"] | stats["clipped_high"]
    return loss, stats


class _Aggregate(NamedTuple):
    total: Callable[[Tensor, Tensor, int], Tensor]  # (per_token_loss (N,), seq_index (N,), S) -> scalar sum
    count: Callable[[int, int, int | None], int]  # (N, S, max_completion_length) -> divisor


def sequence_sums(x: Tensor, seq_index: Tensor, num_seqs: int) -> Tensor:
    """`(S,)` per-sequence sums of the flat `(N,)` token values `x` (e.g. a sequence's KL, for
    `AdaptiveKLController.update` and logging); 0 for a sequence with no token."""
    _require_flat("seq_index", seq_index, x.numel())
    return x.new_zeros(num_seqs).index_add(0, seq_index, x)


def _sequence_means(loss: Tensor, seq_index: Tensor, num_seqs: int) -> Tensor:
    sums = sequence_sums(loss, seq_index, num_seqs)  # (S,)
    lengths = torch.bincount(seq_index, minlength=num_seqs)[:num_seqs].clamp(min=1)
    return (sums / lengths).sum()


def _dr_grpo_count(n: int, s: int, max_len: int | None) -> int:
    if max_len is None:
        raise ValueError("loss_type 'dr_grpo' needs max_completion_length (its constant length normalizer)")
    return s * max_len


_AGGREGATES: dict[GRPOLossType, _Aggregate] = {
    GRPOLossType.GRPO: _Aggregate(_sequence_means, lambda n, s, max_len: s),
    # The micro-batch's token mean counted as one: the step then averages micro-batch means (TRL's bnpo).
    GRPOLossType.BNPO: _Aggregate(lambda loss, idx, s: loss.sum() / max(loss.numel(), 1), lambda n, s, max_len: 1),
    GRPOLossType.DR_GRPO: _Aggregate(lambda loss, idx, s: loss.sum(), _dr_grpo_count),
    GRPOLossType.DAPO: _Aggregate(lambda loss, idx, s: loss.sum(), lambda n, s, max_len: n),
}


def aggregate(
    per_token_loss: Tensor,
    seq_index: Tensor,
    num_seqs: int,
    loss_type: str | GRPOLossType,
    max_completion_length: int | None = None,
) -> tuple[Tensor, int]:
    """A micro-batch's loss SUM (scalar) and the COUNT the step's total must be divided by.

    The shared loop adds sums and counts over micro-batches and processes and divides once (`train/step.py`), so
    the result is exact under any accumulation and process count for `dapo`, `dr_grpo` and `grpo`. Which
    averaging each `loss_type` is (token- vs sequence-level, where it is done):

    - `grpo` (DeepSeekMath eq. 3): sequence-level. Each sequence's token losses are averaged here, within the
      sequence; the sum of those means is returned, count = sequences. A long completion weighs as much as a short
      one, so its tokens weigh less (the length bias Dr. GRPO and DAPO remove). TRL averages over the sequences of
      each micro-batch and then divides by the accumulation steps (mean of micro-batch means); that equals ours
      when every micro-batch holds the same number of sequences, as TRL's do.
    - `bnpo`: token-level within the micro-batch: the micro-batch's token mean, count = 1, so the step averages
      micro-batch means, exactly TRL's `bnpo` (which TRL documents as depending on the local batch size).
    - `dr_grpo` (Dr. GRPO): token-level with a constant normalizer: sum of all token losses, count = sequences ×
      `max_completion_length`, so no sequence's length changes any token's weight.
    - `dapo` (DAPO, TRL's default): token-level over the whole step: sum of all token losses, count = tokens, the
      mean over every counted token of the step (TRL's `num_items_in_batch`).

    Args:
        per_token_loss: `(N,)` from `per_token_policy_loss` (or any per-token loss).
        seq_index: `(N,)` long, each token's sequence in `0..num_seqs-1`.
        num_seqs: `S`, the micro-batch's sequences, including any left with no counted token.
        max_completion_length: the generation limit; required for `dr_grpo`.
    """
    if per_token_loss.ndim != 1:
        raise ValueError(f"per_token_loss must have shape (N,), got {tuple(per_token_loss.shape)}")
    _require_flat("seq_index", seq_index, per_token_loss.numel())
    count = loss_count(loss_type, per_token_loss.numel(), num_seqs, max_completion_length)
    return _AGGREGATES[GRPOLossType(loss_type)].total(per_token_loss, seq_index, num_seqs), count


def loss_count(
    loss_type: str | GRPOLossType, num_tokens: int, num_seqs: int, max_completion_length: int | None = None
) -> int:
    """The count `aggregate` returns, from sizes alone: for a method's `count(batch)`, which the shared loop calls
    before any forward pass. `num_tokens`: counted completion tokens `N`; `num_seqs`: sequences `S`."""
    kind = _parse(GRPOLossType, loss_type, "loss_type")
    return _AGGREGATES[kind].count(num_tokens, num_seqs, max_completion_length)
