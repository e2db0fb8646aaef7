"""GRPO/RLOO advantages and losses against hand-computed values, a naive loop, and TRL 1.16's own code.

The hand reward batch: 2 prompts × G = 3, rewards (1, 0, 2 | 3, 3, 3).
Group 0: mean 1, deviations (0, -1, 1), Bessel std sqrt((0 + 1 + 1) / 2) = 1. Group 1: all equal, std 0.
Whole batch: mean 2, deviations (-1, -2, 0, 1, 1, 1), Bessel variance 8 / 5 = 1.6, std 1.264911.

The hand policy batch: 2 sequences of 2 tokens, seq_index (0, 0, 1, 1), advantages (+1, -1), ratios
r = (1.5, 0.5, 1.5, 0.5) (old log-probs 0, log-probs log r), ε = 0.2.
"""

from __future__ import annotations

import inspect
import math
import textwrap
import warnings
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from torch.testing import assert_close

from alignline.losses.grpo import (
    _AGGREGATES,
    _KL,
    _SCALES,
    GRPOLossType,
    KLEstimator,
    ScaleRewards,
    aggregate,
    group_advantages,
    kl_penalty,
    loss_count,
    nanstd,
    per_token_policy_loss,
    rloo_advantages,
    sequence_sums,
    truncated_importance_weights,
    zero_std_groups,
)

F64 = dict(dtype=torch.float64)
REWARDS = torch.tensor([1.0, 0.0, 2.0, 3.0, 3.0, 3.0], **F64)
LOG2 = math.log(2)


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, **F64)


# --- advantages -----------------------------------------------------------------------------------------------------


def test_group_advantages_hand_computed():
    """group: (0, ∓1/(1 + 1e-4)) = (0, -0.9999, 0.9999); the zero-variance group gets 0/(0 + 1e-4) = 0.
    batch: the group means stay, the std is the batch's: ±1/(1.264911 + 1e-4) = ±0.790507.
    none (Dr. GRPO): the deviations themselves."""
    a = 0.9999000099990001
    assert_close(group_advantages(REWARDS, 3), _t(0, -a, a, 0, 0, 0))
    b = 0.7905069199827631
    assert_close(group_advantages(REWARDS, 3, scale_rewards="batch"), _t(0, -b, b, 0, 0, 0))
    assert_close(group_advantages(REWARDS, 3, scale_rewards=ScaleRewards.NONE), _t(0, -1, 1, 0, 0, 0))
    # eps is added to the std, outside the root: with eps = 1 the group's advantages are ±1/2
    assert_close(group_advantages(REWARDS, 3, eps=1.0), _t(0, -0.5, 0.5, 0, 0, 0))


def test_rloo_advantages_hand_computed():
    """Group 0: R = 1 against (0 + 2)/2 = 1 → 0; R = 0 against (1 + 2)/2 → -1.5; R = 2 against (1 + 0)/2 → 1.5,
    i.e. G/(G-1) = 1.5 times the deviations. Group 1: 3 - 3 = 0."""
    assert_close(rloo_advantages(REWARDS, 3), _t(0, -1.5, 1.5, 0, 0, 0))
    # normalized: mean 0, Bessel std sqrt(4.5 / 5) = 0.948683 → ±1.5 / (0.948683 + 1e-4) = ±1.581029
    norm = 1.5 / (math.sqrt(0.9) + 1e-4)
    assert_close(rloo_advantages(REWARDS, 3, normalize=True), _t(0, -norm, norm, 0, 0, 0))


def test_zero_std_groups_and_nan_rewards():
    assert zero_std_groups(REWARDS, 3).tolist() == [False, True]
    assert zero_std_groups(REWARDS, 1).tolist() == [True] * 6
    # An unscorable reward (NaN) is left out of its group: group 0 is (1, 2): mean 1.5, std 0.707107; it gets 0.
    rewards = _t(1, math.nan, 2, 3, 3, 3)
    s = 0.5 / (math.sqrt(0.5) + 1e-4)
    assert_close(group_advantages(rewards, 3), _t(-s, 0, s, 0, 0, 0))
    assert_close(rloo_advantages(rewards, 3), _t(-1, 0, 1, 0, 0, 0))
    assert zero_std_groups(_t(1, math.nan, math.nan, 3, 3, 4), 3).tolist() == [True, False]


