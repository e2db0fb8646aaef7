"""Several reward components with weights, each kept visible: what an online method is trained on.

`RewardSet.score` calls every grader once for the whole batch of completions (TRL's signature, so a
user's TRL reward function works as it is), validates what each returns (`registry.check_scores`: a bad
reward fails with one line naming it), and returns the components and their weighted total. A
component that is `None` for a completion ("not applicable") counts 0 in the total and is left out of
that component's mean, as TRL's nansum/nanmean do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from alignline.config import RewardSpec
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

    def means(self) -> dict[str, float]:
        """`reward/<name>`: each component's mean over the completions it applies to."""
        out = {}
        for name, values in self.components.items():
            present = [v for v in values if v is not None]
            out[f"reward/{name}"] = sum(present) / len(present) if present else math.nan
        return out


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
        total = torch.zeros(len(completions), dtype=torch.float32)
        for spec in self.specs:
            values = torch.tensor([v if v is not None else 0.0 for v in components[spec.name]], dtype=torch.float32)
            total += spec.weight * values
        return RewardScores(components, total)
