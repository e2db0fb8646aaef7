"""One run per output directory: an exclusive lock on `run_dir/.lock`, held while `alignline train` runs.

Two runs writing one directory would interleave metrics, prune each other's checkpoints and both
write `final/`. `flock` is released by the kernel when the process ends, however it ends (SIGKILL
included), so a crashed run never leaves a stale lock; the file stays, holding the last holder's pid.
Where `fcntl` does not exist (Windows) runs are not locked.

The lock file is opened without following a symbolic link (O_NOFOLLOW) and must be a regular file: the run
truncates it and writes its pid there, so a link planted at `.lock` in a shared output directory would make
the run overwrite whatever file it points to. Either is refused in one line (exit 2), naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from alignline.errors import UserError

LOCK_NAME = ".lock"
NOT_A_FILE = "{path} is not a regular file; remove it (a run keeps its lock in a plain file there)"


class RunDirLocked(UserError):
    """Another process holds the run directory's lock."""


class LockFileUnsafe(UserError):
    """`run_dir/.lock` is a symbolic link or not a regular file."""


def open_lock_file(path: Path) -> int:
    """A read-write descriptor on the regular file `path` (created 0644), never through a symbolic link."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:  # O_NOFOLLOW met a link as the last component
            raise LockFileUnsafe(
                f"{path} is a symbolic link (to {os.readlink(path)}); alignline does not follow "
                "it, since a run overwrites its lock file: remove the link"
            ) from None
        if e.errno == errno.EISDIR:
            raise LockFileUnsafe(NOT_A_FILE.format(path=path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LockFileUnsafe(NOT_A_FILE.format(path=path))
    return fd


class RunLock:
    """`with RunLock(run_dir):` holds the lock or raises `RunDirLocked` naming the directory and the holder."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # no flock on this platform
            return
        fd = open_lock_file(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirLocked(
                f"output_dir {self.run_dir} is in use by another alignline run (pid {holder}); wait "
                "for it to finish, or choose another output_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