def test_nanstd_is_bessel_corrected():
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0), **F64)
    assert_close(nanstd(x, dim=1), x.std(dim=1))
    assert_close(nanstd(x), x.std())
    assert torch.isnan(nanstd(_t(1.0, math.nan)))


# --- KL, importance weights -----------------------------------------------------------------------------------------


def test_kl_estimators_hand_computed():
    """π = 0.5, π_ref = 0.25, x = log π_ref - log π = -log 2: k1 = log 2 = 0.693147, k2 = (log 2)²/2 = 0.240227,
    k3 = 1/2 + log 2 - 1 = 0.193147. Swapped (x = log 2): k1 = -0.693147, k2 the same, k3 = 2 - log 2 - 1 = 0.306853.
    Equal log-probs: all three are 0."""
    logps, ref = _t(math.log(0.5), math.log(0.25), -1.0), _t(math.log(0.25), math.log(0.5), -1.0)
    assert_close(kl_penalty(logps, ref, "k1"), _t(LOG2, -LOG2, 0))
    assert_close(kl_penalty(logps, ref, "k2"), _t(0.2402265069591007, 0.2402265069591007, 0))
    assert_close(kl_penalty(logps, ref), _t(0.1931471805599454, 0.3068528194400546, 0))


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_kl_loss_term_expected_gradients(estimator):
    """The docstring's claim, exactly on a 5-token vocabulary: the expectation over y ~ π (weights π(y), detached)
    of ∇ k(y) is 0 for k1, ∇KL(π || π_ref) for k2, ∇KL(π_ref || π) for k3."""
    g = torch.Generator().manual_seed(3)
    theta = torch.randn(5, generator=g, **F64).requires_grad_()
    ref = torch.log_softmax(torch.randn(5, generator=g, **F64), 0)
    logp = torch.log_softmax(theta, 0)
    (got,) = torch.autograd.grad((torch.exp(logp).detach() * kl_penalty(logp, ref, estimator)).sum(), theta)
    if estimator == "k1":
        assert_close(got, torch.zeros_like(got))
        return
    logp = torch.log_softmax(theta, 0)
    kl = (torch.exp(logp) * (logp - ref)).sum() if estimator == "k2" else (torch.exp(ref) * (ref - logp)).sum()
    assert_close(got, torch.autograd.grad(kl, theta)[0])


def test_truncated_importance_weights():
    """exp(trainer - generator): exp(log 2) = 2, exp(-log 2) = 0.5, exp(2 log 2) = 4 → capped at 3; NaN → 1."""
    trainer = _t(LOG2, 0, 2 * LOG2, 0).requires_grad_()
    w = truncated_importance_weights(trainer, _t(0, LOG2, 0, math.nan), cap=3.0)
    assert_close(w, _t(2, 0.5, 3, 1))
    assert not w.requires_grad


# --- the policy loss ------------------------------------------------------------------------------------------------

SEQ = torch.tensor([0, 0, 1, 1])
ADV = _t(1.0, -1.0)
RATIOS = _t(1.5, 0.5, 1.5, 0.5)


def _policy(**kwargs):
    logps = RATIOS.log().requires_grad_()
    loss, stats = per_token_policy_loss(logps, torch.zeros(4, **F64), ADV, SEQ, **kwargs)
    return logps, loss, stats


