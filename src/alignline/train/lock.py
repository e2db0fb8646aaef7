"""One run per output directory: an exclusive lock on `run_dir/.lock`, held while `alignline train` runs.

Two runs writing one directory would interleave metrics, prune each other's checkpoints and both
write `final/`. `flock` is released by the kernel when the process ends, however it ends (SIGKILL
included), so a crashed run never leaves a stale lock; the file stays, holding the last holder's pid.
Where `fcntl` does not exist (Windows) runs are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path

from alignline.errors import UserError

LOCK_NAME = ".lock"


class RunDirLocked(UserError):
    """Another process holds the run directory's lock."""


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
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirLocked(f"output_dir {self.run_dir} is in use by another alignline run (pid {holder}); wait "
                               "for it to finish, or choose another output_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
