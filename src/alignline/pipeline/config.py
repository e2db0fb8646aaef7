"""The pipeline file: typed, like a recipe (`config.from_dict`: an unknown key or a bad value names the key), and
checked whole before any stage runs: every stage's recipe loads with its overrides (`config.load_config`, so
`config_checks` run), every suite and gates file is read, stage names are unique.

    name: support-assistant
    model: smollm2-135m              # the base of the first stage
    output_dir: runs/pipeline-demo
    stages:
      - {name: ift, recipe: recipes/sft-lora.yaml}
      - name: domain
        recipe: recipes/sft-mix-replay.yaml
        overrides: {training.max_steps: 40}
        merge_parent: true
        suites: [starter/general]
        gates: recipes/stage-gates.yaml
    release:
      suites: [starter/refusal]
      gates: recipes/release-gates.yaml

Paths (recipes, suites, gates) are read relative to the working directory, as `alignline train` reads a recipe's
data paths; a path that is not there but is beside the pipeline file is taken from there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from alignline.config import RunConfig, from_dict, load_config, read_yaml_mapping
from alignline.errors import ConfigError, UserError
from alignline.evals.gate import load_gates
from alignline.evals.suites import load_suite

STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
RESERVED = {"release", "release-eval", ".merged", "base"}
"""Names of what the pipeline itself keeps in `output_dir`: no stage may take them."""


@dataclass
class StageConfig:
    name: str
    """The stage's name: its run directory is `<output_dir>/<name>/`."""
    recipe: str
    """A training recipe (recipes/*.yaml). Its `model` and `output_dir` are set by the pipeline."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Recipe keys to change, as `alignline train`'s key=value overrides: `{training.max_steps: 40, lr: 1e-4}`."""
    merge_parent: bool = False
    """false: continue the parent's adapter (or add the recipe's adapter on a fully fine-tuned parent); true:
    merge the parent's adapter into its base first and train the recipe's new adapter on the merged model."""
    suites: list[str] = field(default_factory=list)
    """Eval suites run after the stage on it, its parent and the base (`alignline eval --suite`)."""
    gates: str | None = None
    """A gates file (`alignline gate --gates`) checked on the stage against its parent; a failure stops the line."""


@dataclass
class ReleaseConfig:
    suites: list[str] = field(default_factory=list)
    """Eval suites run on the last stage and on the base model."""
    gates: str | None = None
    """A gates file checked on the last stage against the base model; a failure releases nothing."""
    merge: bool = True
    """Merge the last stage's adapter into its base for release; false, or an adapter that cannot be merged
    (prompt/prefix tuning, bottleneck adapters): the adapter is released, naming its base."""
    license: str = "other"
    """The card's `license` (the base model's, for a fine-tune: SmolLM2 is apache-2.0)."""
    intended_use: str | None = None
    """The card's intended-use paragraph (default: a sentence naming the stages)."""


@dataclass
class EvalSettings:
    """How suites run (the options of `alignline eval`)."""

    limit: int | None = None
    """Only the first N records of every suite (a quick line; the card says so)."""
    backend: Literal["auto", "hf", "vllm"] = "auto"
    dtype: Literal["float32", "bfloat16"] = "float32"
    batch_size: int = 16
    bootstrap: int = 2000
    """Bootstrap resamples for the 95 % intervals."""
    seed: int = 0


@dataclass
class PipelineConfig:
    name: str
    output_dir: str
    stages: list[StageConfig]
    model: str = "smollm2-135m"
    """The base model of the first stage (a recipe's `model:` value)."""
    release: ReleaseConfig = field(default_factory=ReleaseConfig)
    eval: EvalSettings = field(default_factory=EvalSettings)
    path: str = ""
    """The pipeline file itself (set when loaded; not a key of the file)."""

    def stage(self, name: str) -> StageConfig:
        for s in self.stages:
            if s.name == name:
                return s
        raise ConfigError(f"{self.path}: no stage named '{name}' (stages: {', '.join(s.name for s in self.stages)})")

    def index(self, name: str) -> int:
        return self.stages.index(self.stage(name))