def test_policy_loss_clips_both_sides_hand_computed():
    """A = +1, r = 1.5: min(1.5, 1.2) = 1.2 → -1.2, clipped high (no gradient).
    A = +1, r = 0.5: min(0.5, 0.8) = 0.5 → -0.5 (gradient -A r = -0.5).
    A = -1, r = 1.5: min(-1.5, -1.2) = -1.5 → 1.5 (gradient +1.5).
    A = -1, r = 0.5: min(-0.5, -0.8) = -0.8 → 0.8, clipped low (no gradient)."""
    logps, loss, stats = _policy(epsilon=0.2)
    assert_close(loss, _t(-1.2, -0.5, 1.5, 0.8))
    loss.sum().backward()
    assert_close(logps.grad, _t(0, -0.5, 1.5, 0))
    assert stats["clipped_high"].tolist() == [True, False, False, False]
    assert stats["clipped_low"].tolist() == [False, False, False, True]
    assert stats["clipped"].tolist() == [True, False, False, True]
    assert_close(stats["ratio"], RATIOS)
    assert "kl" not in stats and not stats["ratio"].requires_grad


def test_policy_loss_epsilon_high_and_delta():
    """ε_high = 0.6 (clip-higher): r = 1.5 < 1.6 now unclipped for A = +1 → -1.5, gradient -1.5; the low side
    is unchanged. delta = 1.3 caps the unclipped ratio: A = -1, r = 1.5: min(-1.3, -1.2) = -1.3 → 1.3."""
    logps, loss, stats = _policy(epsilon=0.2, epsilon_high=0.6)
    assert_close(loss, _t(-1.5, -0.5, 1.5, 0.8))
    loss.sum().backward()
    assert_close(logps.grad, _t(-1.5, -0.5, 1.5, 0))
    assert stats["clipped"].tolist() == [False, False, False, True]
    _, loss, _ = _policy(epsilon=0.2, delta=1.3)
    assert_close(loss, _t(-1.2, -0.5, 1.3, 0.8))


def test_policy_loss_kl_and_importance_weights():
    """β = 0.1 adds 0.1 · k3 per token; weights (2, 1, 1, 0.5) scale the policy term only:
    token 0: 2 · -1.2 + 0.1 k3_0, ..., token 3: 0.5 · 0.8 + 0.1 k3_3. With β = 0 the KL is only reported."""
    ref = _t(-0.3, 0.2, 0.0, -1.0)
    logps = RATIOS.log()
    k3 = torch.exp(ref - logps) - (ref - logps) - 1
    weights = _t(2, 1, 1, 0.5)
    _, loss, stats = _policy(ref_logps=ref, beta=0.1, importance_weights=weights)
    assert_close(loss, _t(-2.4, -0.5, 1.5, 0.4) + 0.1 * k3)
    assert_close(stats["kl"], k3)
    _, loss, stats = _policy(ref_logps=ref)
    assert_close(loss, _t(-1.2, -0.5, 1.5, 0.8))
    assert_close(stats["kl"], k3)


def test_single_update_is_plain_policy_gradient():
    """old = logps.detach(): r = 1, loss = -A per token, gradient -A (nothing clipped)."""
    logps = torch.randn(4, **F64).requires_grad_()
    loss, stats = per_token_policy_loss(logps, logps.detach(), ADV, SEQ)
    assert_close(loss, _t(-1, -1, 1, 1))
    loss.sum().backward()
    assert_close(logps.grad, _t(-1, -1, 1, 1))
    assert not stats["clipped"].any()


# --- aggregation ----------------------------------------------------------------------------------------------------


def test_aggregate_hand_computed():
    """seq_index (0, 1, 1, 1), token losses (2, 1, 2, 6); a third sequence has no counted token.
    grpo: 2/1 + 9/3 = 5 over 3 sequences. bnpo: 11/4 = 2.75 over 1. dr_grpo (L = 4): 11 over 3 · 4 = 12.
    dapo: 11 over 4 tokens."""
    loss, idx = _t(2, 1, 2, 6), torch.tensor([0, 1, 1, 1])
    expected = {"grpo": (5.0, 3), "bnpo": (2.75, 1), "dr_grpo": (11.0, 12), "dapo": (11.0, 4)}
    for loss_type, (total, count) in expected.items():
        got_total, got_count = aggregate(loss, idx, 3, loss_type, max_completion_length=4)
        assert_close(got_total, _t(total)[0])
        assert got_count == count == loss_count(loss_type, 4, 3, max_completion_length=4), loss_type


