"""Active-learning strategies: orders checked against hand-computed ones."""

from __future__ import annotations

import math
import random

import pytest
import torch

from alignline.annotate.active import (
    PoolPair,
    by_dpo_margin,
    by_reward_uncertainty,
    dpo_margins,
    order_by,
    pool_from_items,
    random_order,
)
from alignline.errors import DataError


def test_random_order_is_a_seeded_permutation():
    """Python's own shuffle with Random(seed): the same on every machine, a different order per seed."""
    expected = list(range(10))
    random.Random(3).shuffle(expected)
    assert random_order(10, 3) == expected
    assert sorted(random_order(10, 4)) == list(range(10))
    assert random_order(10, 3) != random_order(10, 4)
    assert random_order(0, 1) == []


def test_reward_uncertainty_orders_by_bradley_terry_probability_closest_to_half():
    """r_a − r_b = [2.0, −0.1, 0.5, −3.0, 0.0]; σ of these = [0.881, 0.475, 0.622, 0.047, 0.5];
    |σ − 0.5| = [0.381, 0.025, 0.122, 0.453, 0.0] -> order 4, 1, 2, 0, 3."""
    a = [3.0, 1.0, 0.5, -1.0, 7.0]
    b = [1.0, 1.1, 0.0, 2.0, 7.0]
    order = by_reward_uncertainty(a, b)
    assert order == [4, 1, 2, 0, 3]
    sig = [abs(1 / (1 + math.exp(-(x - y))) - 0.5) for x, y in zip(a, b)]
    assert order == sorted(range(5), key=lambda i: sig[i])


def test_reward_uncertainty_ties_keep_pool_order_and_saturation_does_not_tie():
    """|d| equal for pairs 0 and 2 (±1): pool order. d = 40 and d = 50 both have σ = 1.0 in float64, yet 40 < 50."""
    assert by_reward_uncertainty([1.0, 50.0, -1.0, 40.0], [0.0, 0.0, 0.0, 0.0]) == [0, 2, 3, 1]
    assert by_reward_uncertainty(torch.tensor([0.2, 0.1]), torch.tensor([0.0, 0.0])) == [1, 0]


def test_dpo_margin_hand_computed():
    """β = 0.5. Pair 0: π = (−10, −12), ref = (−11, −11): 0.5 [(1) − (−1)] = 1.0.
    Pair 1: π = (−5, −5), ref = (−4.5, −5.5): 0.5 [(−0.5) − (0.5)] = −0.5.
    Pair 2: π = ref = (−8, −9): 0.0. |margin| = [1.0, 0.5, 0.0] -> order 2, 1, 0."""
    policy = [[-10.0, -12.0], [-5.0, -5.0], [-8.0, -9.0]]
    reference = [[-11.0, -11.0], [-4.5, -5.5], [-8.0, -9.0]]
    assert dpo_margins(policy, reference, 0.5) == pytest.approx([1.0, -0.5, 0.0])
    assert by_dpo_margin(policy, reference, 0.5) == [2, 1, 0]
    # the flat layout DPOModel returns (a at 2i, b at 2i + 1) gives the same
    flat = torch.tensor(policy).reshape(-1)
    assert by_dpo_margin(flat, torch.tensor(reference).reshape(-1), 0.5) == [2, 1, 0]


def test_dpo_margin_scale_free_in_beta_but_checked_shapes():
    """β > 0 scales every margin alike, so the order does not depend on it."""
    policy, reference = [[-1.0, -2.0], [-3.0, -3.2]], [[-1.5, -1.5], [-3.0, -3.0]]
    assert by_dpo_margin(policy, reference, 0.1) == by_dpo_margin(policy, reference, 5.0) == [1, 0]
    with pytest.raises(ValueError):
        by_dpo_margin([[-1.0, -2.0]], [[-1.0, -2.0], [0.0, 0.0]], 0.1)
    with pytest.raises(ValueError):
        by_reward_uncertainty([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        by_reward_uncertainty([float("nan")], [1.0])


def test_order_by_names_each_strategy():
    assert order_by("random", n=4, seed=1) == random_order(4, 1)
    assert order_by("uncertainty", n=2, scores=([1.0, 0.0], [0.0, 0.0])) == [1, 0]
    assert order_by("margin", n=2, logps=([[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]])) == [0, 1]
    with pytest.raises(ValueError, match="unknown strategy"):
        order_by("entropy", n=2)


def test_pool_from_items_reads_annotation_items():
    records = [
        ("line 1", {"prompt": "Hi", "responses": ["a", "b"], "id": 7}),
        (
            "line 2",
            {
                "prompt": [{"role": "user", "content": "Q"}],
                "responses": [[{"role": "assistant", "content": "x"}], [{"role": "assistant", "content": "y"}]],
            },
        ),
    ]
    pool = pool_from_items(records, "items.jsonl")
    assert isinstance(pool[0], PoolPair) and (pool[0].a, pool[0].b) == ("a", "b")
    assert pool[1].a[0].content == "x" and pool[1].origin == "line 2"
    with pytest.raises(DataError, match="items.jsonl, line 3, field 'responses'"):
        pool_from_items([("line 3", {"prompt": "Hi", "responses": ["a", "b", "c"]})], "items.jsonl")
