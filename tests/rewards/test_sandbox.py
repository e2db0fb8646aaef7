"""The sandbox: network refused, no writes outside its directory, time/memory/process limits, output bounded."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import warnings

import pytest

from alignline.rewards.sandbox import MAX_OUTPUT, bwrap_available, run_code

_WHY = bwrap_available()
if _WHY is not None:
    if os.environ.get("ALIGNLINE_REQUIRE_SANDBOX") == "1":
        raise RuntimeError(f"ALIGNLINE_REQUIRE_SANDBOX=1 but {_WHY}")
    pytest.skip(_WHY, allow_module_level=True)


def test_runs_and_captures():
    r = run_code("import sys; print('out'); print('err', file=sys.stderr)")
    assert (r.returncode, r.stdout, r.stderr.strip(), r.mode) == (0, "out\n", "err", "bwrap")


def test_network_refused():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        r = run_code(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)")
        assert r.returncode != 0 and "Error" in r.stderr
        # an outside address: refused before any packet leaves (no route in the namespace)
        r = run_code("import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=1)")
        assert r.returncode != 0 and "unreachable" in r.stderr.lower()
    finally:
        server.close()


def test_no_write_outside_workdir(tmp_path):
    target = tmp_path / "escaped.txt"
    home = os.path.expanduser("~/alignline-sandbox-escape.txt")
    r = run_code(f"open({str(target)!r}, 'w').write('x')")
    assert r.returncode != 0 and not target.exists()
    r = run_code(f"open({home!r}, 'w').write('x')")
    assert r.returncode != 0 and not os.path.exists(home)
    r = run_code("open('inside.txt', 'w').write('x'); print(open('inside.txt').read())")
    assert r.returncode == 0 and r.stdout == "x\n"


def test_time_limit():
    start = time.monotonic()
    r = run_code("while True: pass", timeout_s=1)
    assert r.timed_out and r.killed_by == "SIGKILL" and time.monotonic() - start < 2.5


def test_memory_limit():
    r = run_code("x = bytearray(10**9)", memory_mb=200)
    assert r.returncode != 0 and ("MemoryError" in r.stderr or r.killed_by)


def test_process_limit():
    # linear, not exponential: bounded at 100 even if the limit did not bind
    r = run_code(
        "import os, time\nn = 0\nfor i in range(100):\n    try:\n        pid = os.fork()\n"
        "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(3); os._exit(0)\n"
        "    n += 1\nprint(n)",
        max_processes=8,
        timeout_s=5,
    )
    assert r.returncode == 0 and int(r.stdout) < 8 and r.wall_s < 3


def test_output_truncated():
    r = run_code(f"print('x' * {MAX_OUTPUT * 2})")
    assert r.truncated and len(r.stdout) == MAX_OUTPUT


def test_cli_prints_json(tmp_path, capsys):
    import json

    from alignline.cli import main

    f = tmp_path / "p.py"
    f.write_text("print(2 + 2)")
    assert main(["sandbox", "run", str(f), "--timeout", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["returncode"] == 0 and out["stdout"] == "4\n" and out["timed_out"] is False
    assert main(["sandbox", "run", str(tmp_path / "missing.py")]) == 2
    assert main(["sandbox", "run", str(f), "--timeout", "0"]) == 2


def test_unit_tests_grader():
    from alignline.rewards.registry import get_grader

    grader = get_grader("unit_tests")
    tests = "assert add(2, 3) == 5\ndef test_neg():\n    assert add(-1, 1) == 0\n"
    right = "Sure:\n```python\ndef add(a, b):\n    return a + b\n```"
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    slow = "```python\ndef add(a, b):\n    while True: pass\n```"
    early = "```python\nimport sys\ndef add(a, b):\n    return 0\nsys.exit(0)\n```"
    scores = grader(["q"] * 5, [right, wrong, slow, early, right], tests=[tests] * 4 + [None], timeout_s=1)
    assert scores == [1.0, 0.0, 0.0, 0.0, None]
    half = "def add(a, b):\n    return 5\n"
    two = "def test_a():\n    assert add(2, 3) == 5\ndef test_b():\n    assert add(0, 0) == 0\n"
    assert grader(["q"], [half], tests=[two], partial=True) == [0.5]
    assert grader(["q"], [half], tests=[two]) == [0.0]


def test_refuses_without_bwrap_unless_unsafe_local(monkeypatch):
    from alignline.errors import ConfigError
    from alignline.rewards import sandbox

    which = sandbox.shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None if name == "bwrap" else which(name))
    with pytest.raises(ConfigError, match="bubblewrap not installed.*unsafe_local"):
        run_code("print(1)")
    with pytest.warns(UserWarning, match="unsafe_local"):
        r = run_code("print(1)", mode="unsafe_local")
    assert (r.returncode, r.stdout, r.mode) == (0, "1\n", "unsafe_local")


def _procs_in(workdir: str) -> list[int]:
    """Processes still running with `workdir` as their working directory (a sandboxed run's leftovers)."""
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(workdir):
                left.append(int(pid))
        except OSError:
            pass
    return left


@pytest.mark.parametrize("mode", ["bwrap", "unsafe_local"])
def test_fork_bomb_contained(mode, monkeypatch):
    """The classic exponential bomb ends (limited or killed) by the wall limit and leaves nothing behind."""
    from alignline.rewards import sandbox

    if mode == "unsafe_local":
        monkeypatch.setattr(sandbox, "bwrap_available", lambda: "forced off for the test")
    bomb = "import os\nprint(os.getcwd(), flush=True)\nwhile True:\n    os.fork()\n"
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = run_code(bomb, timeout_s=3, max_processes=16, mode=mode)
    assert r.mode == mode and not r.ok and time.monotonic() - start < 6
    workdir = r.stdout.splitlines()[0]
    assert workdir.startswith(tempfile.gettempdir()) and not os.path.exists(workdir)
    time.sleep(0.2)
    assert _procs_in(workdir) == []
    assert subprocess.run(["true"]).returncode == 0  # the host can still fork


def test_unsafe_local_warns_and_keeps_limits(monkeypatch):
    from alignline.rewards import sandbox

    monkeypatch.setattr(sandbox, "bwrap_available", lambda: "forced off for the test")
    with pytest.warns(UserWarning, match="unsafe_local.*CAN reach the network"):
        r = run_code("while True: pass", timeout_s=1, mode="unsafe_local")
    assert r.timed_out and r.mode == "unsafe_local"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = run_code("x = bytearray(10**9)", memory_mb=200, mode="unsafe_local")
        assert r.returncode != 0 and "MemoryError" in r.stderr
        r = run_code("import os; print(os.getuid())", mode="unsafe_local")
    assert r.stdout.strip() == (str(sandbox.NOBODY) if os.getuid() == 0 else str(os.getuid()))


def test_recipe_sandbox_key_reaches_the_code_grader(tmp_path, monkeypatch):
    """`sandbox:` at the top of a recipe: refused in one line without it, run with limits only with it."""
    from alignline.config import load_config
    from alignline.errors import ConfigError
    from alignline.rewards import sandbox
    from alignline.rewards.combine import RewardSet

    monkeypatch.setattr(sandbox, "bwrap_available", lambda: "bubblewrap not installed")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: grpo\nsandbox: unsafe_local\nrewards:\n  - {name: tests, function: unit_tests}\n")
    cfg = load_config(recipe)
    assert cfg.sandbox == "unsafe_local"
    with pytest.raises(ConfigError, match=r"reward 'tests'.*bubblewrap not installed.*sandbox: unsafe_local"):
        RewardSet(cfg.rewards)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rewards = RewardSet(cfg.rewards, cfg.sandbox)
        scores = rewards.score(["q"], ["def f():\n    return 1\n"], {"tests": ["assert f() == 1"]})
    assert scores.components["tests"] == [1.0]
    recipe.write_text("method: grpo\nsandbox: none\n")
    with pytest.raises(ConfigError, match="sandbox"):
        load_config(recipe)


def _force(mode: str, monkeypatch) -> None:
    from alignline.rewards import sandbox

    if mode == "unsafe_local":
        monkeypatch.setattr(sandbox, "bwrap_available", lambda: "forced off for the test")
        warnings.simplefilter("ignore")


def test_output_read_as_it_streams_memory_stays_bounded():
    """200 MB printed: the caller keeps MAX_OUTPUT characters and its peak memory stays near its start (reading the
    whole output at once cost about 3 times the output: 400 MB printed took the caller from 14 MB to 1.2 GB)."""
    import sys

    probe = (
        "import resource, sys\nfrom alignline.rewards.sandbox import run_code, MAX_OUTPUT\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "r = run_code(\"import sys\\nb = 'x' * (1 << 20)\\nfor _ in range(200):\\n    sys.stdout.write(b)\\n\","
        " timeout_s=30, max_output_mb=1000)\n"
        "assert r.returncode == 0 and r.truncated and len(r.stdout) == MAX_OUTPUT, r\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 50  # MB of peak memory added by a run that printed 200 MB


@pytest.mark.parametrize("mode", ["bwrap", "unsafe_local"])
def test_endless_output_killed_past_the_limit(mode, monkeypatch):
    _force(mode, monkeypatch)
    r = run_code(
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", timeout_s=10, max_output_mb=1, mode=mode
    )
    assert (r.exceeded, r.killed_by, r.timed_out, r.truncated) == ("output", "SIGKILL", False, True)
    assert len(r.stdout) == MAX_OUTPUT and r.wall_s < 5


WRITER = """import os
written = 0
chunk = b'x' * (1 << 20)
try:
    for i in range(160):  # 160 MB in files of 4 MB, under the per-file limit
        with open(os.path.join({where}, f'f{{i}}'), 'ab' if i % 40 else 'wb') as f:
            for _ in range(4):
                f.write(chunk)
                f.flush()
                written += len(chunk)
except OSError as e:
    print(written >> 20, e.strerror)
"""


@pytest.mark.parametrize("where", ["'.'", "'/tmp'"])
def test_disk_quota_bwrap(where):
    """The working directory and /tmp share one size-limited tmpfs: writing stops at the quota with ENOSPC, and
    nothing reaches the host's disk (the host's staging directory holds only main.py)."""
    r = run_code(WRITER.format(where=where), timeout_s=20, max_disk_mb=32, max_file_mb=8)
    written, reason = r.stdout.split(" ", 1)
    assert int(written) <= 32 and reason.strip() == "No space left on device" and r.exceeded is None


def test_disk_quota_unsafe_local(monkeypatch):
    """Without bubblewrap the working directory's size is polled: past the quota the program is killed."""
    _force("unsafe_local", monkeypatch)
    r = run_code(
        WRITER.format(where="'.'") + "import time\ntime.sleep(30)\n",
        timeout_s=20,
        max_disk_mb=32,
        max_file_mb=8,
        mode="unsafe_local",
    )
    assert (r.exceeded, r.killed_by, r.timed_out) == ("disk", "SIGKILL", False) and r.wall_s < 10


def _procs_running(argument: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if argument.encode() in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.parametrize("keeps_stdout", [False, True])
@pytest.mark.parametrize("mode", ["bwrap", "unsafe_local"])
def test_double_forked_daemon_killed(mode, keeps_stdout, monkeypatch):
    """A daemon that double-forks and calls setsid (leaving the process group and the session) dies with the run,
    whether it closed its output (a proper daemon) or still holds the pipe (the call returns at once anyway)."""
    import secrets

    _force(mode, monkeypatch)
    tag = f"1000.{secrets.randbelow(10**6)}"  # `sleep 1000.NNN`: a name no other process has
    detach = (
        ""
        if keeps_stdout
        else ("    fd = os.open(os.devnull, os.O_RDWR)\n    for n in (0, 1, 2):\n        os.dup2(fd, n)\n")
    )
    daemon = (
        "import os\nif os.fork() == 0:\n    os.setsid()\n"
        + detach
        + f"    if os.fork() == 0:\n        os.execvp('sleep', ['sleep', '{tag}'])\n    os._exit(0)\n"
        "os.wait()\nimport time\ntime.sleep(0.3)\nprint('parent exits')\n"
    )
    r = run_code(daemon, timeout_s=10, mode=mode)
    assert r.returncode == 0 and r.stdout == "parent exits\n" and r.wall_s < 5
    time.sleep(0.2)
    assert _procs_running(tag) == []


def test_timeout_kills_the_daemon_too(monkeypatch):
    """unsafe_local at the wall limit: the supervisor takes down the daemon before it goes."""
    import secrets

    _force("unsafe_local", monkeypatch)
    tag = f"1000.{secrets.randbelow(10**6)}"
    daemon = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n"
        f"    if os.fork() == 0:\n        os.execvp('sleep', ['sleep', '{tag}'])\n    os._exit(0)\n"
        "while True:\n    time.sleep(1)\n"
    )
    r = run_code(daemon, timeout_s=1, mode="unsafe_local")
    assert r.timed_out and r.killed_by == "SIGKILL" and r.wall_s < 4
    time.sleep(0.2)
    assert _procs_running(tag) == []