def test_sequence_sums():
    assert_close(sequence_sums(_t(2, 1, 2, 6), torch.tensor([0, 2, 2, 2]), 3), _t(2, 0, 9))


def _naive_step_loss(loss_type, seqs, max_len):
    """The step loss by plain Python loops: `seqs` is a list of micro-batches, each a list of token-loss lists."""
    if loss_type == "grpo":
        means = [sum(s) / max(len(s), 1) for mb in seqs for s in mb]
        return sum(means) / len(means)
    if loss_type == "bnpo":
        mb_means = [sum(t for s in mb for t in s) / sum(len(s) for s in mb) for mb in seqs]
        return sum(mb_means) / len(mb_means)
    total = sum(t for mb in seqs for s in mb for t in s)
    if loss_type == "dr_grpo":
        return total / (sum(len(mb) for mb in seqs) * max_len)
    return total / sum(len(s) for mb in seqs for s in mb)


def _random_flat(seed, lengths):
    g = torch.Generator().manual_seed(seed)
    seq_index = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    return torch.randn(int(sum(lengths)), generator=g, **F64), seq_index


@pytest.mark.parametrize("loss_type", [t.value for t in GRPOLossType])
def test_accumulating_micro_batches_matches_naive_loop(loss_type):
    """Two micro-batches of 2 sequences (lengths 1, 4 | 3, 2): the summed sums over the summed counts equal the
    naive loop's step loss. For dapo, dr_grpo and grpo that is also the one-big-batch value (accumulation is
    exact); bnpo is, as TRL's, the mean of micro-batch token means, not the big batch's token mean."""
    lengths = [1, 4, 3, 2]
    loss, idx = _random_flat(1, lengths)
    split = lengths[0] + lengths[1]
    micro = [(loss[:split], idx[:split]), (loss[split:], idx[split:] - 2)]
    parts = [aggregate(mb_loss, mb_idx, 2, loss_type, max_completion_length=5) for mb_loss, mb_idx in micro]
    accumulated = sum(total for total, _ in parts) / sum(count for _, count in parts)
    nested = [[loss[idx == s].tolist() for s in (0, 1)], [loss[idx == s].tolist() for s in (2, 3)]]
    assert accumulated.item() == pytest.approx(_naive_step_loss(loss_type, nested, 5), abs=1e-12)
    total, count = aggregate(loss, idx, 4, loss_type, max_completion_length=5)
    if loss_type != "bnpo":
        assert_close(accumulated, total / count)
    else:
        assert_close(total / count, loss.mean())


def test_every_enum_has_a_table_entry():
    assert set(_SCALES) == set(ScaleRewards) and set(_KL) == set(KLEstimator) and set(_AGGREGATES) == set(GRPOLossType)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: group_advantages(REWARDS, 4), "do not split into groups of group_size=4"),
        (lambda: group_advantages(REWARDS, 3, scale_rewards="std"), "unknown scale_rewards 'std'"),
        (lambda: group_advantages(REWARDS[:, None], 3), r"shape \(S,\)"),
        (lambda: rloo_advantages(REWARDS, 1), "group_size >= 2"),
        (lambda: kl_penalty(RATIOS, RATIOS[:2]), "shape of logps"),
        (lambda: kl_penalty(RATIOS, RATIOS, "k4"), "unknown kl_estimator 'k4'"),
        (lambda: per_token_policy_loss(RATIOS, RATIOS, ADV, SEQ, beta=0.1), "needs ref_logps"),
        (lambda: per_token_policy_loss(RATIOS, RATIOS[:, None], ADV, SEQ), r"old_logps must have shape \(4,\)"),
        (lambda: per_token_policy_loss(RATIOS, RATIOS, ADV[:, None], SEQ), r"advantages must have shape \(S,\)"),
        (lambda: per_token_policy_loss(RATIOS, RATIOS, ADV, SEQ, importance_weights=ADV), "importance_weights"),
        (lambda: aggregate(RATIOS, SEQ, 2, "dr_grpo"), "needs max_completion_length"),
        (lambda: aggregate(RATIOS, SEQ, 2, "sum"), "unknown loss_type 'sum'"),
    ],
)
def test_rejects_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- TRL's own code on the same batch -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trl_trainers():
    pytest.importorskip("trl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from trl import GRPOTrainer, RLOOTrainer
        from trl.trainer.utils import nanstd as trl_nanstd
    return SimpleNamespace(grpo=GRPOTrainer, rloo=RLOOTrainer, nanstd=trl_nanstd)


def _trl_block(method, first: str, last: str) -> str:
    """The lines of a TRL method from the one starting with `first` to the one starting with `last`, dedented.

    TRL computes advantages inline in its 400-line `_generate_and_score_completions`; running that block as TRL
    ships it (rather than a copy) makes a TRL change fail here instead of silently diverging."""
    lines = inspect.getsource(method).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(first))
    end = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(last))
    return textwrap.dedent("\n".join(lines[start : end + 1]))


