"""Run a command, then kill every process it left behind: `python -I subreaper.py CMD [ARGS...]`.

The sandbox's `unsafe_local` mode has no PID namespace, and killing the child's process group misses a daemon
that double-forks and calls `setsid` (it leaves the group and the session, and is reparented to init). This
process marks itself a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`, Linux >= 3.4), so every orphan among
its descendants is reparented here instead. When the command exits, or this process gets SIGTERM (the parent's
wall limit), every remaining descendant is SIGKILLed and reaped until none is left; then this process exits with
the command's status (a signal that ended the command is re-raised, so the parent sees the same).

Run as a script by the sandbox (no alignline import: it runs with `-I`, outside the virtual environment). As root
it stays root while the command drops to `nobody`, so the command cannot kill it; an unprivileged command of the
same user can, and then only its process group is killed by the parent.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """True when this process now receives its orphaned descendants (False off Linux or on an old kernel)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def children(pid: int) -> list[int]:
    """The children of `pid` (zombies included), from /proc."""
    try:  # one file per thread; this process has one thread
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:  # kernel without CONFIG_PROC_CHILDREN: scan every process's parent
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()  # the command name may hold spaces
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    found.append(int(entry))
        return found


def kill_descendants() -> None:
    """SIGKILL and reap every child until there is none: a killed child's own children are reparented here
    and are found by the next round."""
    me = os.getpid()
    while True:
        for child in children(me):
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if reaped == 0:  # children left, none dead yet (a SIGKILL lands in microseconds)
            time.sleep(0.005)


def exit_like(status: int) -> None:
    """Exit with the command's wait status: the same code, or the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # only if the signal did not end this process
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def main(argv: list[str]) -> None:
    become_subreaper()
    command = os.fork()
    if command == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            print(f"cannot start {argv[0]}: {e.strerror}", file=sys.stderr)
            os._exit(127)

    def on_term(signum, frame) -> None:  # the parent's wall limit: take everything down, then die as killed
        kill_descendants()
        os.kill(os.getpid(), signal.SIGKILL)

    signal.signal(signal.SIGTERM, on_term)
    _, status = os.waitpid(command, 0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    kill_descendants()
    exit_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
