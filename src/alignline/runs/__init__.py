"""The run registry: every run of `train`, `eval`, `gate` and `pipeline`, in SQLite or PostgreSQL.

Public API (what commands and the pipeline call):

- `record_run(kind, run_dir, *, registry=None, status="completed", started=..., config=..., parent_model=...,
  data=..., metrics=..., gates=..., artifacts=..., error=..., run_id=...) -> run id | None`: record one finished
  run. Never raises: a registry that cannot be opened is one warning line and None. For `kind="train"`, what is
  not given is read from `run_dir/run.json`.
- `open_registry(url=None) -> Registry | None`: the registry (`--registry URL`, else `$ALIGNLINE_REGISTRY`, else
  `sqlite:///./runs/registry.db`; None when `ALIGNLINE_REGISTRY=off`). `Registry.list(kind, limit)`, `.get(id or
  prefix)`, `.by_dir(path)`, `.put(RunEntry)`.
- `new_run_id()`: an id to hand out before the run ends (MLflow tags, run.json), then pass as `run_id=`.
- `lineage(ref, registry)`: a model walked back through its runs to its data (`runs/lineage.py`).

Layer 7 (with evals and report): `evals/training.py` and the CLI record through it; it reads run.json files but
imports nothing above `render`, `io` and `errors`. SQLAlchemy loads only when a registry is opened.
"""

from alignline.runs.lineage import format_lineage, lineage
from alignline.runs.recording import new_run_id, note_in_run_json, open_registry, record_run, registry_shown

__all__ = [
    "format_lineage",
    "lineage",
    "new_run_id",
    "note_in_run_json",
    "open_registry",
    "record_run",
    "registry_shown",
]
