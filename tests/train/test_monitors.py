"""The online alarms (`methods/monitors.py`) on hand-made step records: each rule fires on its shape, stays quiet
on healthy training, and fires once until its condition clears."""

from types import SimpleNamespace

from alignline.methods.monitors import Monitor, reference_check


def monitor(max_kl=None) -> Monitor:
    return Monitor([SimpleNamespace(name="accuracy"), SimpleNamespace(name="format")], SimpleNamespace(max_kl=max_kl))


def replay(m: Monitor, records: list[dict]) -> list[tuple[int, str]]:
    return [(i + 1, line) for i, r in enumerate(records) for line in m.check(r)]


def steps(accuracy, fmt, length=None):
    length = length or [50.0] * len(accuracy)
    return [
        {"reward/accuracy": a, "reward/format": f, "completion_length": n, "truncated_share": 0.0}
        for a, f, n in zip(accuracy, fmt, length)
    ]


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


# --- nothing to learn: every group flat ---------------------------------------------------------------------


def flat_steps(fractions: list[float], reward: float = 0.0) -> list[dict]:
    return [
        {"reward": reward, "frac_zero_std": f, "completion_length": 40.0, "truncated_share": 0.0} for f in fractions
    ]


def test_every_group_flat_for_three_steps_is_nothing_to_learn():
    alarms = replay(monitor(), flat_steps([1.0, 1.0, 1.0, 1.0]))
    assert alarms == [
        (
            3,
            "nothing to learn: every group's completions got the same reward (reward 0) for the last "
            "3 steps, so every advantage is 0; check the reward on reference answers",
        )
    ]


def test_flat_alarm_needs_three_consecutive_fully_flat_steps_and_fires_again_after_clearing():
    # one group with signal (0.875 flat) breaks the run; two flat steps are not enough
    assert replay(monitor(), flat_steps([1.0, 1.0, 0.875, 1.0, 1.0])) == []
    assert [step for step, _ in replay(monitor(), flat_steps([1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0]))] == [3, 7]
    assert replay(monitor(), [{"reward": 0.0}] * 4) == []  # no frac_zero_std logged (PPO): nothing to judge


def test_a_note_is_reported_once_at_the_next_step():
    m = monitor()
    m.note("the reward (accuracy) gives 0 to all 2 reference answers")
    assert replay(m, flat_steps([0.0, 0.0])) == [(1, "the reward (accuracy) gives 0 to all 2 reference answers")]


# --- the reference answers scored before training -----------------------------------------------------------

ZERO = "def zero(completions, **kwargs):\n    return [0.0] * len(completions)\n"


def reward_set(*specs: tuple[str, str]):
    from alignline.config import RewardSpec
    from alignline.rewards.combine import RewardSet

    return RewardSet([RewardSpec(name=name, function=function) for name, function in specs])


def units(records: list[dict], prompt_key: str = "question"):
    from alignline.data.prompts import PromptUnit

    return [
        PromptUnit(r[prompt_key], {k: v for k, v in r.items() if k != prompt_key}, f"gsm8k.jsonl, line {i + 1}")
        for i, r in enumerate(records)
    ]


GSM8K = [
    {
        "question": f"Tom has {n} apples and buys {n} more. How many now?",
        "answer": f"He has {n}+{n} = <<{n}+{n}={2 * n}>>{2 * n} apples.\n#### {2 * n}",
    }
    for n in range(1, 21)
]


def test_references_the_reward_cannot_read_are_named_once(tmp_path):
    (tmp_path / "zero.py").write_text(ZERO)
    zero = f"{tmp_path / 'zero.py'}:zero"
    line = reference_check(reward_set(("accuracy", zero)), units(GSM8K))
    assert line == (
        "the reward (accuracy) gives 0 to all 16 reference answers in the data (column 'answer', from "
        "gsm8k.jsonl, line 1): check the answer field and the reward's answer extractor"
    )
    # a zero format reward beside a zero accuracy: both named; beside a scoring accuracy: quiet
    both = reward_set(("accuracy", zero), ("format", zero))
    assert reference_check(both, units(GSM8K[:3])).startswith("the reward (accuracy, format) gives 0 to all 3 ")
    assert reference_check(reward_set(("accuracy", "math_answer"), ("format", zero)), units(GSM8K)) is None
    numbers = [{"question": r["question"], "answer": 2 * n} for n, r in enumerate(GSM8K, 1)]  # answers as numbers
    assert reference_check(reward_set(("accuracy", zero)), units(numbers)).startswith("the reward (accuracy) gives 0")
    # a zero `accuracy` is named even where another component scores the references
    assert reference_check(reward_set(("accuracy", zero), ("exact", "exact_match")), units(GSM8K)).startswith(
        "the reward (accuracy) gives 0 to all 16 "
    )


