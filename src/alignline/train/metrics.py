"""Metrics to `metrics.jsonl` (one JSON object per logged step), to TensorBoard, and to MLflow (`train/tracking.py`)
when the recipe's `report_to` lists them.

On resume the file is cut back to the checkpoint's step first, so the curve of a resumed run is the
curve of a run never interrupted, with no steps logged twice.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from alignline.errors import DataError
from alignline.io import write_text
from alignline.train.guards import warn


class MetricsLog:
    def __init__(
        self,
        run_dir: Path,
        resume_step: int = 0,
        tensorboard: bool = True,
        enabled: bool = True,
        tracker=None,
    ):
        """`tracker`: an MLflow tracker (`train/tracking.py`: `log(record)`, `close(failed)`), or None."""
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.writer = None
        self.tracker = tracker if enabled else None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        truncate_after(self.path, resume_step)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step + 1)
            except ImportError:
                warnings.warn("tensorboard is not installed; metrics go to metrics.jsonl only", stacklevel=2)

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, record["step"])
        if self.tracker is not None:
            self._track(lambda: self.tracker.log(record))

    def close(self, failed: bool = False) -> None:
        """Flush TensorBoard; end the MLflow run (its artifacts logged), FAILED when the run failed. Twice is once."""
        if self.writer is not None:
            self.writer.close()
        if self.tracker is not None:
            self._track(lambda: self.tracker.close(failed))
            self.tracker = None

    def _track(self, call) -> None:
        """A tracking store that fails mid-run: one warning line, tracking stops, training goes on."""
        try:
            call()
        except Exception as e:  # noqa: BLE001 - the store's failure is not the run's
            warn(f"MLflow tracking failed ({type(e).__name__}: {str(e).strip()[:200]}); tracking stopped")
            self.tracker = None


def _parse(path: Path, warn_torn: bool = True) -> list[tuple[str, dict]]:
    """(line, record) pairs. A torn last line (a run killed mid-write) is dropped with a warning;
    a bad line anywhere else is damage, not an interruption, and a DataError naming it."""
    lines = [
        (n, line)
        for n, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if line.strip()
    ]
    out = []
    for i, (number, line) in enumerate(lines):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            if i == len(lines) - 1:
                if warn_torn:
                    warn(f"{path}: line {number} is torn (the run was stopped while writing it); dropped")
                break
            raise DataError(str(path), f"not a metrics record ({e})", record=f"line {number}") from None
        out.append((line, record))
    return out


def truncate_after(path: Path, step: int) -> None:
    """Keep only records with `step <= step`, rewriting atomically."""
    if not path.exists():
        return
    kept = [line for line, record in _parse(path) if record.get("step", 0) <= step]
    write_text(path, "".join(line + "\n" for line in kept))


def read_metrics(path: Path) -> list[dict]:
    return [record for _, record in _parse(path)]
