"""`alignline eval` suites during training: at each evaluation, the model being trained answers the suites
(`training.eval_suites`) through the same suite code as `alignline eval`, without the cache, and every
metric is logged as `suite/<suite>/<metric>`; early stopping can watch one
(`training.early_stopping_metric`). The suites are read when the run starts, so a bad suite stops the
run before any training.

The loop (`train/loop.py`, a layer below evals) does not know suites: `training_suites` gives it a
`SuiteMetrics` callable through its `RunHooks` (`evals/training.py` wires them).
"""

from __future__ import annotations

import torch

from alignline.errors import ConfigError
from alignline.evals.context import Context, ModelHandle
from alignline.evals.results import qualified, run_suites
from alignline.evals.suites import Suite, load_suite
from alignline.rollout.hf import HFEngine
from alignline.train.loop import SuiteMetrics


def load_training_suites(specs: list[str], num_processes: int) -> list[Suite]:
    if not specs:
        return []
    if num_processes > 1:
        raise ConfigError(
            "config key 'training.eval_suites': suites run on one process; run them with "
            "`alignline eval` on the checkpoints of a multi-process run"
        )
    return [load_suite(spec) for spec in specs]


@torch.no_grad()
def suite_metrics(model, tokenizer, suites: list[Suite], step: int) -> dict[str, float]:
    """Run `suites` on the in-memory model (dropout off) -> {"suite/<suite>/<metric>": value}."""
    was_training = model.training
    model.eval()
    try:
        # The HF engine on the live model whatever `generation.backend` says: the weights being trained are here,
        # and a vLLM copy would need them synced at every evaluation (an adapter save + `load_lora`, or
        # `load_weights`) for a few short suites; RL rollouts, which generate every step, do sync.
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        engine = HFEngine(model, tokenizer, dtype=dtype)
        handle = ModelHandle(f"step-{step}", None, engine=engine, content_hash=f"step-{step}", dtype=engine.dtype)
        outcomes = run_suites([handle], suites, Context(cache_enabled=False))
    finally:
        model.train(was_training)
    return {f"suite/{name}": metric.value for name, metric in qualified(outcomes[handle.name]).items()}


def training_suites(specs: list[str], num_processes: int) -> SuiteMetrics | None:
    """The suites of `training.eval_suites`, read now, as the loop's `(model, tokenizer, step) -> metrics`;
    None when there are none."""
    suites = load_training_suites(specs, num_processes)
    if not suites:
        return None

    def metrics(model, tokenizer, step: int) -> dict[str, float]:
        return suite_metrics(model, tokenizer, suites, step)

    return metrics
