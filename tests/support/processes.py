"""Subprocess helpers for tests: a run killed at a chosen point (the crash a resume test recovers from)."""

from __future__ import annotations

from pathlib import Path


def kill_when_exists(cmd: list[str], marker: Path, env: dict, timeout: float = 300) -> None:
    """Run `cmd` and SIGKILL it as soon as `marker` exists (a checkpoint directory): the crash a resume test
    recovers from. Fails if the process ends first."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not marker.exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline, f"{marker} did not appear within {timeout} s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