def test_gsm8k_references_score_with_math_answer_and_nothing_is_said():
    assert reference_check(reward_set(("accuracy", "math_answer")), units(GSM8K)) is None
    numeric = [{"question": r["question"], "answer": 2 * n} for n, r in enumerate(GSM8K, 1)]
    assert reference_check(reward_set(("accuracy", "math_answer")), units(numeric)) is None
    no_reference = [{"question": r["question"]} for r in GSM8K]
    assert reference_check(reward_set(("accuracy", "math_answer")), units(no_reference)) is None


def test_grpo_reports_unreadable_references_at_the_first_step(tmp_path, tiny_model_dir):
    """The hook in `GRPO.prepare`: a GSM8K file read with `data.columns`, a reward that cannot read it."""
    from alignline.config import load_config
    from alignline.methods.grpo import GRPO
    from support import write_jsonl, write_recipe

    (tmp_path / "zero.py").write_text(ZERO)
    data = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K)
    recipe = write_recipe(
        tmp_path / "grpo.yaml",
        method="grpo",
        generation={"backend": "hf"},  # the tiny model is below vLLM's head sizes; vLLM: test_vllm_rollouts
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(data), "columns": {"prompt": "question"}},
        rewards=[{"name": "accuracy", "function": f"{tmp_path / 'zero.py'}:zero"}],
    )
    cfg = load_config(recipe)
    method = GRPO(cfg)
    method.prepare(cfg, None, False)
    first = method.alarms({"reward": 0.0, "frac_zero_std": 1.0})
    assert len(first) == 1 and first[0].startswith("the reward (accuracy) gives 0 to all 16 reference answers")
    assert "gsm8k.jsonl" in first[0] and method.alarms({"reward": 0.0, "frac_zero_std": 1.0}) == []
    cfg.rewards[0].function = "math_answer"  # the reference solutions score 1.0: nothing said
    method = GRPO(cfg)
    method.prepare(cfg, None, False)
    assert method.alarms({"reward": 0.0}) == []


def test_a_gsm8k_run_whose_reward_reads_nothing_says_so_in_the_metrics(tmp_path, tiny_model_dir, capsys):
    """End to end on the loop: the reference note at step 1 and the nothing-to-learn alarm at step 3 reach
    the log and metrics.jsonl (a reward that scores every completion 0, as math_answer did on GSM8K)."""
    from alignline.config import load_config
    from alignline.evals.training import train
    from alignline.train.metrics import read_metrics
    from support import write_jsonl, write_recipe

    (tmp_path / "zero.py").write_text(ZERO)
    recipe = write_recipe(
        tmp_path / "grpo.yaml",
        method="grpo",
        generation={"backend": "hf"},  # the tiny model is below vLLM's head sizes; vLLM: test_vllm_rollouts
        model=str(tiny_model_dir),
        output_dir=str(tmp_path / "run"),
        data_gates=False,
        data={"train": str(write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K)), "columns": {"prompt": "question"}},
        rewards=[{"name": "accuracy", "function": f"{tmp_path / 'zero.py'}:zero"}],
        grpo={"num_generations": 2, "max_new_tokens": 4, "log_completions_every": 0},
        training={
            "max_steps": 3,
            "batch_size": 1,
            "eval_every": 100,
            "save_every": 100,
            "tensorboard": False,
            "max_length": 96,
            "threads": 1,
        },
    )
    train(load_config(recipe), progress=False)
    metrics = read_metrics(tmp_path / "run" / "metrics.jsonl")
    alarms = [(m["step"], line) for m in metrics for line in m.get("alarms", [])]
    assert [step for step, _ in alarms] == [1, 3]
    assert alarms[0][1].startswith("the reward (accuracy) gives 0 to all 16 reference answers")
    assert alarms[1][1].startswith("nothing to learn: every group's completions got the same reward (reward 0)")
    assert "alarm at step 3: nothing to learn" in capsys.readouterr().err


def test_a_component_gated_on_accuracy_cannot_raise_the_hacking_alarm():
    """`only_if: accuracy` (directly or through a chain): shape alone earns it nothing, so its rise in a window
    where accuracy falls is noise among right answers, not hacking (the calculator demo's false alarm). The
    same records with the component ungated still raise it."""
    records = steps([0.3] * 3 + [0.1] * 3, [0.1] * 3 + [0.4] * 3)
    for specs in (
        [SimpleNamespace(name="accuracy"), SimpleNamespace(name="format", only_if="accuracy")],
        [
            SimpleNamespace(name="accuracy"),
            SimpleNamespace(name="valid", only_if="accuracy"),
            SimpleNamespace(name="format", only_if="valid"),
        ],
    ):
        assert replay(Monitor(specs, SimpleNamespace(max_kl=None)), records) == []
    gated_elsewhere = [SimpleNamespace(name="accuracy"), SimpleNamespace(name="format", only_if="other")]
    assert len(replay(Monitor(gated_elsewhere, SimpleNamespace(max_kl=None)), records)) == 1
