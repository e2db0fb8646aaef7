"""Each stage's resolved recipe and input hash, and what a run would do with it.

A stage's inputs: its resolved recipe (overrides applied, `model` set to its parent's output, `output_dir` to
`<output_dir>/<stage>`), the content hash of each of its data files (`data.sources.file_sha256`, the hash run.json
and the resume check use), its parent model's content hash (`evals.cache.model_hash`: the base model for the first
stage, the parent stage's `final/` otherwise) and alignline's version. The input hash is the sha256 of the four.
A stage is finished when run.json says `completed` and `pipeline_stage.json` in its run directory carries the same
input hash; a run directory with the same hash and no completed run is resumed from its last checkpoint (train's
`resume: auto`); one with another hash is cleared and trained anew.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignline import __version__
from alignline.config import RunConfig, to_dict
from alignline.data.sources import file_sha256
from alignline.evals.cache import model_hash
from alignline.models.loading import is_adapter_dir
from alignline.pipeline.config import PipelineConfig, StageConfig, stage_recipe
from alignline.train.checkpoint import list_checkpoints

STAGE_FILE = "pipeline_stage.json"
"""In each stage's run directory: the inputs it was trained from (and its suite and gate verdict)."""
MERGED_DIR = ".merged"
"""`<output_dir>/.merged/<stage>`: a parent's adapter merged into its base, the model a `merge_parent` stage trains."""
METHODS_WITH_REFERENCE = ("dpo", "kto")
"""Methods whose `dpo.ref_model` a continued adapter points at its parent (else the base with adapters off would be
the reference: the model before every stage, not the one this stage starts from)."""


