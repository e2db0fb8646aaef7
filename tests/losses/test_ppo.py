"""PPO-RLHF pieces against hand-computed values, naive loops, and TRL's last PPOTrainer source where available.

TRL 1.16 (the dev dependency) ships no PPO trainer; `trl.experimental.ppo` (TRL 0.26) was the last. The TRL tests
below run that file's own functions and its reward/GAE block when they can find it: in the installed `trl`, or at
the path in `ALIGNLINE_TRL_PPO_SOURCE` (e.g. `trl/experimental/ppo/ppo_trainer.py` unpacked from the 0.26 wheel);
otherwise they skip.

The hand GAE batch: sequence 0 has 3 tokens, rewards (0, 0, 1), values (0.5, 0.6, 0.7); sequence 1 one token,
reward 2, value 0.5.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.testing import assert_close

from alignline.losses.grpo import aggregate
from alignline.losses.ppo import (
    AdaptiveKLController,
    FixedKLController,
    RunningMoments,
    clip_scores,
    clipped_value_loss,
    gae,
    last_token_index,
    pad_tokens,
    penalize_missing_eos,
    ppo_policy_loss,
    scale_scores,
    token_rewards,
    whiten,
)

F64 = dict(dtype=torch.float64)
SEQ = torch.tensor([0, 0, 0, 1])
REWARDS = torch.tensor([0.0, 0.0, 1.0, 2.0], **F64)
VALUES = torch.tensor([0.5, 0.6, 0.7, 0.5], **F64)


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, **F64)


def test_gae_hand_computed():
    """γ = 1, λ = 0.5. Sequence 0, backwards (V after the last token is 0):
    δ2 = 1 + 0 - 0.7 = 0.3, A2 = 0.3; δ1 = 0 + 0.7 - 0.6 = 0.1, A1 = 0.1 + 0.5·0.3 = 0.25;
    δ0 = 0 + 0.6 - 0.5 = 0.1, A0 = 0.1 + 0.5·0.25 = 0.225. Returns A + V = (0.725, 0.85, 1.0).
    Sequence 1 is its own episode: δ = 2 - 0.5 = 1.5 (nothing leaks from sequence 0). Returns 2."""
    advantages, returns = gae(REWARDS, VALUES, SEQ, gamma=1.0, lam=0.5)
    assert_close(advantages, _t(0.225, 0.25, 0.3, 1.5))
    assert_close(returns, _t(0.725, 0.85, 1.0, 2.0))


def test_gae_lambda_one_gives_discounted_returns():
    """γ = 0.5, λ = 1: returns are the discounted rewards-to-go, R2 = 1, R1 = 0.5, R0 = 0.25; advantages
    R - V = (-0.25, -0.1, 0.3); e.g. A1 = δ1 + γ A2 = (0 + 0.5·0.7 - 0.6) + 0.5·0.3 = -0.1."""
    advantages, returns = gae(REWARDS, VALUES, SEQ, gamma=0.5, lam=1.0)
    assert_close(returns, _t(0.25, 0.5, 1.0, 2.0))
    assert_close(advantages, _t(-0.25, -0.1, 0.3, 1.5))


def _naive_gae(rewards, values, lengths, gamma, lam):
    out, start = [], 0
    for n in lengths:
        r, v = rewards[start : start + n], values[start : start + n]
        adv, last = [0.0] * n, 0.0
        for t in reversed(range(n)):
            next_value = v[t + 1] if t + 1 < n else 0.0
            last = r[t] + gamma * next_value - v[t] + gamma * lam * last
            adv[t] = last
        out += adv
        start += n
    return out


def test_gae_matches_naive_loop():
    lengths = [3, 1, 5, 2]
    g = torch.Generator().manual_seed(0)
    seq_index = torch.repeat_interleave(torch.arange(4), torch.tensor(lengths))
    rewards, values = torch.randn(11, generator=g, **F64), torch.randn(11, generator=g, **F64)
    advantages, returns = gae(rewards, values, seq_index, gamma=0.9, lam=0.8)
    assert_close(advantages, _t(*_naive_gae(rewards.tolist(), values.tolist(), lengths, 0.9, 0.8)))
    assert_close(returns, advantages + values)


def test_token_rewards_hand_computed():
    """k1 per token (0.1, -0.2, 0.3 | 0.5), kl_coef 0.1: non-score (-0.01, 0.02, -0.03 | -0.05); the scores (1, 2)
    land on each sequence's last token: (-0.01, 0.02, 0.97 | 1.95)."""
    ref = _t(-1.0, -1.0, -1.0, -1.0)
    logps = ref + _t(0.1, -0.2, 0.3, 0.5)
    rewards, non_score = token_rewards(_t(1.0, 2.0), logps, ref, SEQ, kl_coef=0.1)
    assert_close(non_score, _t(-0.01, 0.02, -0.03, -0.05))
    assert_close(rewards, _t(-0.01, 0.02, 0.97, 1.95))
    assert last_token_index(SEQ).tolist() == [2, 3]
    # k3 instead: exp(-0.1) - 1 + 0.1 = 0.0048374 on the first token
    _, non_score = token_rewards(_t(1.0, 2.0), logps, ref, SEQ, kl_coef=1.0, kl_estimator="k3")
    assert non_score[0].item() == pytest.approx(-(math.exp(-0.1) - 1 + 0.1))


