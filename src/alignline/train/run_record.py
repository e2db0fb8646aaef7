"""`run.json` tells the truth about how a run ended, whichever way it ended.

`guarded_run(cfg)` wraps a training run: it prepares and locks the output directory, and on any
exception leaves `run.json` saying `status: failed` with the `error` (a gates failure included: a run
directory never holds only a data report and no word on why). User errors stay one line; an OS error
the user can fix (a full disk) becomes one; anything else is a bug and keeps its traceback.
A `run.json` of an earlier, completed run in the same directory is left as it was: that run's
record is still true. A run that fails before writing anything (a bad record, a bad model path)
removes the directory it created, so a typo leaves no trace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def mark_failed(run_dir: Path, cfg: RunConfig, error: BaseException) -> None:
    """Set run.json to failed with the error; write a small one if the run had not written it yet."""
    path = run_dir / "run.json"
    info: dict = {}
    if path.is_file():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        if info.get("status") == "completed":
            return
    if not info:
        info = {"status": "failed", "config": to_dict(cfg)}
    info.update(status="failed", error=error_text(error))
    try:
        write_json(path, info)
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
