"""How many optimizer steps a run takes, and how many micro-batches make one: computed in one place
for the loop and for `alignline train --dry-run`, so the plan printed is the plan run."""

from __future__ import annotations

import math
from dataclasses import dataclass

from alignline.config import TrainingConfig


@dataclass(frozen=True)
class StepPlan:
    total_steps: int
    warmup_steps: int
    micro_per_step: int
    """Micro-batches per optimizer step, over all processes (grad_accum x processes)."""


def step_plan(training: TrainingConfig, batches_per_epoch: int, num_processes: int = 1) -> StepPlan:
    """`max_steps` when set; else enough steps for `epochs` passes over the planned micro-batches."""
    micro = training.grad_accum * num_processes
    epochs = training.epochs if training.epochs is not None else 1.0
    total = training.max_steps or max(1, math.ceil(epochs * batches_per_epoch / micro))
    warmup = training.warmup_steps or round(training.warmup_ratio * total)
    return StepPlan(total, warmup, micro)
