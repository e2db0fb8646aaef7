"""`train(cfg)`: a full training run, the one `alignline train` starts: the loop (`train/loop.py`) with the
eval suites of `training.eval_suites` at each evaluation and, once run.json says `completed`, the model
card (`final/README.md`) and the run report (`report.html`).

Why this module lives in `evals/`: the loop sits in `train` (layer 6), below `evals` and `report` (layer 7),
so it takes what they add as `RunHooks` instead of importing them. The wiring must see all three. `evals`
already draws its pages with `report` (`evals/report.py`) and `report` never imports `evals`, so `evals` is
the one package of layer 7 that may import `train`, `evals` and `report` without a cycle; and the suites it
runs during training are its own (`evals/in_training.py`).
"""

from __future__ import annotations

from pathlib import Path

from alignline.config import RunConfig
from alignline.evals.in_training import training_suites
from alignline.report.model_card import write_model_card
from alignline.report.run import write_run_report
from alignline.train import loop
from alignline.train.guards import saving
from alignline.train.loop import SuiteMetrics


class FullRun:
    """The default `RunHooks`: the recipe's eval suites, then the model card and the run report."""

    def suites(self, cfg: RunConfig, num_processes: int) -> SuiteMetrics | None:
        return training_suites(cfg.training.eval_suites, num_processes)

    def after_run(self, run_dir: Path) -> None:
        with saving(run_dir / "final" / "README.md"):
            write_model_card(run_dir)
        with saving(run_dir / "report.html"):
            write_run_report(run_dir)


def train(cfg: RunConfig, progress: bool = True) -> Path:
    """Train as the recipe says, with its suites and reports; return the run directory (`loop.train`)."""
    return loop.train(cfg, progress, hooks=FullRun())
