"""PPO for RLHF (Ouyang et al. 2022, "Training language models to follow instructions with human feedback";
Ziegler et al. 2019, "Fine-Tuning Language Models from Human Preferences"), as pure functions on flat tokens.

Representation: as in `alignline.losses.grpo`, per-token quantities are flat `(N,)` tensors over the completion
tokens of `S` sequences, with `seq_index` `(N,)` long giving each token's sequence. Here the tokens of a sequence
must be contiguous and in order (`seq_index` non-decreasing), since GAE runs backwards through each sequence, and
every sequence has at least one token (the score sits on its last one).

One PPO batch, with `β` the KL coefficient of a `FixedKLController` / `AdaptiveKLController`:

1. `token_rewards`: the per-token reward `-β · KL_t`, plus the reward model's scalar score on the sequence's last
   token (after the optional score shaping: `penalize_missing_eos`, `scale_scores`, `clip_scores`);
2. `gae`: advantages and returns from those rewards and the value head's per-token values; then
   `whiten(advantages)`;
3. per minibatch: `ppo_policy_loss` (the PPO-clip surrogate, no KL term: the KL is in the reward) and
   `clipped_value_loss`, each `(N,)`, reduced with `alignline.losses.grpo.aggregate` (TRL's PPO takes the token mean
   of each micro-batch, `bnpo` there; `dapo` is the exact token mean of the step), `loss = pg + vf_coef · vf`;
4. `controller.update(mean sequence KL, batch size)`.

Against TRL's last `PPOTrainer` (`trl.experimental.ppo` in TRL 0.26; TRL 1.16 ships none), whose own code the
tests run on the same batches when its source is at hand: the GAE recursion, whitening (Bessel variance,
`rsqrt(var + 1e-8)`), value clip, policy clip and `RunningMoments` are TRL's. One difference: on a padded row with
room after the completion, TRL adds the score one position *after* the last token (an "EOS state" whose value is
also trained), else on the last token; alignline's flat tensors have no position after the last token, so the score
always sits on the last token, as in OpenRLHF and TRL's earlier PPOTrainer (`compute_rewards`). The two agree on
rows that fill the padded width and, at `γ = λ = 1`, on every row; otherwise TRL's score reaches the last token
damped by `γλ`. The KL controllers follow Ziegler et al. (TRL 0.11's `AdaptiveKLController`), tested against the
formula.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from alignline.losses.grpo import KLEstimator, kl_penalty, per_token_policy_loss


def _require_same(name: str, tensor: Tensor, like: Tensor) -> None:
    if tensor.shape != like.shape:
        raise ValueError(f"{name} must have shape {tuple(like.shape)}, got {tuple(tensor.shape)}")


def _lengths(seq_index: Tensor, num_seqs: int | None) -> Tensor:
    """Tokens per sequence `(S,)`, checking the layout GAE relies on (one device sync; this runs once per batch)."""
    if seq_index.ndim != 1 or seq_index.dtype != torch.long:
        raise ValueError(f"seq_index must be (N,) long, got {tuple(seq_index.shape)} {seq_index.dtype}")
    if seq_index.numel() > 1 and bool((seq_index[1:] < seq_index[:-1]).any()):
        raise ValueError("seq_index must be non-decreasing: each sequence's tokens contiguous and in order")
    lengths = torch.bincount(seq_index, minlength=num_seqs or 0)
    if num_seqs is not None and lengths.numel() > num_seqs:
        raise ValueError(f"seq_index names sequence {lengths.numel() - 1}, but num_seqs={num_seqs}")
    if bool((lengths == 0).any()):
        empty = torch.nonzero(lengths == 0).flatten().tolist()
        raise ValueError(f"sequences {empty} have no tokens; PPO needs at least one per sequence")
    return lengths


def pad_tokens(flat: Tensor, seq_index: Tensor, num_seqs: int | None = None) -> tuple[Tensor, Tensor]:
    """Flat `(N,)` -> left-aligned `(S, T_max)` rows (zeros after each sequence) and their `(S, T_max)` bool mask."""
    lengths = _lengths(seq_index, num_seqs)
    starts = torch.cumsum(lengths, 0) - lengths
    positions = torch.arange(seq_index.numel(), device=seq_index.device) - starts[seq_index]  # (N,)
    padded = flat.new_zeros(lengths.numel(), int(lengths.max()))
    padded[seq_index, positions] = flat
    mask = torch.arange(padded.shape[1], device=flat.device)[None] < lengths[:, None]
    return padded, mask


def last_token_index(seq_index: Tensor, num_seqs: int | None = None) -> Tensor:
    """`(S,)` index into the flat tokens of each sequence's last token."""
    return torch.cumsum(_lengths(seq_index, num_seqs), 0) - 1