def _trl_grpo_advantages(trl, rewards, group_size, scale_rewards):
    block = _trl_block(
        trl.grpo._generate_and_score_completions,
        'if self.multi_objective_aggregation == "sum_then_normalize":',
        "advantages = torch.nan_to_num(advantages, nan=0.0)",
    )
    rewards_per_func = rewards[:, None]
    stub = SimpleNamespace(
        multi_objective_aggregation="sum_then_normalize",
        scale_rewards=scale_rewards,
        reward_weights=torch.ones(1, **F64),
        reward_funcs=[None],
    )
    scope = dict(
        self=stub,
        rewards_per_func=rewards_per_func,
        num_generations=group_size,
        torch=torch,
        device=torch.device("cpu"),
        nanstd=trl.nanstd,
        unscorable_mask=torch.isnan(rewards_per_func).all(dim=1),
    )
    exec(block, scope)  # noqa: S102 - TRL's own installed source, see _trl_block
    return scope["advantages"], scope["is_std_zero"]


def _reward_batch(seed, num_groups=4, group_size=3):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randint(0, 3, (num_groups * group_size,), generator=g).to(torch.float64)
    rewards[group_size : 2 * group_size] = 1.0  # one zero-variance group
    rewards[-1] = math.nan  # one unscorable completion
    return rewards


@pytest.mark.parametrize("scale_rewards", [s.value for s in ScaleRewards])
@pytest.mark.parametrize("group_size", [2, 3])
def test_group_advantages_match_trl(trl_trainers, scale_rewards, group_size):
    rewards = _reward_batch(group_size, group_size=group_size)
    expected, is_std_zero = _trl_grpo_advantages(trl_trainers, rewards, group_size, scale_rewards)
    assert_close(group_advantages(rewards, group_size, scale_rewards), expected, atol=1e-6, rtol=1e-6)
    if scale_rewards != "batch":
        zero = zero_std_groups(rewards, group_size).repeat_interleave(group_size)
        # TRL's NaN std (a group with a single scorable reward: the last one at G = 2) is not "zero"; ours is.
        single = (~torch.isnan(rewards)).reshape(-1, group_size).sum(1).repeat_interleave(group_size) < 2
        assert zero[~single].tolist() == is_std_zero[~single].tolist()
        assert zero[single].all() and single.any() == (group_size == 2)


@pytest.mark.parametrize("normalize", [False, True])
def test_rloo_advantages_match_trl(trl_trainers, normalize):
    rewards = _reward_batch(7)
    block = _trl_block(
        trl_trainers.rloo._generate_and_score_completions,
        "grouped_rewards = rewards.view(-1, num_generations)",
        "advantages = torch.nan_to_num(advantages, nan=0.0)",
    )
    scope = dict(
        self=SimpleNamespace(normalize_advantages=normalize),
        rewards=rewards.clone(),
        num_generations=3,
        torch=torch,
        nanstd=trl_trainers.nanstd,
    )
    exec(block, scope)  # noqa: S102 - TRL's own installed source, see _trl_block
    assert_close(rloo_advantages(rewards, 3, normalize=normalize), scope["advantages"], atol=1e-6, rtol=1e-6)


