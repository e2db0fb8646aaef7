"""Checks the training loop makes on what the user gave it, each one line in the loop.

Every refusal is a `UserError` (one line, exit 2) saying what is wrong and what to do: an output
directory that cannot be written, nothing to train, a run that diverged, a full disk.
"""

from __future__ import annotations

import errno
import math
import sys
from pathlib import Path

from alignline.errors import ConfigError, UserError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class TrainingDiverged(UserError):
    """The loss or the gradient norm became NaN or infinite: nothing after it is worth saving."""


class DiskFull(UserError):
    """The disk filled up while the run was writing."""


def warn(message: str) -> None:
    """One warning line on stderr, in the shape of the CLI's one-line errors."""
    print(f"alignline: warning: {message}", file=sys.stderr)


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
        raise ConfigError(f"nothing to train: 0 trainable parameters ({what}, training.freeze_layers="
                          f"{cfg.training.freeze_layers}); check the adapter section and freeze_layers")


def check_finite(record: dict) -> None:
    """Stop at the first non-finite loss or gradient norm, naming the step (before it is logged or saved)."""
    bad = {k: record[k] for k in ("loss", "grad_norm") if k in record and not math.isfinite(record[k])}
    if bad:
        values = ", ".join(f"{k} = {v}" for k, v in bad.items())
        hint = "lower training.lr" + ("" if "grad_norm" in record else " or set training.max_grad_norm (clipping)")
        raise TrainingDiverged(f"training diverged at step {record['step']}: {values} "
                               f"(lr {record.get('lr', math.nan):.3g}); {hint}; no final model was written")


def as_user_error(error: BaseException) -> UserError | None:
    """The user-facing form of an OS error the user can fix (a full disk), else None."""
    if isinstance(error, OSError) and error.errno in DISK_FULL:
        where = f" writing {error.filename}" if error.filename else ""
        return DiskFull(f"no space left on the device{where} ({error.strerror}); free some space and run again "
                        "(it resumes from the last complete checkpoint)")
    return None
