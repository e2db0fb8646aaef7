"""Alarms for online training: the failure modes RL users meet and nothing in the peers catches.

`Monitor.check(record)` reads each logged step (metrics.jsonl's record) and returns alarm lines; the
loop prints them, writes them into the record (`alarms`) and the run report shows them. Rules, each a
comparison of the last `WINDOW` steps with the `WINDOW` before them (steps are noisy; one step proves
nothing):
- reward hacking: a reward component rises while the accuracy component (the one named `accuracy`,
  else the first listed) falls, or stays flat (<= 0 change) while it rises by `HACK_RISE` or more: the
  `make demo-grpo` run that learned to print "Answer: N" with a wrong number showed that shape (format
  0.1 -> 0.9, accuracy flat near 0.04), and the falling-only rule missed it. A component paid only where
  the accuracy component is positive (`only_if` on it, directly or through a chain of gates; the
  calculator's shaping with `shaping_only_if_correct`) is exempt: shape alone earns it nothing, and its
  share among right answers moves with noise (the calculator demo's gated format "rose" 0.08 in a window
  where correctness fell by 0.12: a false alarm before this rule);
- KL above `grpo.max_kl`;
- entropy collapse: the entropy estimate under `ENTROPY_FLOOR` nats, or below a fifth of its first value;
- length blow-up: mean completion length doubled since the start while over half hit max_new_tokens;
- length collapse: mean completion length under a quarter of the first steps' (answers reduced to a
  template: the same demo went from 62 to 6 tokens);
- importance ratios out of range: more than `MAX_CLIP_FRACTION` of tokens clipped, or the generator and
  trainer log-probs drifting apart by more than `MAX_MISMATCH` nats per token;
- nothing to learn: every group had zero reward variance (`frac_zero_std` 1.0) for `FLAT_STEPS` steps in a
  row, so every advantage is 0 and the run trains nothing while it "completes" (GSM8K answers the grader
  could not read scored every completion 0).
`Monitor.note(line)` queues a one-off line for the next step (GRPO's check of the reference answers,
`reference_check`), so it reaches the log, metrics.jsonl and the report like the alarms.
Each alarm fires once per kind until its condition clears, so a long run is not flooded.
"""

from __future__ import annotations

from statistics import mean

WINDOW = 3
RISE = 0.05
HACK_RISE = 0.1
COLLAPSE = 4
ENTROPY_FLOOR = 0.05
MAX_CLIP_FRACTION = 0.3
MAX_MISMATCH = 0.1
FLAT_STEPS = 3


def gated_on(name: str, target: str | None, gates: dict[str, str | None]) -> bool:
    """Whether component `name` pays only where `target` does: its `only_if` is `target`, or a component that
    is itself gated on `target` (gates apply gate-first, so a chain composes)."""
    seen = {name}
    gate = gates.get(name)
    while gate is not None and gate not in seen:
        if gate == target:
            return True
        seen.add(gate)
        gate = gates.get(gate)
    return False


