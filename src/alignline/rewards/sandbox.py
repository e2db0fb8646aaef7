"""Run untrusted Python in a subprocess with resource limits: `run_code(source) -> SandboxResult`.

What it protects against (mode "bwrap", the default where bubblewrap works):
- network: the child has its own network namespace (no interfaces but a down loopback), so no connection
  to the host's loopback servers or outside; filesystem unix sockets are hidden (/run, /tmp, $HOME tmpfs);
- writes outside its working directory: `/` is mounted read-only; the working directory and /tmp live on a
  size-limited tmpfs inside the sandbox (`max_disk_mb`, default 64, together): writing more fails with "No
  space left on device", nothing lands on the host's disk, and it all vanishes with the sandbox. The quota is
  memory while the program runs (at most `max_disk_mb` per run, plus 1 MB each for the hidden /run and $HOME);
- runaway CPU, memory, file size, core dumps: RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE (`max_file_mb`), RLIMIT_CORE=0;
- runaway output: stdout and stderr are read as they stream, in 64 KiB chunks; the first MAX_OUTPUT characters
  of each are kept (`truncated` says more came) and the rest is dropped as it arrives, so the caller's memory
  stays bounded whatever the program prints; past `max_output_mb` in all the program is killed
  (`exceeded="output"`);
- wall time: the parent kills the whole process group at `timeout_s`; the PID namespace means every
  process the child started dies with it;
- fork bombs: RLIMIT_NPROC. As root it would not bind (root is exempt), so as root the child is run as
  uid/gid 65534 (nobody) via setpriv; the count is then that of every `nobody` process on the machine.

What it does NOT protect against: reading files (the whole filesystem is visible read-only, apart from
the hidden directories above), kernel exploits and namespace escapes, side channels. It is a guard against
buggy and mildly hostile completions in RL training and evaluation, not a security boundary for adversarial
code: use a VM for that.

Modes: "auto" and "bwrap" need bubblewrap (>= 0.5, for `--size`) and refuse, with one line saying why, where it
does not work. "unsafe_local" (the recipe's `sandbox: unsafe_local`) uses bubblewrap where it works and otherwise
falls back to a plain subprocess with the rlimits only: network and filesystem open, fork bombs still bounded by
RLIMIT_NPROC (as root, the child drops to nobody first). Without a PID namespace, the program runs under a small
supervisor (`subreaper.py`, a Linux child subreaper) that kills every process it left behind when it exits or at
the wall limit, a daemon that double-forked and called setsid included (as root the supervisor stays root, out of
the program's reach; as an ordinary user the program could kill it, and then only its process group is killed).
Its working directory is a host directory whose size is polled every 20 ms (each entry counted as at least 4 KiB,
so many empty files count too): over `max_disk_mb` the program is killed (`exceeded="disk"`); a fast writer
can overshoot by what it writes in those 20 ms, RLIMIT_FSIZE still caps each file, and the directory is removed
after the run. Files written elsewhere are not counted. It warns loudly once per process and says so in `mode`.
"""

from __future__ import annotations

import os
import resource
import selectors
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
OUTPUT_CHUNK = 1 << 16  # bytes read from a pipe at a time
NOBODY = 65534
HIDDEN_TMPFS_BYTES = 1 << 20  # /run and $HOME are hidden behind tmpfs mounts with next to no room
DISK_POLL_S = 0.02  # unsafe_local: how often the working directory's size is measured
MIN_ENTRY_BYTES = 4096  # unsafe_local: each file or directory counts at least one filesystem block
SUBREAPER = Path(__file__).with_name("subreaper.py")


