"""Gated reward components (`rewards[i].only_if`): hand-computed totals on a 4-completion batch, the gate's edge
cases (None, negative, chains), what is logged (`reward/<name>` gated, `reward/<name>_raw`), the static checks
that name `rewards[i].only_if`, and the zero-variance alarm a gate can cause (every group all wrong)."""

from __future__ import annotations

import pytest

from alignline.config import RewardSpec, load_config
from alignline.errors import ConfigError
from alignline.losses.grpo import zero_std_groups
from alignline.methods.monitors import Monitor
from alignline.rewards.combine import RewardSet

# Each component reads its scores from a column of the same name: the batch's scores are given by hand.
GRADERS = """
def column(completions, name, **columns):
    return list(columns[name])
"""


@pytest.fixture
def grader(tmp_path):
    path = tmp_path / "graders.py"
    path.write_text(GRADERS)
    return f"{path}:column"


def spec(grader: str, name: str, weight: float = 1.0, only_if: str | None = None) -> RewardSpec:
    return RewardSpec(name=name, function=grader, weight=weight, options={"name": name}, only_if=only_if)


def score(rewards: RewardSet, **columns):
    n = len(next(iter(columns.values())))
    return rewards.score([""] * n, ["x"] * n, {k: list(v) for k, v in columns.items()})


def test_format_gated_on_accuracy_by_hand(grader):
    rewards = RewardSet([spec(grader, "accuracy", 1.0), spec(grader, "format", 0.5, only_if="accuracy")])
    scores = score(rewards, accuracy=[1, 0, 1, 0], format=[1, 1, 0, 0])
    # format pays only where accuracy > 0: [1, 0, 0, 0]; totals 1*acc + 0.5*gated format
    assert scores.components["format"] == [1.0, 0.0, 0.0, 0.0]
    assert scores.raw == {"format": [1.0, 1.0, 0.0, 0.0]}
    assert scores.total.tolist() == [1.5, 0.0, 1.0, 0.0]
    assert scores.means() == {"reward/accuracy": 0.5, "reward/format": 0.25, "reward/format_raw": 0.5}
    # ungated, the second completion (wrong, well formatted) would have earned 0.5
    ungated = score(
        RewardSet([spec(grader, "accuracy", 1.0), spec(grader, "format", 0.5)]),
        accuracy=[1, 0, 1, 0],
        format=[1, 1, 0, 0],
    )
    assert ungated.total.tolist() == [1.5, 0.5, 1.0, 0.0] and ungated.raw == {}


def test_a_gate_that_is_none_or_not_positive_pays_nothing_and_not_applicable_stays_none(grader):
    rewards = RewardSet([spec(grader, "accuracy"), spec(grader, "format", 2.0, only_if="accuracy")])
    scores = score(rewards, accuracy=[None, -1.0, 0.5, 1.0], format=[1.0, 1.0, 1.0, None])
    assert scores.components["format"] == [0.0, 0.0, 1.0, None]
    assert scores.total.tolist() == [0.0, -1.0, 2.5, 1.0]
    assert scores.means()["reward/format_raw"] == 1.0  # None left out of the mean


def test_gates_chain_in_any_listed_order(grader):
    # c only_if b only_if a, listed c first: b's gated score decides c
    rewards = RewardSet(
        [spec(grader, "c", 1.0, only_if="b"), spec(grader, "b", 1.0, only_if="a"), spec(grader, "a", 1.0)]
    )
    scores = score(rewards, a=[1, 0, 1, 0], b=[1, 1, 0, 0], c=[1, 1, 1, 1])
    assert scores.components["b"] == [1.0, 0.0, 0.0, 0.0]
    assert scores.components["c"] == [1.0, 0.0, 0.0, 0.0]
    assert scores.total.tolist() == [3.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "rewards, message",
    [
        (
            "  - {name: accuracy, function: math_answer}\n  - {name: format, function: math_answer, only_if: acc}\n",
            "config key 'rewards[1].only_if': no reward named 'acc'",
        ),
        (
            "  - {name: accuracy, function: math_answer, only_if: accuracy}\n",
            "config key 'rewards[0].only_if': reward 'accuracy' cannot be gated on itself",
        ),
        (
            "  - {name: a, function: math_answer, only_if: b}\n  - {name: b, function: math_answer, only_if: a}\n",
            "config key 'rewards[0].only_if': the gates form a cycle: a -> b -> a",
        ),
    ],
)
def test_gate_errors_name_the_key(tmp_path, rewards, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"method: grpo\nmodel: smollm2-135m\nrewards:\n{rewards}")
    with pytest.raises(ConfigError) as err:
        load_config(recipe)
    assert message in str(err.value)


def test_the_shipped_grpo_recipe_gates_format_on_accuracy():
    cfg = load_config("recipes/grpo-lora.yaml")
    gated = {s.name: s.only_if for s in cfg.rewards}
    assert gated.get("format") == "accuracy"


def test_all_wrong_groups_leave_a_gated_reward_flat_and_the_zero_variance_alarm_fires(grader):
    """Groups of 4 where every completion is wrong but some are well formatted: ungated, the format reward
    would give each group variance (a signal toward the format alone); gated, every group is flat, every
    advantage 0, and after 3 such steps the monitor says there is nothing to learn."""
    rewards = RewardSet([spec(grader, "accuracy", 1.0), spec(grader, "format", 0.5, only_if="accuracy")])
    monitor = Monitor(rewards.specs, type("G", (), {"max_kl": None})())
    alarms = []
    for _ in range(3):
        scores = score(rewards, accuracy=[0] * 8, format=[1, 0, 1, 1, 0, 0, 1, 0])
        flat = zero_std_groups(scores.total, 4)
        assert flat.tolist() == [True, True]
        record = {"reward": float(scores.total.mean()), "frac_zero_std": float(flat.float().mean())}
        record.update(scores.means())
        alarms += monitor.check(record)
    assert len(alarms) == 1 and alarms[0].startswith("nothing to learn: every group's completions got the same")