def test_whiten_hand_computed():
    """x = (1, 2, 3, 6): mean 3, squared deviations 4 + 1 + 0 + 9 = 14, Bessel variance 14/3;
    whitened (x - 3)/sqrt(14/3 + 1e-8) = (-0.92582, -0.46291, 0, 1.38873); shift_mean=False adds 3 back.
    Masked: (1, 2, 3 | 100) with the last left out: mean 2, variance 1 → (-1, 0, 1, 98)."""
    x = _t(1, 2, 3, 6)
    scale = 1 / math.sqrt(14 / 3 + 1e-8)
    assert_close(whiten(x), _t(-2, -1, 0, 3) * scale)
    assert_close(whiten(x, shift_mean=False), _t(-2, -1, 0, 3) * scale + 3)
    masked = whiten(_t(1, 2, 3, 100), mask=torch.tensor([True, True, True, False]))
    assert_close(masked, _t(-1, 0, 1, 98) / math.sqrt(1 + 1e-8))
    with pytest.raises(ValueError, match="at least 2 values"):
        whiten(_t(1.0))


def test_clipped_value_loss_hand_computed():
    """c = 0.2.
    tok 0: V = 1, V_old = 0.5, R = 0.8: clip(1, 0.3, 0.7) = 0.7; (0.2)² = 0.04 vs (−0.1)² = 0.01: 0.5·0.04 = 0.02,
    unclipped wins, gradient V - R = 0.2.
    tok 1: V = 1, V_old = 0.5, R = 2: (−1)² = 1 vs (0.7 - 2)² = 1.69: 0.845, clipped wins, gradient 0.
    tok 2: V = 0, V_old = 1, R = 0: 0 vs (0.8)² = 0.64: 0.32 (pessimistic: the clip never lowers the loss).
    tok 3: V = 1, V_old = 0.9, R = 0: within the clip: 0.5, gradient 1."""
    values = _t(1.0, 1.0, 0.0, 1.0).requires_grad_()
    loss, stats = clipped_value_loss(values, _t(0.5, 0.5, 1.0, 0.9), _t(0.8, 2.0, 0.0, 0.0), clip_range_value=0.2)
    assert_close(loss, _t(0.02, 0.845, 0.32, 0.5))
    assert stats["clipped"].tolist() == [False, True, True, False]
    loss.sum().backward()
    assert_close(values.grad, _t(0.2, 0.0, 0.0, 1.0))


def test_ppo_policy_loss_per_token_advantages():
    """Ratios (1.5, 0.5, 1.5), advantages (1, -1, -2), ε = 0.2: -min(1.5, 1.2) = -1.2; -min(-0.5, -0.8) = 0.8;
    -min(-3, -2.4) = 3. approx_kl = (log 1.5)²/2 = 0.082202, (log 0.5)²/2 = 0.240227."""
    logps = _t(1.5, 0.5, 1.5).log()
    loss, stats = ppo_policy_loss(logps, torch.zeros(3, **F64), _t(1.0, -1.0, -2.0), epsilon=0.2)
    assert_close(loss, _t(-1.2, 0.8, 3.0))
    assert stats["clipped"].tolist() == [True, True, False]
    assert_close(stats["approx_kl"], _t(math.log(1.5) ** 2 / 2, math.log(2) ** 2 / 2, math.log(1.5) ** 2 / 2))


