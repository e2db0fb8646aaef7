"""Several reward components with weights, each kept visible: what an online method is trained on.

`RewardSet.score` calls every grader once for the whole batch of completions (TRL's signature, so a
user's TRL reward function works as it is), validates what each returns (`registry.check_scores`: a bad
reward fails with one line naming it), and returns the components and their weighted total. A
component that is `None` for a completion ("not applicable") counts 0 in the total and is left out of
that component's mean, as TRL's nansum/nanmean do.

Gating (`only_if: NAME`): a component pays only where the named component's score is > 0; elsewhere it
counts 0, and so does a completion the gate cannot score (its score None). A gated component stays None
where its own grader says "not applicable". Gates are applied gate-first, so a chain (`c only_if b`,
`b only_if a`) reads b's gated score: c pays only where a and b both do. What is summed and logged as
`reward/<name>` is the gated score; the grader's own score is kept in `RewardScores.raw` and logged as
`reward/<name>_raw` (how often the shape alone would have paid). The names are checked statically in
config_checks.py (an existing component, not itself, no cycle) and again here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from alignline.config import RewardSpec
from alignline.config_checks import gate_order
from alignline.errors import ConfigError
from alignline.rewards.registry import get_grader, grade
from alignline.rewards.sandbox import resolve_mode

SANDBOXED = ("unit_tests",)  # graders that run code in `rewards.sandbox` and take its `mode`


@dataclass
class RewardScores:
    components: dict[str, list[float | None]]
    """Each component's score per completion (None: not applicable)."""
    total: torch.Tensor
    """(S,) the weighted sum per completion."""
    raw: dict[str, list[float | None]] = field(default_factory=dict)
    """The gated components' (`only_if`) scores before gating."""

    def logged(self) -> dict[str, list[float | None]]:
        """What is logged per completion: every component (gated), and `<name>_raw` for each gated one."""
        return {**self.components, **{f"{name}_raw": values for name, values in self.raw.items()}}

    def means(self) -> dict[str, float]:
        """`reward/<name>` (and `reward/<name>_raw`): each mean over the completions it applies to."""
        out = {}
        for name, values in self.logged().items():
            present = [v for v in values if v is not None]
            out[f"reward/{name}"] = sum(present) / len(present) if present else math.nan
        return out


def apply_gate(values: list[float | None], gate: list[float | None]) -> list[float | None]:
    """`values` where `gate` > 0; 0.0 where the gate is 0, negative or None; None stays None."""
    return [None if v is None else (v if g is not None and g > 0 else 0.0) for v, g in zip(values, gate)]


class RewardSet:
    def __init__(self, specs: list[RewardSpec], sandbox: str = "auto"):
        if not specs:
            raise ConfigError(
                "config key 'rewards': an online method needs at least one reward, e.g. "
                "rewards: [{name: accuracy, function: math_answer}]"
            )
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"config key 'rewards': names must be unique, got {names}")
        self.specs = specs
        self.graders = {}
        for i, spec in enumerate(specs):
            if not math.isfinite(spec.weight):
                raise ConfigError(f"config key 'rewards[{i}].weight': must be a finite number, got {spec.weight}")
            try:
                options = dict(spec.options)
                if spec.function in SANDBOXED:
                    if sandbox != "auto":  # the recipe's `sandbox:`, unless the reward sets its own
                        options.setdefault("mode", sandbox)
                    resolve_mode(options.get("mode", "auto"))  # no usable sandbox: refuse now, not at step 1
                grader = get_grader(spec.function, **options)
            except ConfigError as e:
                raise ConfigError(f"config key 'rewards[{i}]' (reward '{spec.name}'): {e}") from None
            self.graders[spec.name] = grader
        self.gated = gate_order(specs)

    def score(
        self, prompts: list, completions: list[str], columns: dict[str, list], completion_ids: list | None = None
    ) -> RewardScores:
        components = {}
        for spec in self.specs:
            try:
                components[spec.name] = grade(
                    spec.function, self.graders[spec.name], prompts, completions, columns, completion_ids
                )
            except ConfigError as e:
                raise ConfigError(f"reward '{spec.name}': {e}") from None
        raw = {}
        for spec in self.gated:
            raw[spec.name] = components[spec.name]
            components[spec.name] = apply_gate(components[spec.name], components[spec.only_if])
        total = torch.zeros(len(completions), dtype=torch.float32)
        for spec in self.specs:
            values = torch.tensor([v if v is not None else 0.0 for v in components[spec.name]], dtype=torch.float32)
            total += spec.weight * values
        return RewardScores(components, total, raw)
