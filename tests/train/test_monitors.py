"""The online alarms (`train/monitors.py`) on hand-made step records: each rule fires on its shape, stays quiet
on healthy training, and fires once until its condition clears."""

from types import SimpleNamespace

from alignline.train.monitors import Monitor


def monitor(max_kl=None) -> Monitor:
    return Monitor([SimpleNamespace(name="accuracy"), SimpleNamespace(name="format")],
                   SimpleNamespace(max_kl=max_kl))


def replay(m: Monitor, records: list[dict]) -> list[tuple[int, str]]:
    return [(i + 1, line) for i, r in enumerate(records) for line in m.check(r)]


def steps(accuracy, fmt, length=None):
    length = length or [50.0] * len(accuracy)
    return [{"reward/accuracy": a, "reward/format": f, "completion_length": n, "truncated_share": 0.0}
            for a, f, n in zip(accuracy, fmt, length)]


def test_a_component_rising_while_accuracy_falls_is_hacking():
    # windows of 3: format 0.1 -> 0.4 (+0.3), accuracy 0.3 -> 0.1 (-0.2)
    alarms = replay(monitor(), steps([0.3] * 3 + [0.1] * 3, [0.1] * 3 + [0.4] * 3))
    assert [step for step, _ in alarms] == [6]
    assert "reward/format rose by 0.3" in alarms[0][1] and "fell by 0.2" in alarms[0][1]


def test_a_component_rising_while_accuracy_stays_flat_is_hacking():
    """The demo-grpo run's shape: the format reward climbs, accuracy stays near zero."""
    alarms = replay(monitor(), steps([0.04] * 6, [0.1] * 3 + [0.3] * 3))
    assert len(alarms) == 1 and "did not rise" in alarms[0][1]


def test_healthy_training_raises_nothing():
    # both rise; format by less than the flat-accuracy threshold when accuracy is flat
    rising = steps([0.1, 0.1, 0.1, 0.2, 0.2, 0.2], [0.1] * 3 + [0.4] * 3)
    assert replay(monitor(), rising) == []
    assert replay(monitor(), steps([0.2] * 6, [0.1] * 3 + [0.15] * 3)) == []


def test_length_collapse_and_blow_up():
    collapse = steps([0.1] * 6, [0.1] * 6, length=[60, 62, 61, 40, 20, 9])
    alarms = replay(monitor(), collapse)
    assert alarms == [(6, "length collapse: completions average 9 tokens (first steps: 61)")]
    blow_up = [dict(r, truncated_share=0.8) for r in steps([0.1] * 5, [0.1] * 5, length=[20, 20, 20, 30, 45])]
    assert [line.split(":")[0] for _, line in replay(monitor(), blow_up)] == ["length blow-up"]


def test_each_alarm_fires_once_until_it_clears():
    m = monitor(max_kl=0.5)
    records = [{"kl": 0.9}, {"kl": 0.8}, {"kl": 0.1}, {"kl": 0.7}]
    assert [step for step, _ in replay(m, records)] == [1, 4]
