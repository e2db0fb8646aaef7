"""`run.json` tells the truth about how a run ended, whichever way it ended.

`guarded_run(cfg)` wraps a training run: it prepares and locks the output directory, and on any
exception leaves `run.json` saying `status: failed` with the `error` (a gates failure included: a run
directory never holds only a data report and no word on why). User errors stay one line; an OS error
the user can fix (a full disk) becomes one; anything else is a bug and keeps its traceback.
A `run.json` of an earlier, completed run in the same directory is left as it was: that run's
record is still true. A run that fails before writing anything (a bad record, a bad model path)
removes the directory it created, so a typo leaves no trace.

`RunRecord` is the one shape of `run.json`, and every write of it goes through `RunRecord.write`
(atomic: a temporary file, then a rename). Its keys, in this order, are what users script against:
`status` (`running`, `completed` or `failed`) and `config`; then, once the run has started, the
`RunStart` keys (`data`, `model`, `plan`, `fast_path`, `data_gates`, `resumed_from`, `packages`,
`git_commit`, `environment`); when it completed, the `RunOutcome` keys (`steps`, `stopped_early`,
`stop_reason`, `tokens_seen`, `best_eval`, `evals`, `final`, `seconds`); when it failed, `error`.
A run that failed before it started has only `status`, `config` and `error`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from alignline.config import RunConfig, to_dict
from alignline.errors import UserError
from alignline.io import write_json
from alignline.train.guards import as_user_error, not_writable, prepare_output_dir
from alignline.train.lock import LOCK_NAME, RunLock


def is_main_process() -> bool:
    """Rank 0 of a launch (accelerate / torchrun set RANK); the one that writes the run directory."""
    return os.environ.get("RANK", "0") == "0"


def error_text(error: BaseException) -> str:
    if isinstance(error, UserError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (KeyboardInterrupt)"
    return f"{type(error).__name__}: {error}"


RunStatus = Literal["running", "completed", "failed"]


@dataclass
class RunStart:
    """What the run was, written when it starts: enough to repeat and trace it."""

    data: dict
    """The data report (`data/dataset.py`): rows read, kept, dropped, per source."""
    model: dict
    """`spec` (the recipe's model section) and `parameters` (total and trainable counts)."""
    plan: dict
    """`total_steps`, `rows`, `batches_per_epoch`."""
    fast_path: dict | None
    """Which parts of the fast forward path are on (`models/fast/decision.py`), None without one."""
    data_gates: Any
    """The data-gates verdict, None when the recipe has no gates or the run resumed."""
    resumed_from: str | None
    packages: dict
    git_commit: str | None
    environment: dict
    generation: dict | None = None
    """Online methods: the rollouts' `backend` (hf, vllm, server), `dtype` and `sync` (none, lora, full)."""


@dataclass
class RunOutcome:
    """How a run that reached its end ended."""

    steps: int
    stopped_early: bool
    stop_reason: str | None
    tokens_seen: int
    best_eval: dict
    evals: list
    final: str
    """The path of the final model."""
    seconds: float


@dataclass
class RunRecord:
    """`run.json`. Build it with `RunRecord(status, config, start=...)`, change it with
    `completed` / `failed`, save it with `write`; `RunRecord.read(path)` gives it back."""

    status: RunStatus
    config: dict
    """The resolved recipe (`config.to_dict`)."""
    start: RunStart | None = None
    outcome: RunOutcome | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)
    """Keys this version does not know (a run.json written by another version), kept as they were."""

    def completed(self, outcome: RunOutcome) -> None:
        self.status, self.outcome = "completed", outcome

    def failed(self, error: str) -> None:
        self.status, self.error = "failed", error

    def to_dict(self) -> dict:
        out: dict = {"status": self.status, "config": self.config}
        for part in (self.start, self.outcome):
            if part is not None:
                out.update({f.name: getattr(part, f.name) for f in fields(part)})
        if self.error is not None:
            out["error"] = self.error
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        rest = dict(data)
        status, config = rest.pop("status", "failed"), rest.pop("config", {})
        start, outcome = _take(RunStart, rest), _take(RunOutcome, rest)
        return cls(status, config, start, outcome, rest.pop("error", None), rest)

    def write(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> RunRecord:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: run.json holds {type(data).__name__}, not an object")
        return cls.from_dict(data)


def _take(kind: type, rest: dict) -> Any:
    """The `kind` part of a record when all its keys are there (popped from `rest`); else None, and a
    partial set stays in `rest` so a rewrite keeps it as it was."""
    parts = fields(kind)
    required = [f.name for f in parts if f.default is MISSING and f.default_factory is MISSING]
    if not all(n in rest for n in required):
        return None
    return kind(**{f.name: rest.pop(f.name) for f in parts if f.name in rest})


def _existing_record(path: Path) -> RunRecord | None:
    """The run.json already there, None when there is none or it cannot be read (a torn write)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return RunRecord.from_dict(data) if isinstance(data, dict) and data else None


def mark_failed(run_dir: Path, cfg: RunConfig, error: BaseException) -> None:
    """Set run.json to failed with the error; write a small one if the run had not written it yet."""
    path = run_dir / "run.json"
    record = _existing_record(path)
    if record is not None and record.status == "completed":
        return
    if record is None:
        record = RunRecord("failed", to_dict(cfg))
    record.failed(error_text(error))
    try:
        record.write(path)
    except OSError:  # the disk may be what failed: the one-line error still reaches the user
        pass


@contextmanager
def guarded_run(cfg: RunConfig) -> Iterator[Path]:
    """Prepare and lock `cfg.output_dir` (rank 0), run the body, record a failure in run.json."""
    run_dir = Path(cfg.output_dir)
    if not is_main_process():
        yield run_dir
        return
    created = _missing_dirs(run_dir)
    prepare_output_dir(run_dir)
    lock = RunLock(run_dir)
    try:
        lock.acquire()
    except PermissionError as e:
        raise not_writable(run_dir, e) from None
    except OSError as e:
        if as_user_error(e) is not None:
            raise as_user_error(e) from None
        raise not_writable(run_dir, e) from None
    try:
        yield run_dir
    except BaseException as error:
        friendly = as_user_error(error)
        lock.release()
        if not _remove_if_untouched(run_dir, created):
            mark_failed(run_dir, cfg, friendly or error)
        if friendly is not None:
            raise friendly from None
        raise
    finally:
        lock.release()


def _missing_dirs(run_dir: Path) -> list[Path]:
    """The directories `prepare_output_dir` is about to create, deepest first."""
    out = []
    for p in (run_dir, *run_dir.parents):
        if p.exists():
            break
        out.append(p)
    return out


def _remove_if_untouched(run_dir: Path, created: list[Path]) -> bool:
    """A run that failed before writing anything (a bad record, a bad model) leaves no directory behind;
    True when it was removed."""
    if not created or any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        return False
    (run_dir / LOCK_NAME).unlink(missing_ok=True)
    for p in created:
        try:
            p.rmdir()
        except OSError:
            break
    return True