def override_strings(overrides: dict[str, Any]) -> list[str]:
    """`{training.max_steps: 40}` -> `["training.max_steps=40"]`; values as JSON, which the loader reads as YAML."""
    return [f"{k}={json.dumps(v)}" for k, v in overrides.items()]


def locate(path: str, beside: Path) -> str:
    """`path` as given when it exists (relative to the working directory), else beside the pipeline file."""
    p = Path(path)
    if p.exists() or p.is_absolute():
        return path
    return str(beside / p) if (beside / p).exists() else path


def stage_recipe(cfg: PipelineConfig, stage: StageConfig, model: str, extra: list[str] | None = None) -> RunConfig:
    """The stage's recipe with its overrides, `model` and its run directory (`<output_dir>/<stage>`)."""
    return load_config(
        stage.recipe,
        override_strings(stage.overrides)
        + [f"model={json.dumps(model)}", f"output_dir={json.dumps(str(Path(cfg.output_dir) / stage.name))}"]
        + (extra or []),
    )


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Read and check the whole pipeline file; every problem is one line naming the file and the key or stage."""
    raw = read_yaml_mapping(path, "pipeline")
    for key in ("name", "output_dir", "stages"):
        if key not in raw:
            raise ConfigError(f"{path}: missing key '{key}'")
    if "path" in raw:
        raise ConfigError(f"{path}: unknown key 'path'")
    try:
        cfg = from_dict(PipelineConfig, raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    cfg.path = str(path)
    beside = Path(path).parent
    if not cfg.stages:
        raise ConfigError(f"{path}: 'stages' is empty; give at least one stage")
    seen: set[str] = set()
    for i, s in enumerate(cfg.stages):
        where = f"{path}: stages[{i}] ({s.name})"
        if not STAGE_NAME.match(s.name) or s.name in RESERVED:
            raise ConfigError(f"{where}: 'name' must be letters, digits, '_', '.' or '-' and not {sorted(RESERVED)}")
        if s.name in seen:
            raise ConfigError(f"{path}: stage '{s.name}' is named twice")
        seen.add(s.name)
        s.recipe = locate(s.recipe, beside)
        s.suites = [locate(x, beside) for x in s.suites]
        s.gates = locate(s.gates, beside) if s.gates else None
        if s.gates and not s.suites:
            raise ConfigError(f"{where}: 'gates' needs 'suites' to produce the metrics it checks")
    r = cfg.release
    r.suites = [locate(x, beside) for x in r.suites]
    r.gates = locate(r.gates, beside) if r.gates else None
    if r.gates and not r.suites:
        raise ConfigError(f"{path}: release: 'gates' needs 'suites' to produce the metrics it checks")
    if not r.merge and any(s.merge_parent for s in cfg.stages[1:]):
        raise ConfigError(
            f"{path}: release.merge: false releases an adapter on its base, and after a stage with merge_parent "
            "that base is a merged model of the line, not 'model'; keep release.merge: true"
        )
    check_inputs(cfg)
    return cfg


def check_inputs(cfg: PipelineConfig) -> None:
    """Every recipe, suite and gates file, read before anything runs (a bad one is one line, exit 2)."""
    for s in cfg.stages:
        where = f"{cfg.path}: stage '{s.name}'"
        try:
            stage_recipe(cfg, s, cfg.model)
            for spec in s.suites:
                load_suite(spec, cfg.eval.limit)
            if s.gates:
                load_gates(s.gates)
        except UserError as e:
            raise ConfigError(f"{where}: {e}") from None
    try:
        for spec in cfg.release.suites:
            load_suite(spec, cfg.eval.limit)
        if cfg.release.gates:
            load_gates(cfg.release.gates)
    except UserError as e:
        raise ConfigError(f"{cfg.path}: release: {e}") from None