def token_rewards(
    scores: Tensor,
    logps: Tensor,
    ref_logps: Tensor,
    seq_index: Tensor,
    kl_coef: float,
    kl_estimator: str | KLEstimator = "k1",
) -> tuple[Tensor, Tensor]:
    """Per-token PPO-RLHF rewards `(N,)`: `-kl_coef · KL_t`, plus each sequence's score on its last token.

    `KL_t` is `kl_penalty(logps, ref_logps, kl_estimator)`: `k1 = log π - log π_ref` (InstructGPT's penalty, TRL's
    default) or `k3` (TRL's `kl_estimator="k3"`). Detached: rewards are data, not a training signal.

    Args:
        scores: `(S,)` the reward model's (shaped) score of each completion.
        logps, ref_logps: `(N,)` log-probs of the completion tokens under the rollout policy and the reference.
        seq_index: `(N,)` long, non-decreasing.

    Returns:
        `(rewards, non_score_rewards)`, both `(N,)`; the second is `-kl_coef · KL_t` alone, for logging.
    """
    _require_same("ref_logps", ref_logps, logps)
    if scores.ndim != 1:
        raise ValueError(f"scores must have shape (S,), got {tuple(scores.shape)}")
    last = last_token_index(seq_index, scores.numel())
    non_score = -kl_coef * kl_penalty(logps.detach(), ref_logps.detach(), kl_estimator)
    rewards = non_score.index_add(0, last, scores.detach().to(non_score.dtype))
    return rewards, non_score