def test_adaptive_kl_controller_follows_its_formula():
    """β = 0.2, target 6, horizon 10000. KL 9: e = clip(9/6 - 1) = clip(0.5) = 0.2, β = 0.2 · (1 + 0.2 · 256/10000)
    = 0.201024. KL 5.4: e = -0.1, β = 0.201024 · (1 - 0.1 · 100/10000) = 0.200822976."""
    ctl = AdaptiveKLController(init_kl_coef=0.2, target=6.0, horizon=10000)
    assert ctl.value == 0.2
    ctl.update(9.0, 256)
    assert ctl.value == pytest.approx(0.201024, abs=1e-15)
    ctl.update(5.4, 100)
    assert ctl.value == pytest.approx(0.200822976, abs=1e-15)
    g = torch.Generator().manual_seed(0)
    expected = ctl.value
    for kl, n in zip((12 * torch.rand(20, generator=g)).tolist(), torch.randint(1, 512, (20,), generator=g).tolist()):
        ctl.update(kl, n)
        expected *= 1 + max(-0.2, min(0.2, kl / 6.0 - 1)) * n / 10000
    assert ctl.value == pytest.approx(expected, rel=1e-12)
    resumed = AdaptiveKLController(0.2, 6.0, 10000)
    resumed.load_state_dict(ctl.state_dict())
    assert resumed.value == ctl.value
    fixed = FixedKLController(0.05)
    fixed.update(100.0, 64)
    assert fixed.value == 0.05
    with pytest.raises(ValueError, match="target > 0"):
        AdaptiveKLController(0.2, 0.0, 10000)


def test_score_shaping():
    """Missing EOS: 1 - 2 = -1. Clip at 1.5: (-1.5, 0.5, 1.5). Running moments over (1, 2, 3, 6) from the prior
    (mean 0, var 1, count 1e-24): mean 3, Bessel std sqrt(14/3) = 2.160247; scaled 6 / (2.160247 + eps)."""
    scores = _t(1.0, 0.5, 3.0)
    assert_close(penalize_missing_eos(scores, torch.tensor([False, True, True]), 2.0), _t(-1.0, 0.5, 3.0))
    assert_close(clip_scores(_t(-4.0, 0.5, 3.0), 1.5), _t(-1.5, 0.5, 1.5))
    moments = RunningMoments()
    batch_mean, batch_std = moments.update(_t(1, 2, 3, 6))
    assert (batch_mean, batch_std) == pytest.approx((3.0, math.sqrt(14 / 3)))
    assert (moments.mean, moments.std) == pytest.approx((3.0, math.sqrt(14 / 3)))
    eps = torch.finfo(torch.float64).eps
    assert_close(scale_scores(_t(6.0), moments), _t(6 / (math.sqrt(14 / 3) + eps)))
    assert_close(scale_scores(_t(6.0), moments, shift_mean=True), _t(3 / (math.sqrt(14 / 3) + eps)))
    # a second batch folds in as if both had been seen at once
    moments.update(_t(0, 10))
    everything = _t(1, 2, 3, 6, 0, 10)
    assert (moments.mean, moments.std) == pytest.approx((everything.mean().item(), everything.std().item()))


def test_pad_tokens_round_trip():
    padded, mask = pad_tokens(_t(1, 2, 3, 4), SEQ)
    assert_close(padded, _t(1, 2, 3, 4, 0, 0).reshape(2, 3))
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert_close(padded[mask], _t(1, 2, 3, 4))


@pytest.mark.parametrize(
    "seq_index,match",
    [
        (torch.tensor([0, 1, 0, 1]), "non-decreasing"),
        (torch.tensor([0, 0, 2, 2]), r"sequences \[1\] have no tokens"),
        (torch.tensor([0.0, 0.0, 1.0, 1.0]), "long"),
    ],
)
def test_rejects_bad_layouts(seq_index, match):
    with pytest.raises(ValueError, match=match):
        gae(REWARDS, VALUES, seq_index)


def test_token_rewards_rejects_scores_for_missing_sequences():
    with pytest.raises(ValueError, match="no tokens"):
        token_rewards(_t(1.0, 2.0, 3.0), VALUES, VALUES, SEQ, kl_coef=0.1)


# --- TRL's last PPOTrainer, on the same batch ----------------------------------------------------------------------


def _trl_ppo_source() -> str:
    override = os.environ.get("ALIGNLINE_TRL_PPO_SOURCE")
    if override:
        return Path(override).read_text()
    spec = importlib.util.find_spec("trl")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "experimental" / "ppo" / "ppo_trainer.py"
        if path.exists():
            return path.read_text()
    pytest.skip("no TRL PPOTrainer source (TRL 1.16 has none; set ALIGNLINE_TRL_PPO_SOURCE to TRL 0.26's)")


