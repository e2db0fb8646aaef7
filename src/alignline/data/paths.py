"""Why a data path cannot be opened, in words: missing, a broken link, a symlink loop.

`Path.exists()` is False for all three, so a bare "no such file" sends a user looking for a file
that is there, as a link.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


def missing_reason(path: str | Path) -> str:
    """What is wrong with a path that `exists()` says is not there."""
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
