"""Run untrusted Python in a subprocess with resource limits: `run_code(source) -> SandboxResult`.

What it protects against (mode "bwrap", the default where bubblewrap works):
- network: the child has its own network namespace (no interfaces but a down loopback), so no connection
  to the host's loopback servers or outside; filesystem unix sockets are hidden (/run, /tmp, $HOME tmpfs);
- writes outside its working directory: `/` is mounted read-only, a fresh temporary directory (removed
  afterwards) is the only writable place besides an empty /tmp;
- runaway CPU, memory, file size, core dumps: RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_CORE=0;
- wall time: the parent kills the whole process group at `timeout_s`; the PID namespace means every
  process the child started dies with it;
- fork bombs: RLIMIT_NPROC. As root it would not bind (root is exempt), so as root the child is run as
  uid/gid 65534 (nobody) via setpriv; the count is then that of every `nobody` process on the machine.

What it does NOT protect against: reading files (the whole filesystem is visible read-only, apart from
the hidden directories above), kernel exploits and namespace escapes, a /tmp tmpfs filled with many
small files (memory), side channels. It is a guard against buggy and mildly hostile completions in RL
training and evaluation, not a security boundary for adversarial code: use a VM for that.

Modes: "auto" and "bwrap" need bubblewrap and refuse, with one line saying why, where it does not work.
"unsafe_local" (the recipe's `sandbox: unsafe_local`) uses bubblewrap where it works and otherwise falls back
to a plain subprocess with the rlimits only: network and filesystem open, fork bombs still bounded by
RLIMIT_NPROC (as root, the child drops to nobody first) and the process group killed at the wall limit. It
warns loudly once per process and says so in `mode`.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from alignline.errors import ConfigError

MAX_OUTPUT = 64_000  # characters kept of stdout and of stderr each
NOBODY = 65534


@dataclass
class SandboxResult:
    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    killed_by: str | None  # signal name when a signal ended the program ("SIGKILL" at the wall limit)
    wall_s: float
    mode: str  # "bwrap" or "unsafe_local"
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def to_dict(self) -> dict:
        return asdict(self)


def bwrap_available() -> str | None:
    """None when bubblewrap is installed and works here; else why not, in a few words."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap not installed: apt-get install bubblewrap"
    r = subprocess.run([exe, "--unshare-net", "--unshare-pid", "--ro-bind", "/", "/", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"bubblewrap cannot create namespaces here ({r.stderr.strip()[:200]})"
    return None


def _limits(cpu_s: int, memory_mb: int, max_processes: int, max_file_mb: int, drop_root: bool = False):
    def apply() -> None:  # in the child, before exec
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_mb << 20, max_file_mb << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if drop_root:  # root ignores RLIMIT_NPROC (used where setpriv is missing)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
    return apply


UNSAFE_WARNING = ("sandbox: bubblewrap is not usable here ({why}); `sandbox: unsafe_local` runs reward code in a "
                  "plain subprocess with resource limits only: it CAN reach the network and write files")


def resolve_mode(mode: str) -> str:
    """The mode a run will use: "bwrap" where bubblewrap works, "unsafe_local" only where asked for and it does
    not; a ConfigError (one line) where it does not and unsafe_local was not asked for."""
    if mode not in ("auto", "bwrap", "unsafe_local"):
        raise ConfigError(f"sandbox mode '{mode}': expected auto, bwrap or unsafe_local")
    why = bwrap_available()
    if why is None:
        return "bwrap"
    if mode != "unsafe_local":
        raise ConfigError(f"sandbox: {why}; or set `sandbox: unsafe_local` to run with resource limits only")
    warnings.warn(UNSAFE_WARNING.format(why=why), stacklevel=3)  # once per process (the default filter)
    return "unsafe_local"


def interpreter() -> str:
    """The real Python binary behind this one: a virtual environment's `python` is a link into the base
    install, and `-I` needs none of the environment's packages, so the sandbox need not see the venv
    (which may live in a hidden directory such as /tmp)."""
    return os.path.realpath(sys.executable)


def _bwrap_argv(workdir: str) -> list[str]:
    argv = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
            "--new-session", "--ro-bind", "/", "/", "--tmpfs", "/tmp", "--tmpfs", "/run", "--dev", "/dev",
            "--proc", "/proc"]
    home = os.path.expanduser("~")
    if home not in ("/", "") and not Path(sys.executable).resolve().is_relative_to(home) and os.path.isdir(home):
        argv += ["--tmpfs", home]
    # The interpreter must stay visible: a Python installed under a hidden directory is bound back, read-only.
    for prefix in {os.path.realpath(sys.base_prefix), str(Path(interpreter()).parent.parent)}:
        if any(Path(prefix).is_relative_to(hidden) for hidden in ("/tmp", "/run")):
            argv += ["--ro-bind", prefix, prefix]
    argv += ["--bind", workdir, workdir, "--chdir", workdir, "--setenv", "HOME", workdir, "--setenv", "TMPDIR", workdir]
    if os.getuid() == 0:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                 "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    else:
        argv += ["--"]
    return argv


def run_code(source: str | Path, *, timeout_s: float = 10, cpu_s: int | None = None, memory_mb: int = 512,
             max_processes: int = 64, max_file_mb: int = 16, stdin: str | None = None,
             files: dict[str, str] | None = None, mode: str = "auto") -> SandboxResult:
    """Run Python `source` (code, or a path to a .py file) in the sandbox; see the module docstring."""
    if timeout_s <= 0 or memory_mb <= 0 or max_processes <= 0 or max_file_mb <= 0:
        raise ConfigError("sandbox: timeout_s, memory_mb, max_processes and max_file_mb must be positive")
    mode = resolve_mode(mode)
    code = Path(source).read_text() if isinstance(source, Path) else source
    cpu = int(cpu_s if cpu_s is not None else max(1, int(timeout_s) + 1))
    workdir = tempfile.mkdtemp(prefix="alignline-sandbox-")
    try:
        os.chmod(workdir, 0o777)  # the child may run as nobody
        (Path(workdir) / "main.py").write_text(code)
        for name, text in (files or {}).items():
            target = Path(workdir) / name
            if not target.resolve().is_relative_to(Path(workdir).resolve()):
                raise ConfigError(f"sandbox: file name '{name}' leaves the working directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        argv = [interpreter(), "-I", "main.py"]
        drop_root = False
        if mode == "bwrap":
            argv = _bwrap_argv(workdir) + argv
        elif os.getuid() == 0:  # root ignores RLIMIT_NPROC: run as nobody (setpriv, as bwrap mode does)
            if shutil.which("setpriv"):
                argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] + argv
            else:
                drop_root = True
        start = time.monotonic()
        try:
            proc = subprocess.Popen(argv, cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE,
                                    preexec_fn=_limits(cpu, memory_mb, max_processes, max_file_mb, drop_root),
                                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir})
        except PermissionError as e:  # as nobody, without setpriv, an interpreter under /root is out of reach
            raise ConfigError(f"sandbox: cannot start {argv[0]} as the unprivileged user ({e.strerror}); install "
                              "setpriv (util-linux) or Python outside a private home directory") from None
        timed_out = False
        try:
            out, err = proc.communicate(stdin.encode() if stdin else b"", timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        wall = time.monotonic() - start
        if mode == "unsafe_local":
            try:  # stragglers left in the group (no PID namespace to take them)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rc = proc.returncode
    killed_by = signal.Signals(-rc).name if rc is not None and rc < 0 else None
    if mode == "bwrap" and rc is not None and rc > 128 and not timed_out:  # bwrap reports a signalled child as 128+n
        try:
            killed_by = signal.Signals(rc - 128).name
        except ValueError:
            pass
    if timed_out:
        killed_by = "SIGKILL"
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    truncated = len(stdout) > MAX_OUTPUT or len(stderr) > MAX_OUTPUT
    return SandboxResult(rc, timed_out, stdout[:MAX_OUTPUT], stderr[:MAX_OUTPUT], killed_by, round(wall, 3), mode, truncated)