@pytest.fixture(scope="module")
def trl_ppo():
    """TRL's `masked_mean`/`masked_var`/`masked_whiten` and `RunningMoments`-free helpers, compiled from its source,
    plus the source lines of `PPOTrainer.train` for the blocks below."""
    source = _trl_ppo_source()
    tree = ast.parse(source)
    scope: dict = {"torch": torch}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in {"masked_mean", "masked_var", "masked_whiten"}:
            exec(ast.get_source_segment(source, node), scope)  # noqa: S102 - TRL's own source
        if isinstance(node, ast.Assign) and ast.get_source_segment(source, node).startswith("INVALID_LOGPROB"):
            exec(ast.get_source_segment(source, node), scope)  # noqa: S102
    return SimpleNamespace(scope=scope, lines=source.splitlines())


def _block(lines: list[str], first: str, last: str) -> str:
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(first))
    end = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(last))
    return textwrap.dedent("\n".join(lines[start : end + 1]))


def _run_trl_rewards_and_gae(trl, logps, ref, values, scores, seq_index, *, kl_coef, kl_estimator, gamma, lam, width):
    """TRL's reward/GAE block of `PPOTrainer.train` on padded `(S, width)` tensors built from the flat ones."""
    block = _block(
        trl.lines,
        "response_idxs = torch.arange(responses.shape[1]",
        "advantages = torch.masked_fill(advantages, padding_mask, 0)",
    )

    def pad(flat):
        return torch.nn.functional.pad(
            pad_tokens(flat, seq_index)[0], (0, width - int(torch.bincount(seq_index).max()))
        )

    lengths = torch.bincount(seq_index)
    args = SimpleNamespace(kl_estimator=kl_estimator, kl_coef=kl_coef, whiten_rewards=False, gamma=gamma, lam=lam)
    scope = dict(
        trl.scope,
        responses=torch.zeros(len(lengths), width, dtype=torch.long),
        sequence_lengths=lengths - 1,
        logprobs=pad(logps),
        ref_logprobs=pad(ref),
        values=pad(values),
        scores=scores.clone(),
        args=args,
    )
    exec(block, scope)  # noqa: S102 - TRL's own source, see the module docstring
    mask = ~scope["padding_mask"]
    return scope["advantages"][mask], scope["returns"][mask], scope["rewards"]


def _ppo_batch(seed, lengths):
    g = torch.Generator().manual_seed(seed)
    seq_index = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    n = len(seq_index)
    logps = -2 * torch.rand(n, generator=g, **F64)
    ref = logps + 0.3 * torch.randn(n, generator=g, **F64)
    values = torch.randn(n, generator=g, **F64)
    scores = 2 * torch.randn(len(lengths), generator=g, **F64)
    return logps, ref, values, scores, seq_index


@pytest.mark.parametrize("kl_estimator", ["k1", "k3"])
@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.7)])
def test_rewards_gae_whiten_match_trl_on_full_width_rows(trl_ppo, kl_estimator, gamma, lam):
    """Every completion fills the padded width, so TRL has no position after the last token and puts the score on
    the last token, as we always do: rewards, returns and whitened advantages agree."""
    logps, ref, values, scores, seq_index = _ppo_batch(0, [5, 5, 5, 5])
    expected_adv, expected_ret, trl_rewards = _run_trl_rewards_and_gae(
        trl_ppo,
        logps,
        ref,
        values,
        scores,
        seq_index,
        kl_coef=0.05,
        kl_estimator=kl_estimator,
        gamma=gamma,
        lam=lam,
        width=5,
    )
    rewards, _ = token_rewards(scores, logps, ref, seq_index, kl_coef=0.05, kl_estimator=kl_estimator)
    assert_close(rewards, trl_rewards.reshape(-1), atol=1e-6, rtol=1e-6)
    advantages, returns = gae(rewards, values, seq_index, gamma=gamma, lam=lam)
    assert_close(returns, expected_ret, atol=1e-6, rtol=1e-6)
    assert_close(whiten(advantages), expected_adv, atol=1e-6, rtol=1e-6)


def test_gae_matches_trl_on_ragged_rows_at_lambda_one(trl_ppo):
    """Ragged rows: TRL puts the score one position after the last token, with a value of its own there (0 here).
    At λ = γ = 1 that extra step passes the score back unchanged, so on the real tokens the two agree; at λ < 1
    TRL's score reaches the last token damped by γλ (the documented difference)."""
    logps, ref, values, scores, seq_index = _ppo_batch(1, [3, 1, 6, 2])
    expected_adv, expected_ret, _ = _run_trl_rewards_and_gae(
        trl_ppo, logps, ref, values, scores, seq_index, kl_coef=0.1, kl_estimator="k1", gamma=1.0, lam=1.0, width=7
    )
    rewards, _ = token_rewards(scores, logps, ref, seq_index, kl_coef=0.1)
    advantages, returns = gae(rewards, values, seq_index, gamma=1.0, lam=1.0)
    assert_close(returns, expected_ret, atol=1e-6, rtol=1e-6)
    assert_close(whiten(advantages), expected_adv, atol=1e-6, rtol=1e-6)


