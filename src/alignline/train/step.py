"""The one optimizer step, shared by the offline loop (fixed micro-batches from a plan) and the online
loop (micro-batches of freshly collected experience): accumulate, normalize, clip, step.

Normalization is what keeps methods from drifting apart: the step's loss is the sum over its
micro-batches (and processes) divided by the step's total `method.count` (target tokens, pairs), so
batch 8 x accumulation 1 equals batch 1 x accumulation 8 equals 2 processes x accumulation 4.
Metric sums are added the same way, then turned into means by `method.summarize`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from alignline.methods.base import add_sums


def global_sum(accelerator, value: float) -> float:
    """`value` summed over processes (itself with one process)."""
    if accelerator.num_processes == 1:
        return value
    return float(accelerator.reduce(torch.tensor(value, device=accelerator.device), reduction="sum"))


def global_sums(accelerator, sums: dict[str, float]) -> dict[str, float]:
    return {k: global_sum(accelerator, v) for k, v in sorted(sums.items())}


@dataclass
class StepOutcome:
    metrics: dict[str, float]
    """The method's summarized metrics over the whole step (all micro-batches and processes)."""
    tokens: int
    """Non-padding tokens the step computed, over all processes."""
    padding: float
    """This process's share of computed slots that were padding."""
    grad_norm: float | None


def optimizer_step(
    accelerator,
    wrapped: torch.nn.Module,
    method,
    micro: list[dict[str, torch.Tensor]],
    params,
    optimizer,
    scheduler,
    max_grad_norm: float,
    extra_sums: dict[str, float] | None = None,
) -> StepOutcome:
    """One optimizer step over this process's micro-batches. `extra_sums` (an online method's collection
    metrics) are added to the loss metrics before they are summarized, over processes alike."""
    step_count = global_sum(accelerator, sum(method.count(b) for b in micro))
    # DDP averages gradients over processes; scaling by their count makes the result a global mean.
    normalizer = max(step_count, 1.0) / accelerator.num_processes
    sums: dict[str, float] = dict(extra_sums or {})
    tokens = slots = 0
    for i, batch in enumerate(micro):
        # Gradients are all-reduced once, on the last micro-batch, not after each.
        sync = contextlib.nullcontext() if i == len(micro) - 1 else accelerator.no_sync(wrapped)
        with sync:
            loss, metrics = method.loss(wrapped, batch, normalizer)
            accelerator.backward(loss)
        add_sums(sums, metrics)
        tokens += int(batch["attention_mask"].sum())
        slots += batch["attention_mask"].numel()
    grad_norm = accelerator.clip_grad_norm_(params, max_grad_norm) if max_grad_norm > 0 else None
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return StepOutcome(
        metrics=method.summarize(global_sums(accelerator, sums)),
        tokens=int(global_sum(accelerator, tokens)),
        padding=1 - tokens / max(slots, 1),
        grad_norm=float(grad_norm) if grad_norm is not None else None,
    )
