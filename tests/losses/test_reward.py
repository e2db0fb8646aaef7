"""Reward-model loss and helpers against hand-computed values, a naive loop, and TRL's RewardTrainer.

l(x) = -log σ(x) = log(1 + e^-x): l(1) = 0.313262, l(0.5) = 0.474077, l(-0.5) = l(0.5) + 0.5 = 0.974077.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from torch.testing import assert_close

from alignline.losses.reward import bradley_terry_loss, combine_rewards, reward_metrics, weighted_mean

L_1, L_HALF = 0.31326168751822286, 0.4740769841801067
CHOSEN = torch.tensor([1.0, 0.5], dtype=torch.float64)
REJECTED = torch.tensor([0.0, 1.0], dtype=torch.float64)  # differences 1 and -0.5


def _scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


def test_bradley_terry_hand_computed():
    """Plain: (l(1) + l(-0.5)) / 2 = (0.313262 + 0.974077) / 2 = 0.643669.

    margin (0.5, -1): differences become 0.5 and 0.5 -> l(0.5) = 0.474077.
    weights (3, 1): (3·l(1) + l(-0.5)) / 4 = (0.939785 + 0.974077) / 4 = 0.478466.
    center 0.01: mean((1 + 0)², (0.5 + 1)²) = (1 + 2.25) / 2 = 1.625 -> + 0.01625.
    """
    plain = (L_1 + L_HALF + 0.5) / 2
    assert_close(bradley_terry_loss(CHOSEN, REJECTED), _scalar(plain))
    margin = torch.tensor([0.5, -1.0], dtype=torch.float64)
    assert_close(bradley_terry_loss(CHOSEN, REJECTED, margin=margin), _scalar(L_HALF))
    weights = torch.tensor([3.0, 1.0], dtype=torch.float64)
    assert_close(bradley_terry_loss(CHOSEN, REJECTED, weights=weights), _scalar((3 * L_1 + L_HALF + 0.5) / 4))
    centered = bradley_terry_loss(CHOSEN, REJECTED, center_rewards_coefficient=0.01)
    assert_close(centered, _scalar(plain + 0.01625))


def test_bradley_terry_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    rc, rr, m, w = (torch.randn(7, generator=g, dtype=torch.float64) for _ in range(4))
    w = w.abs()
    per_pair = [math.log1p(math.exp(-(rc[i] - rr[i] - m[i]).item())) for i in range(7)]
    expected = sum(w[i].item() * per_pair[i] for i in range(7)) / w.sum().item()
    expected += 0.3 * sum((rc[i].item() + rr[i].item()) ** 2 for i in range(7)) / 7
    got = bradley_terry_loss(rc, rr, margin=m, weights=w, center_rewards_coefficient=0.3)
    assert_close(got, _scalar(expected))


def test_bradley_terry_gradient_hand_computed():
    """d l(r_c - r_r) / d r_c = -σ(-(r_c - r_r)); for one pair with difference 0 that is -1/2."""
    rc = torch.zeros(1, requires_grad=True)
    bradley_terry_loss(rc, torch.zeros(1)).backward()
    assert_close(rc.grad, torch.tensor([-0.5]))


def test_bradley_terry_refuses_broadcasting_shapes():
    """A (B, 1) head output against a (B,) margin would broadcast to (B, B) and train on the wrong pairs."""
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        bradley_terry_loss(CHOSEN[:, None], REJECTED[:, None])
    with pytest.raises(ValueError, match=r"margin must have shape \(2,\)"):
        bradley_terry_loss(CHOSEN, REJECTED, margin=torch.zeros(2, 1))
    with pytest.raises(ValueError, match="rejected values"):
        bradley_terry_loss(CHOSEN, REJECTED[:1])


def test_weighted_mean_all_zero_weights_gives_zero():
    assert_close(weighted_mean(torch.tensor([1.0, 2.0]), torch.zeros(2)), torch.tensor(0.0))
    assert_close(weighted_mean(torch.tensor([1.0, 2.0])), torch.tensor(1.5))


def test_reward_metrics_counts_ties_as_half():
    """Differences (1, -0.5, 0): right, wrong, tie -> accuracy (1 + 0 + 0.5) / 3 = 0.5; margin 0.5 / 3."""
    chosen = torch.tensor([1.0, 0.5, 2.0])
    rejected = torch.tensor([0.0, 1.0, 2.0])
    metrics = reward_metrics(chosen, rejected)
    assert metrics == pytest.approx({"accuracy": 0.5, "margin": 0.5 / 3, "chosen": 3.5 / 3, "rejected": 1.0})


def test_combine_rewards():
    """0.7·(1, 2) + 0.3·(-1, 4) = (0.4, 2.6)."""
    components = {"helpful": torch.tensor([1.0, 2.0]), "harmless": torch.tensor([-1.0, 4.0])}
    assert_close(combine_rewards(components, {"helpful": 0.7, "harmless": 0.3}), torch.tensor([0.4, 2.6]))


@pytest.mark.parametrize(
    "weights,match",
    [
        ({"helpful": 1.0}, r"components have no weight: \['harmless'\]"),
        ({"helpful": 1.0, "harmless": 1.0, "honest": 1.0}, r"weights name components not given: \['honest'\]"),
    ],
)
def test_combine_rewards_names_the_disagreement(weights, match):
    components = {"helpful": torch.zeros(2), "harmless": torch.zeros(2)}
    with pytest.raises(ValueError, match=match):
        combine_rewards(components, weights)


def test_combine_rewards_refuses_mismatched_shapes_and_nothing():
    with pytest.raises(ValueError, match="differ in shape"):
        combine_rewards({"a": torch.zeros(2), "b": torch.zeros(3)}, {"a": 1.0, "b": 1.0})
    with pytest.raises(ValueError, match="no reward components"):
        combine_rewards({}, {})


def _trl_reward_loss(rc, rr, margin, center):
    """TRL's `RewardTrainer.compute_loss` on a stub model that returns the given rewards as `(2B, 1)` logits."""
    trl = pytest.importorskip("trl")
    logits = torch.cat([rc, rr])[:, None]
    identity = lambda x: x  # noqa: E731
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True),
        args=SimpleNamespace(center_rewards_coefficient=center),
        accelerator=SimpleNamespace(gather_for_metrics=identity, gather=identity),
        _tp_size=1,
        _total_train_tokens=0,
        _metrics=defaultdict(lambda: defaultdict(list)),
    )
    inputs = {"attention_mask": torch.ones(len(logits), 3)} | ({} if margin is None else {"margin": margin})
    loss = trl.RewardTrainer.compute_loss(trainer, lambda **kwargs: SimpleNamespace(logits=logits), inputs)
    return loss, trainer._metrics["train"]


@pytest.mark.parametrize("with_margin,center", [(False, None), (True, None), (True, 0.01)])
def test_bradley_terry_matches_trl_reward_trainer(with_margin, center):
    g = torch.Generator().manual_seed(1)
    rc, rr, m = (torch.randn(6, generator=g, dtype=torch.float64) for _ in range(3))
    margin = m if with_margin else None
    trl_loss, metrics = _trl_reward_loss(rc, rr, margin, center)
    assert_close(
        bradley_terry_loss(rc, rr, margin=margin, center_rewards_coefficient=center), trl_loss, atol=1e-6, rtol=1e-6
    )
    ours = reward_metrics(rc, rr)
    assert metrics["margin"][0] == pytest.approx(ours["margin"], abs=1e-6)
    assert metrics["accuracy"][0] == pytest.approx(ours["accuracy"], abs=1e-6)  # no ties in random rewards