def test_whiten_matches_trl_masked_whiten(trl_ppo):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 6, generator=g, **F64)
    mask = torch.rand(3, 6, generator=g) > 0.3
    for shift_mean in (True, False):
        expected = trl_ppo.scope["masked_whiten"](x, mask, shift_mean=shift_mean)
        assert_close(whiten(x, mask, shift_mean=shift_mean), expected, atol=1e-6, rtol=1e-6)
        assert_close(whiten(x[mask], shift_mean=shift_mean), expected[mask], atol=1e-6, rtol=1e-6)


def test_losses_match_trl_minibatch_block(trl_ppo):
    """TRL's value and policy loss lines on a full-width micro-batch (its value mask then equals its token mask):
    TRL's token means are `aggregate(..., "bnpo")` here."""
    block = _block(trl_ppo.lines, "vpredclipped = torch.clamp(", "loss = pg_loss + args.vf_coef * vf_loss")
    logps, ref, values, _, seq_index = _ppo_batch(3, [4, 4, 4])
    g = torch.Generator().manual_seed(4)
    old_logps = logps + 0.3 * torch.randn(12, generator=g, **F64)
    vpred = values + 0.3 * torch.randn(12, generator=g, **F64)
    returns, advantages = torch.randn(12, generator=g, **F64), torch.randn(12, generator=g, **F64)
    rows = lambda flat: flat.reshape(3, 4)  # noqa: E731
    no_padding = torch.zeros(3, 4, dtype=torch.bool)
    scope = dict(
        trl_ppo.scope,
        vpred=rows(vpred),
        mb_values=rows(values),
        mb_return=rows(returns),
        new_logprobs=rows(logps),
        mb_logprobs=rows(old_logps),
        mb_advantage=rows(advantages),
        padding_mask=no_padding,
        padding_mask_p1=no_padding,
        micro_batch_inds=torch.arange(3),
        args=SimpleNamespace(cliprange_value=0.2, cliprange=0.2, vf_coef=0.1),
    )
    exec(block, scope)  # noqa: S102 - TRL's own source
    vf, vf_stats = clipped_value_loss(vpred, values, returns, clip_range_value=0.2)
    pg, pg_stats = ppo_policy_loss(logps, old_logps, advantages, epsilon=0.2)
    vf_sum, vf_count = aggregate(vf, seq_index, 3, "bnpo")
    pg_sum, pg_count = aggregate(pg, seq_index, 3, "bnpo")
    assert_close(vf_sum / vf_count, scope["vf_loss"], atol=1e-6, rtol=1e-6)
    assert_close(pg_sum / pg_count, scope["pg_loss"], atol=1e-6, rtol=1e-6)
    assert vf_stats["clipped"].double().mean().item() == pytest.approx(scope["vf_clipfrac"].item())
    assert pg_stats["clipped"].any() and vf_stats["clipped"].any()


def test_running_moments_match_trl(trl_ppo):
    """TRL's `RunningMoments` (trl/trainer/utils.py until its PPO went) is compiled from the same TRL's source when
    present beside the PPO file; else only the PPO-file checks above run."""
    override = os.environ.get("ALIGNLINE_TRL_PPO_SOURCE")
    utils_path = Path(override).parents[2] / "trainer" / "utils.py" if override else None
    if utils_path is None or not utils_path.exists():
        pytest.skip("TRL's RunningMoments source not found")
    source = utils_path.read_text()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "RunningMoments")
    scope = {"torch": torch, "dataclass": dataclass, "Accelerator": object}
    # ast leaves the @dataclass decorator out of the class's segment; the JSON helpers are not needed
    class_source = "@dataclass\n" + ast.get_source_segment(source, node).split("    def save_to_json")[0]
    exec(class_source, scope)  # noqa: S102 - TRL's own source, update() only
    theirs = scope["RunningMoments"](accelerator=SimpleNamespace(use_distributed=False))
    ours = RunningMoments()
    g = torch.Generator().manual_seed(5)
    for _ in range(4):
        xs = 3 * torch.randn(8, generator=g) + 1
        # TRL folds float32 moments, ours float64: rel 1e-5 is ~80 float32 ulp, over 8 values of |x| < 10
        assert ours.update(xs) == pytest.approx(theirs.update(xs), rel=1e-5)
        assert (ours.mean, ours.std, ours.var) == pytest.approx((theirs.mean, theirs.std, theirs.var), rel=1e-5)