def gae(
    rewards: Tensor, values: Tensor, seq_index: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016) within each sequence: `(advantages, returns)`, `(N,)`.

    With `t` running over a sequence's tokens and `V_{T} = 0` after its last one (the episode ends there):
    `δ_t = r_t + γ V_{t+1} - V_t`, `A_t = δ_t + γλ A_{t+1}`, `returns_t = A_t + V_t` (the value targets).
    `γ = 1, λ = 0.95` are TRL's defaults; `λ = 1` gives Monte-Carlo returns minus values. Detached; not whitened
    (call `whiten` on the advantages, as TRL does).

    Args:
        rewards: `(N,)` per-token rewards from `token_rewards`.
        values: `(N,)` the value head's prediction at each completion token, from the rollout.
        seq_index: `(N,)` long, non-decreasing.
    """
    _require_same("values", values, rewards)
    padded_rewards, mask = pad_tokens(rewards.detach(), seq_index)
    padded_values, _ = pad_tokens(values.detach().to(rewards.dtype), seq_index)
    # TRL's loop on zero-padded rows: past a sequence's end rewards and values are 0, so the recursion is 0 there
    # and the last real token sees V_{t+1} = 0.
    lastgaelam = torch.zeros_like(padded_rewards[:, 0])
    reversed_advantages = []
    width = padded_rewards.shape[1]
    for t in reversed(range(width)):
        next_values = padded_values[:, t + 1] if t < width - 1 else 0.0
        delta = padded_rewards[:, t] + gamma * next_values - padded_values[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        reversed_advantages.append(lastgaelam)
    advantages = torch.stack(reversed_advantages[::-1], dim=1)[mask]  # (N,): row-major order is the flat order
    return advantages, advantages + values.detach().to(advantages.dtype)


def whiten(x: Tensor, mask: Tensor | None = None, shift_mean: bool = True) -> Tensor:
    """`(x - mean) / sqrt(var + 1e-8)` over the values `mask` selects (all when None); same shape as `x`.

    TRL's `masked_whiten`: Bessel-corrected variance; with `shift_mean=False` the mean is added back, scaling
    without centring (TRL's `whiten_rewards`, so that a positive reward stays positive). Statistics are this
    process's, as in TRL. Values outside `mask` are transformed too; callers zero them if they matter.
    """
    selected = x if mask is None else x[mask]
    if selected.numel() < 2:
        raise ValueError(f"whiten needs at least 2 values, got {selected.numel()}")
    mean = selected.mean()
    var = selected.var(unbiased=True)
    whitened = (x - mean) * torch.rsqrt(var + 1e-8)
    return whitened if shift_mean else whitened + mean


def ppo_policy_loss(
    logps: Tensor,
    old_logps: Tensor,
    advantages: Tensor,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    importance_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO-clip surrogate per token `(N,)`: `-min(r_t A_t, clip(r_t, 1 - ε, 1 + ε_high) A_t)`, `A_t` per token.

    `per_token_policy_loss` with token-level advantages and no KL term (PPO-RLHF puts the KL in the reward).
    Stats as there (`ratio`, `clipped`, `clipped_low`, `clipped_high`), plus `approx_kl`, TRL's
    `0.5 (log r)²` estimate of KL(π_old || π), watched to see how far an epoch has moved the policy.
    """
    if advantages.shape != logps.shape:
        raise ValueError(
            f"advantages must have shape {tuple(logps.shape)} (one per token), got {tuple(advantages.shape)}"
        )
    token_index = torch.arange(logps.numel(), device=logps.device)
    loss, stats = per_token_policy_loss(
        logps,
        old_logps,
        advantages,
        token_index,
        epsilon=epsilon,
        epsilon_high=epsilon_high,
        importance_weights=importance_weights,
    )
    stats["approx_kl"] = 0.5 * (logps.detach() - old_logps.detach()) ** 2
    return loss, stats


def clipped_value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, clip_range_value: float = 0.2
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-token value loss `(N,)`: `0.5 · max((V - R)², (clip(V, V_old ± c) - R)²)`, and `(N,)` stats.

    The clip keeps the value head within `c = clip_range_value` of its rollout prediction, like the policy's ratio
    clip; taking the max makes it pessimistic, so clipping can only stop the loss from falling, never hide an error.
    TRL's `cliprange_value` (default 0.2) and `vf_coef` (0.1) weights it in the total loss. Stats: `clipped`
    (bool: the clipped term won, TRL's `vf_clipfrac`).

    Args:
        values: `(N,)` the value head's predictions now (with gradient).
        old_values: `(N,)` its predictions during the rollout.
        returns: `(N,)` targets from `gae`.
    """
    _require_same("old_values", old_values, values)
    _require_same("returns", returns, values)
    old_values, returns = old_values.detach(), returns.detach()
    clipped = torch.clamp(values, old_values - clip_range_value, old_values + clip_range_value)
    unclipped_loss, clipped_loss = (values - returns) ** 2, (clipped - returns) ** 2
    return 0.5 * torch.max(unclipped_loss, clipped_loss), {"clipped": (clipped_loss > unclipped_loss).detach()}


# --- the KL coefficient --------------------------------------------------------------------------------------------


@dataclass
class FixedKLController:
    """A constant KL coefficient `value`."""

    value: float

    def update(self, current_kl: float, n_steps: int) -> None:
        """No-op: the coefficient stays fixed."""

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])


@dataclass
class AdaptiveKLController:
    """Ziegler et al. 2019, sec. 2.2: steer the KL coefficient so the policy's KL to the reference nears `target`.

    `e = clip(KL / target - 1, -0.2, 0.2)`, `β ← β · (1 + e · n_steps / horizon)`: proportional control with gain
    `n_steps / horizon` (the paper's `K_β = 0.1` per batch), the error clipped so one noisy batch cannot swing β.
    TRL's defaults: `init_kl_coef = 0.2`, `target = 6`, `horizon = 10000`; `n_steps` is the batch size.
    """

    init_kl_coef: float
    target: float
    horizon: float
    value: float = field(init=False)

    def __post_init__(self) -> None:
        if self.target <= 0 or self.horizon <= 0:
            raise ValueError(
                f"AdaptiveKLController needs target > 0 and horizon > 0, got {self.target}, {self.horizon}"
            )
        self.value = self.init_kl_coef

    def update(self, current_kl: float, n_steps: int) -> None:
        """`current_kl`: the batch's mean per-sequence KL (summed over tokens); `n_steps`: sequences in it."""
        proportional_error = min(max(current_kl / self.target - 1, -0.2), 0.2)
        self.value *= 1 + proportional_error * n_steps / self.horizon

    def state_dict(self) -> dict[str, float]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])


# --- shaping the reward model's scores -----------------------------------------------------------------------------


def penalize_missing_eos(scores: Tensor, has_eos: Tensor, penalty: float) -> Tensor:
    """`(S,)` scores with `penalty` subtracted where a completion hit the length limit without EOS (TRL's
    `missing_eos_penalty`): a truncated answer should not earn the reward of a finished one."""
    _require_same("has_eos", has_eos, scores)
    return torch.where(has_eos, scores, scores - penalty)


def clip_scores(scores: Tensor, limit: float) -> Tensor:
    """`(S,)` scores clipped to `[-limit, limit]` (TRL's `score_clip`), computed in float32 and cast back."""
    return torch.clamp(scores.float(), -limit, limit).to(scores.dtype)


@dataclass
class RunningMoments:
    """Running mean and std of every score seen so far (Chan et al.'s parallel update), for `scale_scores`.

    TRL's `RunningMoments` (`use_score_scaling`). Feed it the scores of all processes (gathered) to keep processes
    in step. Starts at mean 0, std 1.
    """

    mean: float = 0.0
    var: float = 1.0
    std: float = 1.0
    count: float = 1e-24

    @torch.no_grad()
    def update(self, xs: Tensor) -> tuple[float, float]:
        """Fold in a batch `xs`; returns the batch's own mean and Bessel std."""
        if xs.numel() < 2:
            raise ValueError(f"RunningMoments.update needs at least 2 values, got {xs.numel()}")
        xs_var, xs_mean = torch.var_mean(xs.double(), unbiased=False)
        xs_count = xs.numel()
        delta = float(xs_mean) - self.mean
        total = self.count + xs_count
        # the old sum of squares, corrected for the shift of the mean
        old_sum = self.var * self.count + delta**2 * self.count * xs_count / total
        new_var = (old_sum + float(xs_var) * xs_count) / total
        self.mean += delta * xs_count / total
        self.std = (new_var * total / (total - 1)) ** 0.5
        self.var, self.count = new_var, total
        return float(xs_mean), (float(xs_var) * xs_count / (xs_count - 1)) ** 0.5


def scale_scores(scores: Tensor, moments: RunningMoments, shift_mean: bool = False) -> Tensor:
    """`(S,)` scores divided by the running std (plus the dtype's eps), and centred on the running mean when
    `shift_mean` (TRL's `use_score_scaling` and `use_score_norm`). Call `moments.update(scores)` first, as TRL."""
    scaled = scores - moments.mean if shift_mean else scores
    return scaled / (moments.std + torch.finfo(scores.dtype).eps)
