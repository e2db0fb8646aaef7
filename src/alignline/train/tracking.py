"""`report_to: [mlflow]`: a training run mirrored to MLflow tracking, for teams whose experiments live there.

The store is MLflow's own choice: `MLFLOW_TRACKING_URI` when set, else MLflow's default (3.x: `sqlite:///mlflow.db`
in the working directory, artifacts under `./mlruns`; `mlflow ui` started there shows the runs), no server needed.
The experiment is `MLFLOW_EXPERIMENT_NAME`, else `alignline`. One MLflow run per alignline run: the resolved
recipe flattened as params, every logged step's numbers as metrics (the records of `metrics.jsonl`), tags (the
alignline run id, the git commit, the run directory), and at the end run.json, the model card and the run report
as artifacts. A resumed run continues the MLflow run it started (`mlflow.json` in the run directory keeps its id);
MLflow cannot delete metric points, so steps between the checkpoint and the interruption appear twice.

MlflowClient, not the fluent API: no process-wide active run, so a library caller's own MLflow run is untouched.
Tracking never stops training: a store that fails is one warning line, and the run goes on without it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from alignline.errors import warn

EXPERIMENT = "alignline"
RUN_FILE = "mlflow.json"
MAX_PARAM = 6000
"""MLflow 3's limit on a param's value (characters)."""
BATCH = 100
"""MLflow's limit on params per log_batch call."""


def flat_params(value, prefix: str = "") -> dict[str, str]:
    """{dotted key: str(value)} of the resolved recipe; lists stay one value (MLflow params are strings)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, inner in value.items():
            out.update(flat_params(inner, f"{prefix}.{key}" if prefix else str(key)))
    else:
        out[prefix] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return {k: v[:MAX_PARAM] for k, v in out.items()}


class MlflowTracker:
    """One MLflow run for one training run; `log(record)` per logged step, `close(failed)` once."""

    def __init__(self, run_dir: Path, config: dict, tags: dict[str, str], resume_step: int = 0):
        from mlflow.entities import Param, RunTag  # lazy: mlflow is the optional `tracking` extra
        from mlflow.tracking import MlflowClient

        self.run_dir = run_dir
        self.client = MlflowClient()
        self.closed = False
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
        previous = self._previous_run() if resume_step > 0 else None
        if previous is not None:
            self.run_id = previous
            self.client.update_run(previous, status="RUNNING")
        else:
            run = self.client.create_run(experiment_id, run_name=run_dir.name)
            self.run_id = run.info.run_id
            params = [Param(k, v) for k, v in flat_params(config).items()]
            for i in range(0, len(params), BATCH):
                self.client.log_batch(self.run_id, params=params[i : i + BATCH])
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items() if v is not None])
        (run_dir / RUN_FILE).write_text(
            json.dumps(
                {"tracking_uri": self.client.tracking_uri, "experiment_id": experiment_id, "run_id": self.run_id}
            ),
            encoding="utf-8",
        )

    def _previous_run(self) -> str | None:
        try:
            run_id = json.loads((self.run_dir / RUN_FILE).read_text(encoding="utf-8"))["run_id"]
            self.client.get_run(run_id)
        except Exception:  # noqa: BLE001 - no file, a torn one, or a run the store lost: start a new run
            return None
        return run_id

    def log(self, record: dict) -> None:
        from mlflow.entities import Metric  # lazy: mlflow is the optional `tracking` extra

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), stamp, int(record["step"]))
            for k, v in record.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def close(self, failed: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for path, where in (
            (self.run_dir / "run.json", None),
            (self.run_dir / "final" / "README.md", "model_card"),
            (self.run_dir / "report.html", None),
        ):
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path), where)
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


def start_mlflow(run_dir: Path, config: dict, tags: dict[str, str], resume_step: int = 0) -> MlflowTracker | None:
    """The tracker, or None with one warning line when mlflow is missing or its store cannot be opened."""
    try:
        return MlflowTracker(run_dir, config, tags, resume_step)
    except ImportError:
        warn("report_to lists mlflow, and mlflow is not installed (pip install 'alignline[tracking]'); not tracked")
    except Exception as e:  # noqa: BLE001 - any store failure: the run trains on, untracked, and says so
        warn(f"MLflow tracking failed to start ({type(e).__name__}: {str(e).strip()[:200]}); not tracked")
    return None
