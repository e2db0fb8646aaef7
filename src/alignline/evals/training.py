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

import time
from pathlib import Path

from alignline.config import RunConfig
from alignline.evals.in_training import training_suites
from alignline.report.model_card import write_model_card
from alignline.report.run import write_run_report
from alignline.runs import new_run_id, note_in_run_json, record_run
from alignline.runs.recording import git_commit
from alignline.train import loop
from alignline.train.guards import saving
from alignline.train.loop import SuiteMetrics
from alignline.train.run_record import RunRecord, error_text, is_main_process


class FullRun:
    """The default `RunHooks`: the recipe's eval suites, then the model card and the run report; `tags` name the
    run in a tracking store (its registry id and the git commit)."""

    def __init__(self, run_id: str | None = None):
        self.tags = {
            "alignline.run_id": run_id,
            "mlflow.source.git.commit": git_commit(),
            "alignline.command": "alignline train",
        }

    def suites(self, cfg: RunConfig, num_processes: int) -> SuiteMetrics | None:
        return training_suites(cfg.training.eval_suites, num_processes)

    def after_run(self, run_dir: Path) -> None:
        with saving(run_dir / "final" / "README.md"):
            write_model_card(run_dir)
        with saving(run_dir / "report.html"):
            write_run_report(run_dir)


def train(cfg: RunConfig, progress: bool = True, registry: str | None = None) -> Path:
    """Train as the recipe says, with its suites and reports; return the run directory (`loop.train`). The run,
    completed or failed, is recorded in the run registry (`registry` URL, else $ALIGNLINE_REGISTRY, else
    ./runs/registry.db), and run.json's `registry` says where or why not; a run that failed before writing its
    directory (a typo in the recipe) leaves no trace there either."""
    run_id, started = new_run_id(), time.time()
    try:
        run_dir = loop.train(cfg, progress, hooks=FullRun(run_id))
    except BaseException as error:
        record_train(cfg, run_id, started, registry, error)
        raise
    record_train(cfg, run_id, started, registry)
    return run_dir


def record_train(
    cfg: RunConfig, run_id: str, started: float, registry: str | None, error: BaseException | None = None
) -> None:
    run_dir = Path(cfg.output_dir)
    if not is_main_process() or not (run_dir / "run.json").is_file():
        return
    if error is not None and earlier_run_completed(run_dir):
        return  # refused before it started (a resume that does not match): run.json is the earlier run's, kept as is
    recorded = record_run(
        "train",
        run_dir,
        registry=registry,
        run_id=run_id,
        started=started,
        status="failed" if error is not None else "completed",
        error=error_text(error) if error is not None else None,
    )
    note_in_run_json(run_dir, registry, recorded)


def earlier_run_completed(run_dir: Path) -> bool:
    try:
        return RunRecord.read(run_dir / "run.json").status == "completed"
    except (OSError, ValueError):
        return False
