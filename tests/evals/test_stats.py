"""The statistics against hand-computed numbers and against direct (loop) computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alignline.evals import stats


def test_paired_bootstrap_delta_and_degenerate_interval():
    """cand [1,1,1,0] mean 0.75, base [0,1,0,0] mean 0.25: delta 0.5. With cand = base + 0.2 on every
    record, every resample's difference is exactly 0.2, so the interval is [0.2, 0.2]."""
    delta, lo, hi = stats.paired_bootstrap("mean", {"x": [1, 1, 1, 0]}, {"x": [0, 1, 0, 0]})
    assert delta == pytest.approx(0.5) and lo <= 0.5 <= hi
    base = np.array([0.1, 0.5, 0.9, 0.3, 0.7])
    d, lo, hi = stats.paired_bootstrap("mean", {"x": base + 0.2}, {"x": base}, n_boot=500)
    assert d == pytest.approx(0.2) and lo == pytest.approx(0.2) and hi == pytest.approx(0.2)


def test_paired_bootstrap_equals_a_loop_over_resamples():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=30), rng.normal(size=30)
    _, lo, hi = stats.paired_bootstrap("mean", {"x": a}, {"x": b}, n_boot=300, seed=5)
    idx = stats.bootstrap_indices(30, 300, 5)
    diffs = [a[row].mean() - b[row].mean() for row in idx]
    assert (lo, hi) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])))
    again = stats.paired_bootstrap("mean", {"x": a}, {"x": b}, n_boot=300, seed=5)
    assert again[1:] == (lo, hi)  # seeded


def test_mcnemar_exact_hand_computed():
    """b = 1, c = 5: n = 6, P(X <= 1) = (C(6,0) + C(6,1)) / 2^6 = 7/64, p = 14/64 = 0.21875.
    b = 0, c = 6: p = 2/64. No discordant pairs: p = 1. b = c: p capped at 1."""
    cand = [1] * 1 + [0] * 5 + [1, 1]
    base = [0] * 1 + [1] * 5 + [1, 1]
    assert stats.mcnemar_exact(cand, base) == {"b": 1, "c": 5, "p_value": pytest.approx(14 / 64)}
    assert stats.mcnemar_exact([0] * 6, [1] * 6)["p_value"] == pytest.approx(2 / 64)
    assert stats.mcnemar_exact([1, 0], [1, 0])["p_value"] == 1.0
    assert stats.mcnemar_exact([1, 0], [0, 1])["p_value"] == 1.0


def test_ece_on_a_constructed_set():
    """10 bins. conf 0.1 wrong (bin 1: |0 - 0.1| * 1/4 = 0.025); 0.3 right and 0.35 wrong (bin 3:
    acc 0.5, conf 0.325, |0.175| * 2/4 = 0.0875); 0.9 right (bin 9: 0.1 * 1/4 = 0.025). ECE = 0.1375.
    Four answers at confidence 0.75, three right: perfectly calibrated, ECE 0. Confidence 1.0 falls in the last bin."""
    assert stats.ece_stat(np.array([0.1, 0.3, 0.35, 0.9]), np.array([0, 1, 0, 1])) == pytest.approx(0.1375)
    assert stats.ece_stat(np.array([0.75] * 4), np.array([1, 1, 1, 0])) == pytest.approx(0.0)
    assert stats.ece_stat(np.array([1.0, 1.0]), np.array([1, 0])) == pytest.approx(0.5)
    batched = stats.ece_stat(np.array([[0.1, 0.3, 0.35, 0.9], [0.75] * 4]), np.array([[0, 1, 0, 1], [1, 1, 1, 0]]))
    assert batched == pytest.approx([0.1375, 0.0])
    bins = stats.reliability_bins([0.1, 0.3, 0.35, 0.9], [0, 1, 0, 1])
    assert bins[3] == {"low": 0.3, "high": 0.4, "count": 2, "confidence": pytest.approx(0.325), "accuracy": 0.5}


def test_both_order_win_rate_cancels_position_bias():
    always_a = lambda p, a, b: 1.0  # noqa: E731
    assert stats.both_order_preference(always_a, "q", "x", "y") == 0.5
    fair = lambda p, a, b: 1.0 if "good" in a else 0.0  # noqa: E731
    assert stats.both_order_preference(fair, "q", "good", "bad") == 1.0
    assert stats.both_order_preference(fair, "q", "bad", "good") == 0.0
    one_sided = lambda p, a, b: None if a == "x" else 0.0  # noqa: E731  # only the (y, x) order answers
    assert stats.both_order_preference(one_sided, "q", "x", "y") == 1.0
    assert stats.both_order_preference(lambda p, a, b: None, "q", "x", "y") is None


def test_length_controlled_win_rate_recovers_the_intercept():
    """Preferences generated as sigmoid(0 + 3 x), x mostly positive (the candidate writes longer):
    the raw win rate is well above 1/2, the win rate at zero length difference is 1/2. With no length
    effect (constant preference 0.7), length control changes nothing."""
    x = np.linspace(-0.5, 1.0, 61)
    y = 1 / (1 + np.exp(-3 * x))
    assert y.mean() > 0.6
    assert stats.lc_win_rate_stat(y, x) == pytest.approx(0.5, abs=0.01)
    assert stats.lc_win_rate_stat(np.full(61, 0.7), x) == pytest.approx(0.7, abs=0.01)
    batched = stats.lc_win_rate_stat(np.stack([y, np.full(61, 0.7)]), np.stack([x, x]))
    assert batched == pytest.approx([0.5, 0.7], abs=0.01)
    assert 0.99 < stats.lc_win_rate_stat(np.ones(20), np.linspace(-1, 1, 20)) < 1.0  # all wins stays finite


def test_perplexity_is_corpus_level():
    """NLL 2 over 1 token and 4 over 3 tokens: exp(6 / 4), not the mean of exp(2) and exp(4/3)."""
    assert stats.compute("perplexity", {"nll": [2.0, 4.0], "tokens": [1, 3]}) == pytest.approx(math.exp(1.5))
    assert stats.compute(
        "perplexity_increase", {"nll": [2.0, 4.0], "tokens": [1, 3], "base_nll": [1.0, 3.0], "base_tokens": [1, 3]}
    ) == pytest.approx(math.exp(1.5) - math.exp(1.0))