def _padded(flat, seq_index, num_seqs, width, fill=0.0):
    """Flat `(N,)` token values -> `(S, width)` rows, completions left-aligned, `fill` after each."""
    out = torch.full((num_seqs, width), fill, dtype=flat.dtype)
    positions = torch.cat([torch.arange(int(n)) for n in torch.bincount(seq_index, minlength=num_seqs)])
    out[seq_index, positions] = flat.detach() if not flat.requires_grad else flat
    return out, positions


def _trl_grpo_loss(
    trl,
    logps,
    old,
    ref,
    advantages,
    seq_index,
    num_seqs,
    width,
    *,
    loss_type,
    epsilon,
    epsilon_high,
    beta,
    delta,
    weights,
):
    """TRL 1.16's `GRPOTrainer._compute_loss`, unbound, on a stub trainer whose model returns the given per-token
    log-probs as a padded `(S, T)` tensor; one process, no accumulation. Returns (loss, metrics, padded logps)."""
    mask = _padded(torch.ones_like(logps), seq_index, num_seqs, width)[0].long()
    padded_logps = _padded(logps.detach(), seq_index, num_seqs, width)[0].requires_grad_()
    inputs = {
        "prompt_ids": torch.zeros(num_seqs, 1, dtype=torch.long),
        "prompt_mask": torch.ones(num_seqs, 1).long(),
        "completion_ids": torch.zeros(num_seqs, width, dtype=torch.long),
        "completion_mask": mask,
        "advantages": advantages,
        "old_per_token_logps": _padded(old, seq_index, num_seqs, width)[0],
        "ref_per_token_logps": _padded(ref, seq_index, num_seqs, width)[0],
        "num_items_in_batch": mask.sum(),
    }
    if weights is not None:
        inputs["importance_sampling_ratio"] = _padded(weights, seq_index, num_seqs, width, fill=1.0)[0]
    identity = lambda x: x  # noqa: E731
    stub = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *args, **kwargs: (padded_logps, torch.zeros_like(padded_logps), None),
        aux_loss_enabled=False,
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        beta=beta,
        loss_type=loss_type,
        epsilon_low=epsilon,
        epsilon_high=epsilon if epsilon_high is None else epsilon_high,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=delta, steps_per_generation=1),
        use_vllm=weights is not None,
        vllm_importance_sampling_correction=True,
        model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        max_completion_length=width,
        _entropy_bonus_enabled=False,
        accelerator=SimpleNamespace(num_processes=1, gather=identity, reduce=lambda x, reduction: x),
        _metrics=defaultdict(lambda: defaultdict(list)),
    )
    loss = trl.grpo._compute_loss(stub, None, inputs)
    return loss, stub._metrics["train"], padded_logps, mask


def _policy_batch(seed, lengths=(3, 1, 4, 2, 5, 2)):
    g = torch.Generator().manual_seed(seed)
    seq_index = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    n = len(seq_index)
    old = -3 * torch.rand(n, generator=g, **F64) - 0.05
    logps = old + 0.4 * torch.randn(n, generator=g, **F64)  # ratios spread over e^±0.8: both clips are hit
    ref = old + 0.3 * torch.randn(n, generator=g, **F64)
    rewards = torch.randint(0, 4, (len(lengths),), generator=g).to(torch.float64)
    weights = torch.exp(0.3 * torch.randn(n, generator=g, **F64)).clamp(max=1.2)
    return logps, old, ref, rewards, seq_index, weights


