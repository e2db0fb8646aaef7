"""Checks the training loop makes on what the user gave it, each one line in the loop.

Every refusal is a `UserError` (one line, exit 2) saying what is wrong and what to do: an output
directory that cannot be written, nothing to train, a run that diverged, a full disk. Every save of a
run (checkpoint, optimizer, tokenizer, final and merged model, run.json, metrics, report) goes through
`saving(path)`: a full disk, a quota, a read-only or forbidden directory becomes one line naming the file
(the tokenizer's Rust writer raises a plain `Exception("... (os error 28)")`, read as the OS error it is).
"""

from __future__ import annotations

import errno
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alignline.errors import ConfigError, UserError, warn  # noqa: F401  (warn re-exported: it lives in errors.py)

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
WRITE_REFUSED = (errno.EROFS, errno.EACCES, errno.EPERM)
TORCH_WRITER_FAILED = r"inline_container\.cc|PytorchStreamWriter failed|file write failed"


class TrainingDiverged(UserError):
    """The loss or the gradient norm became NaN or infinite: nothing after it is worth saving."""


class DiskFull(UserError):
    """The disk filled up while the run was writing."""


class NotWritable(UserError):
    """A file of the run could not be written: a read-only file system, a permission denied."""


def prepare_output_dir(path: str | Path) -> Path:
    """Create `output_dir` (and its parents), or say in one line why it cannot be a run directory."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"config key 'output_dir': {p} is a file, not a directory")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"config key 'output_dir': {parent} is a file, so {p} cannot be created under it")
            break
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"config key 'output_dir': cannot create {p} ({e.strerror or type(e).__name__})") from None
    return p


def not_writable(path: Path, error: OSError) -> ConfigError:
    return ConfigError(f"config key 'output_dir': {path} is not writable ({error.strerror or type(error).__name__})")


def check_trainable(params: list, cfg) -> None:
    """Refuse a run that would train nothing and still report success."""
    if sum(p.numel() for p in params) == 0:
        what = f"adapter type '{cfg.adapter.type}'" if cfg.adapter is not None else "full fine-tuning"
        raise ConfigError(
            f"nothing to train: 0 trainable parameters ({what}, training.freeze_layers="
            f"{cfg.training.freeze_layers}); check the adapter section and freeze_layers"
        )


def check_finite(record: dict) -> None:
    """Stop at the first non-finite loss or gradient norm, naming the step (before it is logged or saved)."""
    bad = {k: record[k] for k in ("loss", "grad_norm") if k in record and not math.isfinite(record[k])}
    if bad:
        values = ", ".join(f"{k} = {v}" for k, v in bad.items())
        hint = "lower training.lr" + ("" if "grad_norm" in record else " or set training.max_grad_norm (clipping)")
        raise TrainingDiverged(
            f"training diverged at step {record['step']}: {values} "
            f"(lr {record.get('lr', math.nan):.3g}); {hint}; no final model was written"
        )


def os_error_code(error: BaseException) -> tuple[int, str] | None:
    """(errno, its text) of an OS error, also where a library reports one as a plain `Exception`:
    tokenizers' Rust `save` raises `Exception("No space left on device (os error 28)")`."""
    if isinstance(error, OSError):
        return (error.errno, error.strerror or os.strerror(error.errno)) if error.errno else None
    if type(error) is Exception or type(error).__name__ in ("PanicException", "SafetensorError"):
        # Rust's io::Error as displayed ("(os error 28)") or debug-printed ("Os { code: 28, ...")
        found = re.search(r"\(os error (\d+)\)|\bOs \{ code: (\d+)", str(error))
        if found:
            code = int(found.group(1) or found.group(2))
            return code, os.strerror(code)
    return None


def write_failure(
    error: BaseException, path: str | Path | None = None, refused: tuple[int, ...] = WRITE_REFUSED
) -> UserError | None:
    """The one-line form of a failed write the user can fix (a full disk, a quota, a read-only or
    forbidden directory), naming the file (the error's own, else `path`); None for anything else."""
    got = os_error_code(error)
    if got is None:
        if isinstance(error, RuntimeError) and re.search(TORCH_WRITER_FAILED, str(error)):
            # torch.save's zip writer reports a failed write without its errno (a full disk reads
            # "unexpected pos 576 vs 534")
            first = (str(error).strip().splitlines() or [""])[0][:120]
            return NotWritable(
                f"could not write {path or 'a file of the run'} (torch: {first}); the disk may be "
                "full: free some space or set output_dir to another disk"
            )
        return None
    code, why = got
    target = getattr(error, "filename", None) or path
    where = f" writing {target}" if target else ""
    if code in DISK_FULL:
        return DiskFull(
            f"no space left on the device{where} ({why}); free some space (or set output_dir to "
            "another disk) and run again (it resumes from the last complete checkpoint)"
        )
    if code in refused:
        return NotWritable(
            f"could not write {target or 'the output'} ({why}); make it writable or set output_dir "
            "to a writable directory"
        )
    return None


@contextmanager
def saving(path: str | Path) -> Iterator[None]:
    """Around a save of `path` (a checkpoint, the final model, the tokenizer, run.json): a write the user
    can fix becomes one line naming it; anything else keeps its traceback."""
    try:
        yield
    except UserError:
        raise
    except Exception as e:
        friendly = write_failure(e, path)
        if friendly is None:
            raise
        raise friendly from None


def as_user_error(error: BaseException) -> UserError | None:
    """The user-facing form of an OS error the user can fix (a full disk, a read-only file system) raised
    anywhere in a run, else None. (Permission errors are converted only around saves, by `saving`: a
    forbidden read is not a write failure.)"""
    return write_failure(error, None, refused=(errno.EROFS,))
