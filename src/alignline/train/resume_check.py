"""Resuming is continuing the same run: refuse a resume whose model or data changed, warn on a new schedule.

Each checkpoint carries `alignline_resume.json`: the resolved config and the sha256 of every data file
(taken from the data report, so nothing is hashed twice). On resume the two are compared key by key:
- what defines the model or the data (the model, the method and its section, the adapter, the data
  files and their contents, max_length, batch size, seed, lr, ...) must be unchanged: a checkpoint
  cannot continue a different run, and the optimizer state would not even fit a changed adapter;
- the schedule (max_steps, epochs, eval/save/log cadence, early stopping, warmup and scheduler shape,
  clipping) may change, with one warning line listing what did.
lr and weight_decay are refused, not warned on: the optimizer and scheduler state restored from the
checkpoint carry the old values, so a new value would be silently ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

from alignline.config import RunConfig, to_dict
from alignline.errors import ConfigError
from alignline.methods import METHODS
from alignline.train import guards

RESUME_FILE = "alignline_resume.json"

# Changes that the resumed run honours as given.
SCHEDULE = {
    f"training.{k}"
    for k in (
        "max_steps",
        "epochs",
        "eval_every",
        "save_every",
        "log_every",
        "keep_checkpoints",
        "early_stopping_patience",
        "early_stopping_threshold",
        "eval_at_start",
        "eval_max_batches",
        "warmup_steps",
        "warmup_ratio",
        "lr_scheduler",
        "max_grad_norm",
        "gradient_checkpointing",
    )
}
# Where the run writes, how it runs here: no bearing on what is trained.
IGNORED = {
    "output_dir",
    "resume",
    "save_merged",
    "data_gates",
    "data_gates_config",
    "proceed_on_gate_failure",
    "training.threads",
    "training.tensorboard",
}


def run_fingerprint(cfg: RunConfig, data_report) -> str:
    """What `check_resume` compares, as the JSON text written into every checkpoint."""
    hashes = {str(s["path"]): s["sha256"] for s in getattr(data_report, "sources", []) if s.get("sha256")}
    return json.dumps({"config": to_dict(cfg), "data_sha256": hashes}, indent=1, default=str)


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def _short(value) -> str:
    """Values as written; a long list (target_modules) cut, a path never (its end is what differs)."""
    text = repr(value)
    return text if isinstance(value, str) or len(text) <= 80 else text[:77] + "..."


def _changes(old: dict, new: dict, method: str) -> tuple[list[str], list[str]]:
    a, b = _flatten(old), _flatten(new)
    changed = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    # A section that appears or disappears (adapter: none -> lora) is one change, not one per leaf.
    changed = [k for k in changed if not any(k.startswith(p + ".") for p in changed)]
    refused, allowed = [], []
    for key in changed:
        section = key.partition(".")[0]
        if key in IGNORED or (section in METHODS and section != method):  # another method's section
            continue
        text = f"{key} ({_short(a.get(key))} -> {_short(b.get(key))})"
        (allowed if key in SCHEDULE else refused).append(text)
    return refused, allowed


def check_resume(checkpoint: Path | None, fingerprint: str, cfg: RunConfig, verbose: bool = True) -> None:
    """Refuse (ConfigError) a resume that changed the model or data; warn (one line) on schedule changes."""
    if checkpoint is None:
        return
    path = Path(checkpoint) / RESUME_FILE
    if not path.is_file():
        if verbose:
            guards.warn(
                f"{checkpoint} records no config (an older checkpoint); changes since it was written are not checked"
            )
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        old_config, old_hashes = old["config"], old["data_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"config key 'resume': {path} is damaged ({type(e).__name__}); resume from another "
            "checkpoint (resume=PATH) or start afresh (resume=never)"
        ) from None
    new = json.loads(fingerprint)
    refused, allowed = _changes(old_config, new["config"], cfg.method)
    for name, sha in new["data_sha256"].items():
        if name in old_hashes and old_hashes[name] != sha:
            refused.append(f"data file {name} (its contents changed: sha256 {old_hashes[name][:12]} -> {sha[:12]})")
    if refused:
        raise ConfigError(
            f"config key 'resume': {checkpoint} was trained with different settings: "
            f"{'; '.join(refused)}. These define the model or the data, so the run cannot continue; "
            "restore them, or start afresh with resume=never or another output_dir"
        )
    if allowed and verbose:
        guards.warn(f"resuming {checkpoint} with a changed schedule: {'; '.join(allowed)}")