@pytest.mark.parametrize("loss_type", [t.value for t in GRPOLossType])
@pytest.mark.parametrize(
    "epsilon_high,beta,delta,tis",
    [
        (None, 0.0, None, False),
        (0.28, 0.04, None, False),  # DAPO clip-higher, plus the k3 KL
        (None, 0.1, 1.5, True),  # two-sided clip and truncated importance weights
    ],
)
def test_policy_loss_matches_trl(trl_trainers, loss_type, epsilon_high, beta, delta, tis):
    logps, old, ref, rewards, seq_index, weights = _policy_batch(11)
    num_seqs, width = 6, 6
    advantages = group_advantages(rewards, 2)
    w = weights if tis else None
    trl_loss, metrics, padded_logps, mask = _trl_grpo_loss(
        trl_trainers,
        logps,
        old,
        ref,
        advantages,
        seq_index,
        num_seqs,
        width,
        loss_type=loss_type,
        epsilon=0.2,
        epsilon_high=epsilon_high,
        beta=beta,
        delta=delta,
        weights=w,
    )
    flat = logps.clone().requires_grad_()
    per_token, stats = per_token_policy_loss(
        flat,
        old,
        advantages,
        seq_index,
        epsilon=0.2,
        epsilon_high=epsilon_high,
        ref_logps=ref,
        beta=beta,
        importance_weights=w,
        delta=delta,
    )
    total, count = aggregate(per_token, seq_index, num_seqs, loss_type, max_completion_length=width)
    ours = total / count
    assert_close(ours, trl_loss, atol=1e-6, rtol=1e-6)
    ours.backward()
    trl_loss.backward()
    assert_close(flat.grad, padded_logps.grad[mask.bool()], atol=1e-6, rtol=1e-6)
    assert 0 < stats["clipped"].sum() < len(flat)
    assert metrics["clip_ratio/region_mean"][0] == pytest.approx(stats["clipped"].double().mean().item(), abs=1e-6)
    assert metrics["clip_ratio/low_mean"][0] == pytest.approx(stats["clipped_low"].double().mean().item(), abs=1e-6)
    if beta:
        assert metrics["kl"][0] == pytest.approx(stats["kl"].mean().item(), abs=1e-6)


def test_truncated_importance_weights_match_trl(trl_trainers):
    """TRL 1.16's `GRPOTrainer._generate_and_score_completions` block that builds
    `vllm_importance_sampling_ratio` (token_truncate, clip_max = the cap), run as TRL ships it on padded rows,
    gives our flat weights on the completion tokens; NaN generator log-probs included (weight 1)."""
    lines = inspect.getsource(trl_trainers.grpo._generate_and_score_completions).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("mask = completion_mask if tool_mask"))
    end = next(
        i for i in range(start, len(lines)) if lines[i].strip().startswith("# Compute the per-token log probabil")
    )
    block = textwrap.dedent("\n".join(lines[start:end]))
    g = torch.Generator().manual_seed(5)
    lengths = (3, 1, 4, 2)
    seq_index = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    n = len(seq_index)
    trainer = -3 * torch.rand(n, generator=g, **F64)
    generator = trainer + 0.8 * torch.randn(n, generator=g, **F64)  # ratios up to e^±2: the cap is hit
    generator[2] = math.nan
    width = max(lengths)
    mask = _padded(torch.ones(n, **F64), seq_index, len(lengths), width)[0]
    stub = SimpleNamespace(
        vllm_importance_sampling_mode="token_truncate",
        vllm_importance_sampling_clip_min=None,
        vllm_importance_sampling_clip_max=2.0,
    )
    scope = dict(
        self=stub,
        completion_mask=mask,
        tool_mask=None,
        old_per_token_logps=_padded(trainer, seq_index, len(lengths), width)[0],
        sampling_per_token_logps=_padded(generator, seq_index, len(lengths), width)[0],
        torch=torch,
        math=math,
    )
    exec(block, scope)  # noqa: S102 - TRL's own installed source, see _trl_block
    positions = _padded(trainer, seq_index, len(lengths), width)[1]
    expected = scope["vllm_importance_sampling_ratio"][seq_index, positions]
    got = truncated_importance_weights(trainer, generator, cap=2.0)
    assert_close(got, expected)
    assert (got == 2.0).any() and got[2] == 1.0