@dataclass
class SandboxResult:
    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    killed_by: str | None  # signal name when a signal ended the program ("SIGKILL" at the wall limit)
    wall_s: float
    mode: str  # "bwrap" or "unsafe_local"
    truncated: bool = False  # stdout or stderr was longer than MAX_OUTPUT characters (the rest was dropped)
    exceeded: str | None = None  # "output" or "disk" when that limit got the program killed

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
    r = subprocess.run(
        [
            exe,
            "--unshare-net",
            "--unshare-pid",
            "--ro-bind",
            "/",
            "/",
            "--size",
            str(1 << 20),
            "--tmpfs",
            "/tmp",
            "true",
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0 and "--size" in r.stderr:
        return "bubblewrap is too old for a size-limited tmpfs (--size needs bubblewrap >= 0.5)"
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


UNSAFE_WARNING = (
    "sandbox: bubblewrap is not usable here ({why}); `sandbox: unsafe_local` runs reward code in a "
    "plain subprocess with resource limits only: it CAN reach the network and write files"
)


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


def _bwrap_argv(workdir: str, inputs: dict[str, int], disk_bytes: int) -> list[str]:
    """bubblewrap's command line: `inputs` maps each file of the working directory (relative name) to an open
    descriptor that bwrap copies into the sandbox's own tmpfs, so nothing the program writes reaches the host."""
    argv = [
        "bwrap",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--perms",
        "1777",
        "--size",
        str(disk_bytes),
        "--tmpfs",
        "/tmp",
        "--size",
        str(HIDDEN_TMPFS_BYTES),
        "--tmpfs",
        "/run",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    home = os.path.expanduser("~")
    if home not in ("/", "") and not Path(sys.executable).resolve().is_relative_to(home) and os.path.isdir(home):
        argv += ["--size", str(HIDDEN_TMPFS_BYTES), "--tmpfs", home]
    # The interpreter must stay visible: a Python installed under a hidden directory is bound back, read-only.
    for prefix in {os.path.realpath(sys.base_prefix), str(Path(interpreter()).parent.parent)}:
        if any(Path(prefix).is_relative_to(hidden) for hidden in ("/tmp", "/run")):
            argv += ["--ro-bind", prefix, prefix]
    if Path(workdir).is_relative_to("/tmp"):  # inside /tmp's tmpfs: one quota for both
        argv += ["--perms", "0777", "--dir", workdir]
    else:
        argv += ["--perms", "0777", "--size", str(disk_bytes), "--tmpfs", workdir]
    parents = sorted({str(parent) for name in inputs for parent in Path(name).parents[:-1]}, key=len)
    for parent in parents:  # "a/b/c.txt": a, then a/b
        argv += ["--perms", "0777", "--dir", f"{workdir}/{parent}"]
    for name, fd in inputs.items():
        argv += ["--perms", "0666", "--file", str(fd), f"{workdir}/{name}"]
    argv += ["--chdir", workdir, "--setenv", "HOME", workdir, "--setenv", "TMPDIR", workdir]
    if os.getuid() == 0:
        argv += [
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--",
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
        ]
    else:
        argv += ["--"]
    return argv


def _stage(workdir: str, code: str, files: dict[str, str] | None) -> list[str]:
    """Write main.py and `files` into the host's staging directory; their relative names."""
    names = ["main.py"]
    (Path(workdir) / "main.py").write_text(code)
    for name, text in (files or {}).items():
        target = Path(workdir) / name
        if not target.resolve().is_relative_to(Path(workdir).resolve()):
            raise ConfigError(f"sandbox: file name '{name}' leaves the working directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        names.append(str(target.relative_to(workdir)))
    return names


def directory_bytes(path: str, stop_at: int) -> int:
    """Space taken under `path` (allocated blocks, each entry at least MIN_ENTRY_BYTES), counted until it
    passes `stop_at`: a directory of a million files is not walked to the end every poll."""
    total, stack = 0, [path]
    while stack and total <= stop_at:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:  # removed meanwhile
                        continue
                    total += max(st.st_blocks * 512, MIN_ENTRY_BYTES)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total


@dataclass
class _Output:
    """One pipe's output: the first `keep` bytes kept, the rest counted and dropped."""

    keep: int
    kept: bytearray
    seen: int = 0

    def add(self, chunk: bytes) -> None:
        room = self.keep - len(self.kept)
        if room > 0:
            self.kept += chunk[:room]
        self.seen += len(chunk)

    def text(self) -> tuple[str, bool]:
        """The kept text (at most MAX_OUTPUT characters) and whether anything was cut."""
        text = bytes(self.kept).decode(errors="replace")
        return text[:MAX_OUTPUT], self.seen > len(self.kept) or len(text) > MAX_OUTPUT


def _watch(
    proc: subprocess.Popen, deadline: float, max_output: int, workdir: str | None, max_disk: int
) -> tuple[_Output, _Output, str | None]:
    """Read stdout and stderr as they come until both close and the program has exited. Returns the two outputs
    and why the program must be stopped: "time", "output" or "disk" (`workdir` polled only when given), or None."""
    keep = 4 * MAX_OUTPUT  # UTF-8: enough bytes for MAX_OUTPUT characters of any kind
    outputs = {proc.stdout.fileno(): _Output(keep, bytearray()), proc.stderr.fileno(): _Output(keep, bytearray())}
    out, err = outputs.values()
    next_poll = time.monotonic()
    with selectors.DefaultSelector() as selector:
        for fd in outputs:
            selector.register(fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if now >= deadline:
                return out, err, "time"
            if workdir is not None and now >= next_poll:
                if directory_bytes(workdir, max_disk) > max_disk:
                    return out, err, "disk"
                next_poll = now + DISK_POLL_S
            wait = min(deadline - now, DISK_POLL_S)
            if not selector.get_map():  # both pipes closed: only the exit is left to wait for
                try:
                    proc.wait(wait)
                    return out, err, None
                except subprocess.TimeoutExpired:
                    continue
            for key, _ in selector.select(wait):
                chunk = os.read(key.fd, OUTPUT_CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                outputs[key.fd].add(chunk)
                if out.seen + err.seen > max_output:
                    return out, err, "output"


def _stop(proc: subprocess.Popen, mode: str) -> None:
    """Kill the program and everything it started."""
    if mode == "unsafe_local":  # the supervisor kills every descendant, daemons included, then itself
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(2)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:  # bwrap: the PID namespace goes with it; unsafe_local: whatever is left in the group
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_code(
    source: str | Path,
    *,
    timeout_s: float = 10,
    cpu_s: int | None = None,
    memory_mb: int = 512,
    max_processes: int = 64,
    max_file_mb: int = 16,
    stdin: str | None = None,
    files: dict[str, str] | None = None,
    mode: str = "auto",
    max_output_mb: int = 8,
    max_disk_mb: int = 64,
) -> SandboxResult:
    """Run Python `source` (code, or a path to a .py file) in the sandbox; see the module docstring."""
    if min(timeout_s, memory_mb, max_processes, max_file_mb, max_output_mb, max_disk_mb) <= 0:
        raise ConfigError(
            "sandbox: timeout_s, memory_mb, max_processes, max_file_mb, max_output_mb and max_disk_mb must be positive"
        )
    mode = resolve_mode(mode)
    code = Path(source).read_text() if isinstance(source, Path) else source
    cpu = int(cpu_s if cpu_s is not None else max(1, int(timeout_s) + 1))
    workdir = tempfile.mkdtemp(prefix="alignline-sandbox-")
    opened: list[int] = []
    try:
        os.chmod(workdir, 0o777)  # the child may run as nobody
        names = _stage(workdir, code, files)
        argv = [interpreter(), "-I", "main.py"]
        drop_root = False
        if mode == "bwrap":
            opened = [os.open(Path(workdir) / name, os.O_RDONLY) for name in names]
            argv = _bwrap_argv(workdir, dict(zip(names, opened)), max_disk_mb << 20) + argv
        else:
            if os.getuid() == 0:  # root ignores RLIMIT_NPROC: run as nobody (setpriv, as bwrap mode does)
                if shutil.which("setpriv"):
                    argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] + argv
                else:
                    drop_root = True
            argv = [interpreter(), "-I", str(SUBREAPER)] + argv  # no PID namespace: it collects the leftovers
        with tempfile.TemporaryFile() as stdin_file:
            stdin_file.write((stdin or "").encode())
            stdin_file.seek(0)
            start = time.monotonic()
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=workdir,
                    stdin=stdin_file,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    pass_fds=opened,
                    preexec_fn=_limits(cpu, memory_mb, max_processes, max_file_mb, drop_root),
                    env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir},
                )
            except PermissionError as e:  # as nobody, without setpriv, an interpreter under /root is out of reach
                raise ConfigError(
                    f"sandbox: cannot start {argv[0]} as the unprivileged user ({e.strerror}); "
                    "install setpriv (util-linux) or Python outside a private home directory"
                ) from None
        for fd in opened:
            os.close(fd)
        opened = []
        with proc:
            polled = workdir if mode == "unsafe_local" else None  # bwrap: the tmpfs quota binds by itself
            out, err, stop = _watch(proc, start + timeout_s, max_output_mb << 20, polled, max_disk_mb << 20)
            if stop is not None:
                _stop(proc, mode)
            wall = time.monotonic() - start
            if mode == "unsafe_local":
                try:  # stragglers left in the group (the supervisor reaps the rest)
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    finally:
        for fd in opened:
            os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)
    return _result(proc.returncode, stop, out, err, wall, mode)


def _result(rc: int | None, stop: str | None, out: _Output, err: _Output, wall: float, mode: str) -> SandboxResult:
    killed_by = signal.Signals(-rc).name if rc is not None and rc < 0 else None
    if mode == "bwrap" and rc is not None and rc > 128 and stop is None:  # bwrap reports a signalled child as 128+n
        try:
            killed_by = signal.Signals(rc - 128).name
        except ValueError:
            pass
    if stop is not None:
        killed_by = "SIGKILL"
    stdout, cut_out = out.text()
    stderr, cut_err = err.text()
    return SandboxResult(
        rc,
        stop == "time",
        stdout,
        stderr,
        killed_by,
        round(wall, 3),
        mode,
        cut_out or cut_err,
        stop if stop in ("output", "disk") else None,
    )
