"""Typed recipe configs: defaults live here, YAML holds only what differs, `key=value` overrides on top.

One recipe shape serves every method, so a recipe moves between methods by changing `method:`.
Unknown keys and wrongly typed values raise `ConfigError` naming the dotted key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from alignline.errors import ConfigError

@dataclass
class DataSource:
    """One training file (or `datasets` directory) and its share of the mix."""

    path: str
    weight: float = 1.0
    """Relative share of the training mix, e.g. 0.8 domain and 0.2 general replay against forgetting."""


@dataclass
class DataConfig:
    train: list[DataSource] = field(default_factory=list)
    """A path, or a list of {path, weight}."""
    eval: str | None = None
    """A held-out file; or leave empty and set eval_fraction."""
    eval_fraction: float = 0.0
    """Share of the training records held out (seeded) when no eval file is given."""
    loss_on: Literal["assistant", "all"] = "assistant"
    """Chat data: train on assistant turns only (default) or on every token."""
    mix_size: int | None = None
    """Records in the weighted mix; default: the total of all sources."""


@dataclass
class AdapterConfig:
    type: Literal["lora", "qlora", "prompt", "prefix"] = "lora"
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: Union[str, list[str]] = "all-linear"
    use_dora: bool = False
    use_rslora: bool = False
    num_virtual_tokens: int = 20
    """Prompt and prefix tuning: the number of learned virtual tokens."""


@dataclass
class TrainingConfig:
    lr: float = 2.0e-4
    batch_size: int = 8
    """Sequences per micro-batch (packed rows when packing is on)."""
    grad_accum: int = 1
    max_steps: int | None = None
    """Optimizer steps; when unset, `epochs` decides."""
    epochs: float = 1.0
    max_length: int = 512
    packing: bool = True
    seed: int = 0
    eval_every: int = 50
    save_every: int = 50
    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep on disk."""
    log_every: int = 1
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    early_stopping_patience: int | None = None
    """Stop after this many evaluations without improvement of the method's watched metric
    (eval loss for SFT/CPT, held-out preference accuracy for DPO/RM)."""
    early_stopping_threshold: float = 0.0
    """How much the watched metric must improve to count (transformers' EarlyStoppingCallback name)."""
    dtype: Literal["float32", "bfloat16"] = "float32"
    gradient_checkpointing: bool = False
    freeze_layers: int = 0
    """Freeze the embeddings and the first N decoder layers; with LoRA, no adapters there."""
    eval_at_start: bool = False
    """Also evaluate before the first step (logged as step 0): the 'before' of a before/after."""
    eval_max_batches: int | None = None
    """Cap on eval micro-batches per evaluation (None: the whole eval split)."""
    threads: int | None = None
    """CPU threads for torch (None: torch's default)."""
    tensorboard: bool = True
    fast_path: Union[Literal["auto", "off"], bool] = "auto"
    """auto: the exact fast path (fused log-prob head, per-example packed attention, fused layers, fast
    LoRA) where the architecture is on the allow-list or passes a one-batch self-check against its own
    forward; off: the model's own forward throughout, nothing patched (run.json `fast_path` says which).
    YAML reads a bare `off` as false and `on` as true: false means off, true auto."""


@dataclass
class DPOConfig:
    """The DPO family (`method: dpo`); names follow TRL's DPOConfig where one exists."""

    beta: float = 0.1
    loss_type: Literal["sigmoid", "ipo", "robust", "hinge", "simpo"] = "sigmoid"
    """sigmoid: DPO; ipo: IPO; robust: robust DPO for flipped labels; hinge: SLiC; simpo: reference-free,
    length-normalized (SimPO)."""
    label_smoothing: float = 0.0
    """Assumed share of flipped labels: conservative DPO (sigmoid) or robust DPO (robust)."""
    rpo_alpha: float = 0.0
    """Weight of an NLL term on the chosen answers (RPO); 0 turns it off."""
    simpo_gamma: float = 0.5
    use_weights: bool = True
    """Weight each pair by its `weight` / `confidence` field (annotator agreement)."""
    ref_model: str | None = None
    """Reference model: default a frozen copy of the starting policy (LoRA: the base, adapters off)."""
    precompute_ref_logps: bool = False
    """Compute the reference log-probs once before training and reuse them (no reference in memory after)."""
    kl_prompts: int = 8
    """Held-out prompts sampled from the policy at each evaluation to estimate KL(policy || reference)."""
    kl_max_new_tokens: int = 32


@dataclass
class RewardConfig:
    """Reward models (`method: rm`): Bradley-Terry on a scalar head at the last token."""

    center_rewards_coefficient: float | None = None
    """As TRL's RewardConfig: pulls rewards towards zero mean."""
    use_margin: bool = True
    """Subtract a record's `margin` field inside the sigmoid (as Llama 2's reward models)."""
    use_weights: bool = True


