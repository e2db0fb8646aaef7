"""What a method is: a small Protocol, not a trainer subclass.

The one training loop (`train/loop.py`) owns the schedule of steps, accumulation, clipping,
checkpoints, evaluation and logging; a method says how its records become units (an SFT example, a
preference pair), how units become a micro-batch, and how a micro-batch becomes a loss. Metrics are
returned as sums, so the loop can add them over micro-batches and processes before the method turns
them into means (`summarize`): every method averages the same way. The loop calls exactly the hooks
named in `Method`, every one of them, for every method (no `hasattr` probing).

How an online method (GRPO, PPO) plugs in, without a second copy of the loop
-----------------------------------------------------------------------------
An offline method's micro-batches come from a fixed plan over prepared units. An online method
(`online = True`) plans over prompt units the same way (seeded, so the data position and hence exact
resume work as for SFT), and for each optimizer step the loop (`train/loop.py: run_steps`) does:

1. `experience = method.collect(wrapped, units, rows, step, device)`: generate with the rollout engine
   (`rollout/`), score with the graders (`rewards/`), and compute what the loss needs that the
   gradient must not flow through (old and reference log-probs, advantages). It returns an
   `Experience`: the step's micro-batches, metric sums (rewards per component, lengths,
   zero-variance groups) and sampled completions to log.
2. `for _ in range(method.passes)`: the shared step (`train/step.py`: accumulate with `count`-based
   normalization, clip, optimizer and scheduler step) over `experience.micro_batches`, with
   `method.loss` on each. Several passes over one collection are PPO's epochs (TRL's
   `num_iterations`); one pass is on-policy GRPO. The scheduler counts every pass.
3. `method.alarms(record)` reads the logged record (reward hacking, KL, entropy collapse, length
   blow-up, importance ratios) and returns alarm lines, which go to the log, metrics.jsonl and the report.

Checkpoints (at collection boundaries), exact resume (the sampling seed is derived from the step),
accumulation, evaluation (`extra_eval` only: an online method has no held-out loss) and logging are the
loop's, unchanged. An online method keeps its extra models (a reference, a value head) inside its
`wrap`ped module or, for frozen ones, out of the module tree as DPO does, so checkpoints hold only
what trains; what trains outside the model (PPO's value head) is named in `checkpoint_extras`.
The hooks the online methods share (prompt units, their plan, held-out greedy evaluation) are `OnlineMethod`'s,
in `methods/online.py`; the pairwise methods share `PairData` (`methods/pairs.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from alignline.config import RunConfig
from alignline.data.packing import BatchPlan


@dataclass
class Experience:
    """What an online method collected for one optimizer step."""

    micro_batches: list[dict[str, torch.Tensor]]
    metrics: dict[str, float]
    """Metric sums over the collection (the loop adds them to the loss metrics before `summarize`)."""
    samples: list[dict]
    """Completions to write to completions.jsonl (empty on steps that log none)."""


@dataclass
class Prepared:
    train: list[Any]
    eval: list[Any]
    report: Any


class Method(Protocol):
    name: str
    online: bool
    """False: micro-batches from the plan (SFT, DPO, ...); True: from `collect` (see the module docstring)."""
    passes: int
    """Optimizer steps per collected batch (online methods); 1 for offline ones."""
    model_kind: str
    """`causal_lm` or `reward` (a scalar-head sequence classifier)."""
    early_stopping: tuple[str, str]
    """(eval metric, 'min' | 'max') watched by training.early_stopping_patience."""
    checkpoint_extras: tuple[str, ...]
    """Prefixes of the wrapped module's state-dict keys that train outside the model (PPO's value head and KL
    coefficient): saved in every checkpoint (`method_state.safetensors`) and restored on resume; () for none."""

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

    def loss(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor], normalizer: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of one micro-batch divided by `normalizer` (the whole step's count), and metric sums."""
        ...

    def extra_eval(
        self, wrapped: torch.nn.Module, data: Prepared, pad_id: int, device, tokenizer, step: int
    ) -> dict[str, float]:
        """Evaluation beyond the held-out loss, on the main process (DPO: KL on sampled answers); {} for none.
        `step`: the optimizer steps done, the step the evaluation is logged under."""
        ...

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        """Summed metrics to logged values (means); must include `loss`."""
        ...

    def stop_reason(self, evaluation: dict[str, float]) -> str | None:
        """After each evaluation: a reason to stop now (DPO: eval_kl above dpo.max_kl), or None to go on."""
        ...

    def alarms(self, record: dict[str, float]) -> list[str]:
        """After each step: alarm lines about the logged record (online monitors); [] for none."""
        ...

    def generation_record(self) -> dict | None:
        """run.json's `generation`: the rollouts' engine, dtype and policy sync (online methods); None."""
        ...

    def collect(
        self, wrapped: torch.nn.Module, units: list[Any], rows: list[list[list[int]]], step: int, device
    ) -> Experience:
        """Online methods: generate, score and precompute for one optimizer step (`rows`: each micro-batch's
        units). Offline methods never have it called."""
        ...


class NoExtraHooks:
    """The optional hooks, doing nothing, for an offline method: no setup step, extra evaluation, stop bound
    or alarms (one level; the loop still calls every hook of `Method`)."""

    online = False
    passes = 1
    checkpoint_extras: tuple[str, ...] = ()

    def setup(self, wrapped, data, pad_id, device) -> None:
        return None

    def extra_eval(self, wrapped, data, pad_id, device, tokenizer, step) -> dict[str, float]:
        return {}

    def stop_reason(self, evaluation: dict[str, float]) -> str | None:
        return None

    def alarms(self, record: dict[str, float]) -> list[str]:
        return []

    def generation_record(self) -> dict | None:
        return None

    def collect(self, wrapped, units, rows, step, device) -> Experience:
        raise NotImplementedError(f"{type(self).__name__} is an offline method: its batches come from the plan")


def add_sums(into: dict[str, float], more: dict[str, float]) -> None:
    """Add metric sums into `into` (methods return sums; the loop and the online methods add them up)."""
    for key, value in more.items():
        into[key] = into.get(key, 0.0) + value
