"""Lineage: a model walked back through the runs that made it, each with the data it read, to the base model.

A start is a run id (or unique prefix) or a path: a run directory, its `final/` or `merged/`, a checkpoint, or an
eval/gate output directory. Each step goes to the run's parent model: the registered run whose output it is
(`parent_run`), else the run directory that holds it (read from its run.json, so the walk works for runs the
registry never saw, and without a registry); the walk ends at a model no run produced (the base).
"""

from __future__ import annotations

import json
from pathlib import Path

from alignline.errors import UserError

MAX_STAGES = 100
"""A guard against a cycle the registry should never hold (a run dir reused for its own parent)."""


def find_run(ref: str, registry):
    """(entry or None, run directory or None) for a run id/prefix or a path; UserError when it is neither."""
    path = Path(ref).expanduser()
    if path.exists():
        for candidate in (path, path.parent, path.parent.parent):
            entry = registry.by_dir(candidate) if registry is not None else None
            if entry is not None:
                return entry, Path(entry.run_dir)
            if (candidate / "run.json").is_file():
                return None, candidate.resolve()
        return None, None
    entry = registry.get(ref) if registry is not None else None
    if entry is None:
        raise UserError(f"no run {ref!r} in the registry, and no such path")
    return entry, Path(entry.run_dir) if entry.run_dir else None


def stage_of(entry, run_dir: Path | None) -> dict:
    """One stage: the run (registered or only on disk), its model, its data files with their hashes."""
    if entry is not None:
        return {
            "run": entry.id,
            "kind": entry.kind,
            "status": entry.status,
            "run_dir": entry.run_dir,
            "model": entry.parent_model,
            "parent_run": entry.parent_run,
            "data": entry.data,
            "git_commit": entry.git_commit,
            "config": entry.config,
        }
    record = _read_run_json(run_dir)
    config = record.get("config") or {}
    return {
        "run": None,
        "kind": "train",
        "status": record.get("status"),
        "run_dir": str(run_dir),
        "model": config.get("model"),
        "parent_run": None,
        "data": (record.get("data") or {}).get("sources") or [],
        "git_commit": record.get("git_commit"),
        "config": config,
    }


def _read_run_json(run_dir: Path | None) -> dict:
    if run_dir is None:
        return {}
    try:
        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def lineage(ref: str, registry) -> dict:
    """{"stages": [the run of `ref`, its parent run, ... back to the first], "base_model": what the first trained
    from}. `registry` may be None (the runs' own run.json files only)."""
    entry, run_dir = find_run(ref, registry)
    if entry is None and run_dir is None:
        return {"stages": [], "base_model": ref}
    stages: list[dict] = []
    seen: set[str] = set()
    while len(stages) < MAX_STAGES:
        stage = stage_of(entry, run_dir)
        key = stage["run"] or stage["run_dir"]
        if key in seen:
            break
        seen.add(key)
        stages.append(stage)
        model = stage["model"]
        entry, run_dir = None, None
        if stage["parent_run"] and registry is not None:
            entry = registry.get(stage["parent_run"])
            run_dir = Path(entry.run_dir) if entry is not None and entry.run_dir else None
        elif model and Path(model).expanduser().exists():
            entry, run_dir = find_run(model, registry)
        if entry is None and run_dir is None:
            return {"stages": stages, "base_model": model}
    return {"stages": stages, "base_model": None}


def format_lineage(result: dict) -> str:
    """The walk as text, newest stage first."""
    lines = []
    for i, stage in enumerate(result["stages"]):
        run = stage["run"][:12] if stage["run"] else "(not registered)"
        lines.append(f"{i + 1}. {stage['kind']} run {run} [{stage['status']}] {stage['run_dir']}")
        parent = f" (run {stage['parent_run'][:12]})" if stage["parent_run"] else ""
        lines.append(f"   model: {stage['model']}{parent}")
        for source in stage["data"]:
            role = source.get("role", "train")
            digest = (source.get("sha256") or "")[:16] or "?"
            lines.append(f"   data ({role}): {source.get('path')} sha256 {digest}")
        if not stage["data"]:
            lines.append("   data: none recorded")
    lines.append(f"base model: {result['base_model']}")
    return "\n".join(lines)
