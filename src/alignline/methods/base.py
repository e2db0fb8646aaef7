"""What a method is: a small Protocol, not a trainer subclass.

The one training loop (`train/loop.py`) owns the schedule of steps, accumulation, clipping,
checkpoints, evaluation and logging; a method says how its records become units (an SFT example, a
preference pair), how units become a micro-batch, and how a micro-batch becomes a loss. Metrics are
returned as sums, so the loop can add them over micro-batches and processes before the method turns
them into means (`summarize`): every method averages the same way. The loop calls exactly the hooks
named in `Method`, every one of them, for every method (no `hasattr` probing).

How an online method (GRPO, PPO) plugs in, without a second copy of the loop
-----------------------------------------------------------------------------
An offline method's micro-batches come from a fixed plan over prepared units. An online method's
come from experience it collects as it trains: it also implements `OnlineMethod.collect`, and the
loop, seeing `method.online`, does for each optimizer step:

1. `experience = method.collect(model, prompts, step)`: generate with the rollout engine
   (`rollout/`), score with the graders (`rewards/`), and compute whatever the loss needs that the
   gradient must not flow through (old and reference log-probs, advantages). The prompts for the
   step come from the same seeded plan as offline units (`plan`/`collate` over prompt units), so the
   data position, and hence exact resume, works as for SFT.
2. `for _ in range(method.passes)`: split `experience` into the step's micro-batches
   (`method.micro_batches(experience)`) and run the shared step (`train/step.py`: accumulate with
   `count`-based normalization, clip, optimizer and scheduler step) on `method.loss` of each.
   Several passes over one collection are PPO's epochs; GRPO with one pass is on-policy.
3. `collect`'s metrics (rewards per component, lengths, zero-variance groups) are summed and logged
   beside `loss`'s, through `summarize`.

Checkpoints, exact resume (the sampling RNG is in the checkpointed RNG states), accumulation,
evaluation and logging are the loop's, unchanged. An online method keeps its extra models (a
reference, a value head, a reward model) inside its `wrap`ped module or, for frozen ones, out of the
module tree as DPO does, so checkpoints hold only what trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from alignline.config import RunConfig
from alignline.data.packing import BatchPlan


@dataclass
class Prepared:
    train: list[Any]
    eval: list[Any]
    report: Any


class Method(Protocol):
    name: str
    model_kind: str
    """`causal_lm` or `reward` (a scalar-head sequence classifier)."""
    early_stopping: tuple[str, str]
    """(eval metric, 'min' | 'max') watched by training.early_stopping_patience."""

    def prepare(self, cfg: RunConfig, tokenizer, progress: bool) -> Prepared:
        """Read, validate and tokenize the data into train and eval units, with a report."""
        ...

    def plan(self, units: list[Any], cfg: RunConfig, shuffle_seed: int | None) -> BatchPlan | None:
        """Which units form micro-batch k, for every k (None when there are no units)."""
        ...

    def collate(self, units: list[Any], rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]: ...

    def count(self, batch: dict[str, torch.Tensor]) -> float:
        """What the step's loss is averaged over (target tokens, pairs), in this micro-batch."""
        ...

    def wrap(self, model, cfg: RunConfig) -> torch.nn.Module:
        """The module `accelerate.prepare` wraps: the model plus what the loss needs around it."""
        ...

    def setup(self, wrapped: torch.nn.Module, data: Prepared, pad_id: int, device) -> None:
        """Once, after the model is ready and before the first step (DPO: precomputed reference log-probs)."""
        ...

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor],
             normalizer: float) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of one micro-batch divided by `normalizer` (the whole step's count), and metric sums."""
        ...

    def extra_eval(self, wrapped: torch.nn.Module, data: Prepared, pad_id: int, device, tokenizer) -> dict[str, float]:
        """Evaluation beyond the held-out loss, on the main process (DPO: KL on sampled answers); {} for none."""
        ...

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        """Summed metrics to logged values (means); must include `loss`."""
        ...

    def stop_reason(self, evaluation: dict[str, float]) -> str | None:
        """After each evaluation: a reason to stop now (DPO: eval_kl above dpo.max_kl), or None to go on."""
        ...


class OnlineMethod(Method, Protocol):
    """A method that learns from experience it generates (see the module docstring)."""

    online: bool
    passes: int
    """Optimization passes over each collected batch of experience."""

    def collect(self, model: torch.nn.Module, prompts: dict[str, torch.Tensor], step: int) -> Any:
        """Generate, score and precompute the no-gradient parts of the loss for one optimizer step."""
        ...

    def micro_batches(self, experience: Any) -> list[dict[str, torch.Tensor]]:
        """The step's micro-batches of collected experience, each fed to `loss`."""
        ...