def sha256_text(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stage_dir(cfg: PipelineConfig, stage: StageConfig) -> Path:
    return Path(cfg.output_dir) / stage.name


def parent_output(cfg: PipelineConfig, index: int) -> str:
    """The model stage `index` starts from, before any merge: the base, or the previous stage's `final/`."""
    return cfg.model if index == 0 else str(stage_dir(cfg, cfg.stages[index - 1]) / "final")


def parent_is_adapter(cfg: PipelineConfig, index: int) -> bool:
    """Whether the previous stage ends in an adapter (read from its recipe: its `final/` may not exist yet)."""
    if index == 0:
        return is_adapter_dir(cfg.model) if Path(cfg.model).is_dir() else False
    return stage_config(cfg, index - 1).adapter is not None or parent_is_adapter(cfg, index - 1)


def stage_model(cfg: PipelineConfig, index: int) -> str:
    """The `model:` stage `index` trains: its parent's output, or that merged into its base (`merge_parent`)."""
    stage = cfg.stages[index]
    if index > 0 and stage.merge_parent and parent_is_adapter(cfg, index):
        return str(Path(cfg.output_dir) / MERGED_DIR / stage.name)
    return parent_output(cfg, index)


def stage_config(cfg: PipelineConfig, index: int) -> RunConfig:
    """The stage's resolved recipe. Continuing a parent adapter: the recipe's own `adapter:` section is dropped
    (the parent's adapter is trained on as it is), and a preference method's reference is the parent."""
    stage = cfg.stages[index]
    run = stage_recipe(cfg, stage, stage_model(cfg, index))
    if index > 0 and not stage.merge_parent and parent_is_adapter(cfg, index):
        run = dataclasses.replace(run, adapter=None)
        if run.method in METHODS_WITH_REFERENCE and not run.dpo.ref_model:
            run = dataclasses.replace(run, dpo=dataclasses.replace(run.dpo, ref_model=parent_output(cfg, index)))
    return run


def data_files(run: RunConfig) -> list[tuple[str, str]]:
    """(path, role) of every data file a recipe reads."""
    files = [(s.path, "train") for s in run.data.train]
    if run.data.eval:
        files.append((run.data.eval, "eval"))
    return files


@dataclass
class StageInputs:
    recipe: dict
    data: dict[str, str]
    """path -> sha256"""
    parent: str | None
    """The parent model's content hash; None while the parent is not trained yet."""
    version: str = __version__
    hash: str = ""

    def as_json(self) -> dict:
        return {"recipe": self.recipe, "data": self.data, "parent": self.parent, "version": self.version}


def stage_inputs(cfg: PipelineConfig, index: int, run: RunConfig | None = None) -> StageInputs:
    """The stage's inputs now. The parent of a `merge_parent` stage is hashed before the merge (the merge is a
    function of it)."""
    run = run or stage_config(cfg, index)
    recipe = to_dict(run)
    parent_spec = parent_output(cfg, index)
    parent = model_hash(parent_spec) if index == 0 or Path(parent_spec).is_dir() else None
    data = {path: file_sha256(path) for path, _ in data_files(run)}
    inputs = StageInputs(recipe, data, parent)
    inputs.hash = sha256_text(inputs.as_json())
    return inputs


def read_stage_file(directory: Path) -> dict:
    try:
        data = json.loads((directory / STAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_status(directory: Path) -> str | None:
    """run.json's `status`, None without a readable run.json."""
    try:
        return json.loads((directory / "run.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def run_id(directory: Path) -> str:
    """run.json's `id` where the run registry gave it one, else the run directory."""
    try:
        return str(json.loads((directory / "run.json").read_text(encoding="utf-8")).get("id") or directory)
    except (OSError, ValueError, AttributeError):
        return str(directory)


def changed_inputs(old: dict, new: StageInputs) -> list[str]:
    """What differs between the recorded inputs and these: `data <path>`, `recipe <key>`, `parent`, `version`."""
    was = old.get("inputs") or {}
    out = []
    for path, sha in new.data.items():
        if (was.get("data") or {}).get(path) != sha:
            out.append(f"data {path}")
    out += [f"data {p} (removed)" for p in (was.get("data") or {}) if p not in new.data]
    old_recipe = flatten(was.get("recipe") or {})
    new_recipe = flatten(new.recipe)
    keys = sorted(k for k in set(old_recipe) | set(new_recipe) if old_recipe.get(k) != new_recipe.get(k))
    if keys:
        out.append("recipe " + ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else ""))
    if was.get("parent") != new.parent:
        out.append("parent model")
    if was.get("version") != new.version:
        out.append(f"alignline version ({was.get('version')} -> {new.version})")
    return out


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


@dataclass
class Decision:
    stage: str
    action: str
    """skip | run | resume | after (re-runs because a stage before it does)"""
    why: str
    input_hash: str | None = None
    changed: list[str] = field(default_factory=list)


def decide(cfg: PipelineConfig, index: int, upstream_runs: bool, forced: bool) -> Decision:
    """What the stage would do now: skip (finished, same inputs), resume, or run (and why)."""
    stage = cfg.stages[index]
    directory = stage_dir(cfg, stage)
    if upstream_runs:
        return Decision(stage.name, "run", f"stage '{cfg.stages[index - 1].name}' before it runs")
    inputs = stage_inputs(cfg, index)
    recorded = read_stage_file(directory)
    if forced:
        return Decision(stage.name, "run", "forced (--force)", inputs.hash)
    if not recorded:
        return Decision(stage.name, "run", "not run yet", inputs.hash)
    if recorded.get("input_hash") != inputs.hash:
        changed = changed_inputs(recorded, inputs)
        return Decision(stage.name, "run", "changed: " + "; ".join(changed or ["inputs"]), inputs.hash, changed)
    if run_status(directory) == "completed" and (directory / "final").is_dir():
        verdict = recorded.get("gates")
        if verdict is not None and not verdict.get("passed", True):
            return Decision(stage.name, "skip", "unchanged; its gates failed last time", inputs.hash)
        return Decision(stage.name, "skip", "unchanged since its run", inputs.hash)
    checkpoints = list_checkpoints(directory / "checkpoints")
    if checkpoints:
        return Decision(stage.name, "resume", f"unfinished; resumes from {checkpoints[-1].name}", inputs.hash)
    return Decision(stage.name, "run", "unfinished, no checkpoint yet", inputs.hash)