@dataclass
class RunConfig:
    method: str = "sft"
    """sft | cpt | dpo | rm: the names in `alignline.methods.METHODS`, the one registry."""
    model: str = "smollm2-135m"
    """`smollm2-135m` (the embedded default), a local model directory, or a hub id where the hub is reachable."""
    data: DataConfig = field(default_factory=DataConfig)
    adapter: AdapterConfig | None = None
    """Omit for full fine-tuning."""
    training: TrainingConfig = field(default_factory=TrainingConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    rm: RewardConfig = field(default_factory=RewardConfig)
    output_dir: str = "runs/run"
    resume: str = "auto"
    """auto (the newest checkpoint in output_dir, if any) | never | a checkpoint path."""
    save_merged: bool = False
    """Also write the adapter merged into the base as a full model in `merged/`."""
    data_gates: bool = True
    """Run the data quality gates (`alignline data check`) before training; a failing gate stops the run."""
    data_gates_config: str | None = None
    """A gates YAML (see recipes/gates.yaml); default: the built-in thresholds."""
    proceed_on_gate_failure: bool = False
    """Train anyway when a gate fails (the report is still written); the CLI's --proceed."""


# --------------------------------------------------------------------------------------------------
# Building dataclasses from plain dicts, with errors that name the key.


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting only where YAML is loose (int for float)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        real = [a for a in args if a is not type(None)]
        if len(real) == 1:  # Optional[X]: X's own error is the helpful one
            return _coerce(value, real[0], key)
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"config key '{key}': {value!r} is not {_type_name(tp)}")
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"config key '{key}': {value!r} is not allowed; choose one of {_type_name(tp)}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML reads 2e-4 (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if tp is bool and isinstance(value, bool):
        return value
    if tp in (int, str) and isinstance(value, tp) and not isinstance(value, bool):
        return value
    raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys and bad values name the dotted key."""
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix or '<root>'}': expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"unknown config key '{dotted}'; allowed here: {', '.join(names)}")
        kwargs[key] = _coerce(value, hints[key], dotted)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field without a default
        raise ConfigError(f"config '{prefix or '<root>'}': {e}") from None


def _normalize(raw: dict) -> dict:
    """Accept the recipe's short forms: `data.train` as one path, sources as plain strings."""
    raw = dict(raw)
    data = raw.get("data")
    if isinstance(data, dict):
        data = dict(data)
        train = data.get("train")
        if isinstance(train, str):
            train = [train]
        if isinstance(train, list):
            data["train"] = [{"path": t} if isinstance(t, str) else t for t in train]
        raw["data"] = data
    return raw


# --------------------------------------------------------------------------------------------------
# Overrides: `training.lr=1e-4`, or the short forms `lr=1e-4` and `lora.r=32`.

_SECTION_ALIASES = {"lora": "adapter"}


def _leaf_paths(cls: type, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        # Descend into sections (X or Optional[X]); a list of dataclasses (data.train) is one leaf.
        inner = [tp] if dataclasses.is_dataclass(tp) else [
            a for a in typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType)
            and dataclasses.is_dataclass(a)]
        path = f"{prefix}{f.name}"
        out.extend(_leaf_paths(inner[0], path + ".") if inner else [path])
    return out


def resolve_override_key(key: str) -> str:
    """Map a user's override key to its full dotted path; unknown or ambiguous keys are errors."""
    head, _, rest = key.partition(".")
    if rest and head in _SECTION_ALIASES:
        key = f"{_SECTION_ALIASES[head]}.{rest}"
    leaves = _leaf_paths(RunConfig)
    if key in leaves:
        return key
    matches = [p for p in leaves if p.endswith("." + key)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"override key '{key}' is ambiguous: {', '.join(matches)}")
    raise ConfigError(f"unknown override key '{key}'; known keys: {', '.join(leaves)}")


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `key=value` strings to a raw recipe dict; values are parsed as YAML scalars."""
    raw = dict(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        path = resolve_override_key(key.strip())
        value = yaml.safe_load(text) if text.strip() else None
        node = raw
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        if path == "data.train" and isinstance(value, str):
            value = [value]
        node[parts[-1]] = value
    return raw


def read_yaml_mapping(path: str | Path, what: str = "recipe") -> dict:
    """A YAML file that must hold a mapping; every problem is one ConfigError line naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: {what} file not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{p}: not valid YAML ({first})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: a {what} must be a mapping of keys to values")
    return raw


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a recipe YAML (or nothing: all defaults), apply overrides, return the typed config."""
    raw: dict = read_yaml_mapping(path) if path is not None else {}
    raw = apply_overrides(_normalize(raw), overrides or [])
    config = from_dict(RunConfig, _normalize(raw))
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    """Cross-field checks the types cannot express."""
    t = config.training
    positives = {"training.lr": t.lr, "training.batch_size": t.batch_size, "training.grad_accum": t.grad_accum,
                 "training.max_length": t.max_length, "training.eval_every": t.eval_every,
                 "training.save_every": t.save_every, "training.log_every": t.log_every,
                 "training.keep_checkpoints": t.keep_checkpoints, "training.epochs": t.epochs}
    for key, value in positives.items():
        if value <= 0:
            raise ConfigError(f"config key '{key}': must be > 0, got {value}")
    if t.max_steps is not None and t.max_steps <= 0:
        raise ConfigError(f"config key 'training.max_steps': must be > 0, got {t.max_steps}")
    if not 0.0 <= config.data.eval_fraction < 1.0:
        raise ConfigError(f"config key 'data.eval_fraction': must be in [0, 1), got {config.data.eval_fraction}")
    if not 0.0 <= t.warmup_ratio < 1.0:
        raise ConfigError(f"config key 'training.warmup_ratio': must be in [0, 1), got {t.warmup_ratio}")
    for i, src in enumerate(config.data.train):
        if src.weight <= 0:
            raise ConfigError(f"config key 'data.train[{i}].weight': must be > 0, got {src.weight}")
    if not 0.0 <= config.dpo.label_smoothing < 0.5:
        raise ConfigError(f"config key 'dpo.label_smoothing': must be in [0, 0.5), got {config.dpo.label_smoothing}")
    if config.dpo.beta <= 0:
        raise ConfigError(f"config key 'dpo.beta': must be > 0, got {config.dpo.beta}")
    from alignline.methods import METHODS  # the registry imports this module: import it here, not at the top

    if config.method not in METHODS:
        raise ConfigError(f"config key 'method': {config.method!r} is not allowed; choose one of {', '.join(METHODS)}")


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)
