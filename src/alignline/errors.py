"""User-facing errors: one clear line, exit code 2, no traceback.

Every error a user can cause by what they wrote (a config, a data file, a model path) is raised as a
`UserError`; the CLI prints `str(error)` and exits 2. Anything else is a bug and keeps its traceback.
`warn` prints a warning in the same one-line shape (training goes on).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path


class UserError(Exception):
    """An error in the user's input. The message is the whole story: say what, where and what is allowed."""

    exit_code = 2


class ConfigError(UserError):
    """A bad key or value in a recipe or an override; the message names the dotted key."""


class DataError(UserError):
    """A bad data file or record: names the file, the record (`line 3`, `row 7`, `record 2`) and the field."""

    def __init__(self, path: str, message: str, record: str | None = None, field: str | None = None):
        where = str(path)
        if record is not None:
            where += f", {record}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
        self.path, self.record, self.field = str(path), record, field


class ModelError(UserError):
    """A model that cannot be found or loaded as asked."""


def missing_reason(path: str | Path) -> str:
    """Why a path that `exists()` says is not there cannot be opened, in words: missing, a broken link, a symlink
    loop (`Path.exists()` is False for all three, so a bare "no such file" sends a user looking for a file that is
    there, as a link)."""
    p = Path(path)
    try:
        os.stat(p)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symlink loop (the link points back to itself through other links)"
        if e.errno == errno.EACCES:
            return "permission denied (a directory on the way cannot be searched)"
        if p.is_symlink():
            return f"a broken symbolic link (it points to {os.readlink(p)}, which does not exist)"
        return "no such file or directory"
    return "no such file or directory"


def warn(message: str) -> None:
    """One warning line on stderr, in the shape of the CLI's one-line errors."""
    print(f"alignline: warning: {message}", file=sys.stderr)