class Monitor:
    def __init__(self, reward_specs, grpo_cfg, section: str = "grpo"):
        """`grpo_cfg`: the method's config section (it reads `max_kl`), named `section` in the alarms."""
        self.section = section
        names = [s.name for s in reward_specs]
        self.accuracy = "accuracy" if "accuracy" in names else (names[0] if names else None)
        gates = {s.name: getattr(s, "only_if", None) for s in reward_specs}
        self.others = [n for n in names if n != self.accuracy and not gated_on(n, self.accuracy, gates)]
        self.max_kl = grpo_cfg.max_kl
        self.history: list[dict] = []
        self.active: set[str] = set()
        self.notes: list[str] = []

    def note(self, line: str) -> None:
        """A line to report once, with the next step's alarms."""
        self.notes.append(line)

    def series(self, key: str) -> list[float]:
        return [r[key] for r in self.history if isinstance(r.get(key), (int, float))]

    def trend(self, key: str) -> float | None:
        """Mean of the last WINDOW values minus the mean of the WINDOW before; None with too few."""
        values = self.series(key)
        if len(values) < 2 * WINDOW:
            return None
        return mean(values[-WINDOW:]) - mean(values[-2 * WINDOW : -WINDOW])

    def conditions(self, record: dict) -> dict[str, str]:
        found = {}
        acc = self.trend(f"reward/{self.accuracy}") if self.accuracy else None
        for name in self.others:
            other = self.trend(f"reward/{name}")
            if acc is None or other is None:
                continue
            if other > RISE and acc < -RISE:
                found[f"hacking:{name}"] = (
                    f"reward hacking? reward/{name} rose by {other:.3g} while "
                    f"reward/{self.accuracy} fell by {-acc:.3g} over the last {WINDOW} steps"
                )
            elif other >= HACK_RISE and acc <= 0:
                found[f"hacking:{name}"] = (
                    f"reward hacking? reward/{name} rose by {other:.3g} while "
                    f"reward/{self.accuracy} did not rise ({acc:+.3g}) over the last "
                    f"{WINDOW} steps"
                )
        kl = record.get("kl")
        if self.max_kl is not None and isinstance(kl, float) and kl > self.max_kl:
            found["kl"] = f"KL to the reference {kl:.3g} is above {self.section}.max_kl {self.max_kl:g}"
        entropy = self.series("entropy")
        if entropy and (entropy[-1] < ENTROPY_FLOOR or (len(entropy) > WINDOW and entropy[-1] < entropy[0] / 5)):
            found["entropy"] = f"entropy collapse: {entropy[-1]:.3g} nats per token (first step: {entropy[0]:.3g})"
        lengths = self.series("completion_length")
        if (
            len(lengths) > WINDOW
            and lengths[-1] > 2 * mean(lengths[:WINDOW])
            and record.get("truncated_share", 0) > 0.5
        ):
            found["length"] = (
                f"length blow-up: completions average {lengths[-1]:.0f} tokens (first steps: "
                f"{mean(lengths[:WINDOW]):.0f}), {record['truncated_share']:.0%} cut at max_new_tokens"
            )
        if len(lengths) > WINDOW and lengths[-1] < mean(lengths[:WINDOW]) / COLLAPSE:
            found["length_collapse"] = (
                f"length collapse: completions average {lengths[-1]:.0f} tokens (first "
                f"steps: {mean(lengths[:WINDOW]):.0f})"
            )
        if record.get("clip_fraction", 0.0) > MAX_CLIP_FRACTION:
            found["clip"] = f"importance ratios out of range: {record['clip_fraction']:.0%} of tokens clipped"
        if record.get("generator_mismatch", 0.0) > MAX_MISMATCH:
            found["mismatch"] = (
                f"generator and trainer log-probs differ by {record['generator_mismatch']:.3g} nats per token"
            )
        recent = [r.get("frac_zero_std") for r in self.history[-FLAT_STEPS:]]
        if len(recent) == FLAT_STEPS and all(isinstance(f, (int, float)) and f >= 1.0 for f in recent):
            reward = record.get("reward")
            at = f" (reward {reward:.3g})" if isinstance(reward, (int, float)) else ""
            found["flat"] = (
                f"nothing to learn: every group's completions got the same reward{at} for the last "
                f"{FLAT_STEPS} steps, so every advantage is 0; check the reward on reference answers"
            )
        return found

    def check(self, record: dict) -> list[str]:
        self.history.append(record)
        found = self.conditions(record)
        fresh = [line for kind, line in found.items() if kind not in self.active]
        self.active = set(found)
        notes, self.notes = self.notes, []
        return notes + fresh


REFERENCE_COLUMNS = ("answer", "solution", "reference", "ground_truth", "completion")
REFERENCE_SAMPLE = 16


def reference_answers(units: list, limit: int = REFERENCE_SAMPLE) -> tuple[str | None, list, list[str]]:
    """(column, units, their reference texts): up to `limit` prompts whose record holds a reference answer
    (the first of `REFERENCE_COLUMNS` found, a non-empty string or a number); (None, [], []) where none does."""
    for column in REFERENCE_COLUMNS:
        chosen = [u for u in units if reference_text(u.columns.get(column))][:limit]
        if chosen:
            return column, chosen, [reference_text(u.columns[column]) for u in chosen]
    return None, [], []


def reference_text(value) -> str:
    """A reference answer as a completion would write it: a non-empty string, or a number (`42`); else ''."""
    if isinstance(value, str):
        return value if value.strip() else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def reference_check(rewards, units: list, limit: int = REFERENCE_SAMPLE) -> str | None:
    """A warning line when the rewards score 0 on every sampled reference answer: every component that
    applies (not None) gives 0 to all of them, or the one named `accuracy` does. Then the reward cannot read
    the data's answers (a GSM8K `#### 72` an extractor misses): no completion will ever score and the run
    learns nothing. None when the references score, or where the data holds none. A format-only component
    rightly gives references 0, which is why any other component scoring them clears the warning."""
    column, chosen, references = reference_answers(units, limit)
    if column is None:
        return None
    keys = sorted({k for u in chosen for k in u.columns})
    columns = {k: [u.columns.get(k) for u in chosen] for k in keys}
    try:
        components = rewards.score([u.prompt for u in chosen], references, columns).components
    except Exception:  # noqa: BLE001  advisory: a reward that fails here fails at step 1 with its own message
        return None
    applied = {name: [v for v in scores if v is not None] for name, scores in components.items()}
    applied = {name: values for name, values in applied.items() if values}
    zero = [name for name, values in applied.items() if all(v == 0 for v in values)]
    if zero and len(zero) < len(applied):  # another component scores them: only a zero accuracy still counts
        zero = ["accuracy"] if "accuracy" in zero else []
    if not zero:
        return None
    named, count = ", ".join(zero), len(applied[zero[0]])
    return (
        f"the reward ({named}) gives 0 to all {count} reference answers in the data (column '{column}', "
        f"from {chosen[0].origin}): check the answer field and the reward's answer extractor"
    )
