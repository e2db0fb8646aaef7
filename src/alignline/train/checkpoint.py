"""Checkpoints: written atomically, loadable as Hugging Face models, resumable to the identical result.

`checkpoints/step-N/` holds the model in Hugging Face layout (the PEFT adapter, or the full model),
`optimizer.pt` and `scheduler.pt` (tensors and plain values only: loaded with `weights_only=True`,
never unpickled), `rng.pt` (every random state the loop touches), `trainer_state.json` (the step,
hence the position in the data plan, and the early-stopping state) and, where a method trains state
outside the model (PPO's value head and KL coefficient: `Method.checkpoint_extras`),
`method_state.safetensors`. A checkpoint is written in a
temporary directory and renamed into place, so a run killed mid-write leaves the previous one whole.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from alignline.errors import UserError
from alignline.io import atomic_path
from alignline.models.bottleneck import BottleneckModel
from alignline.train.guards import saving

STEP_DIR = re.compile(r"^step-(\d+)$")
METHOD_STATE = "method_state.safetensors"


@dataclass
class TrainerState:
    step: int = 0
    tokens_seen: int = 0
    best_eval: float | None = None
    """Best value so far of the method's early-stopping metric (eval loss, eval accuracy)."""
    evals_without_improvement: int = 0
    stopped_early: bool = False
    stop_reason: str | None = None
    """Why the run stopped before its last step (early stopping, a method's bound such as dpo.max_kl)."""
    history: list[dict] = field(default_factory=list)
    """Eval results so far, for the run report."""


class CheckpointError(UserError):
    """A checkpoint that cannot be resumed from: a file missing, truncated, or not what it should be."""


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config")


def save_model(model, directory: Path, state_dict: dict | None = None) -> None:
    model.save_pretrained(directory, state_dict=state_dict, safe_serialization=True)


def load_model_weights(model, directory: Path) -> None:
    """Restore the trained weights saved by `save_model` into an identically built model."""
    if isinstance(model, BottleneckModel):  # our own adapter type: its weights alone, as peft's
        model.load_adapter_weights(directory)
        return
    if _is_peft(model):
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(directory / "adapter_model.safetensors"))
        return
    files = sorted(directory.glob("model*.safetensors"))
    state: dict = {}
    for f in files:
        state.update(load_file(f))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if "lm_head" in k} if getattr(model.config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise CheckpointError(
            f"checkpoint {directory} does not match the model: missing {sorted(set(missing) - tied)[:5]}, "
            f"unexpected {unexpected[:5]}"
        )


def save_checkpoint(
    root: Path,
    step: int,
    model,
    optimizer,
    scheduler,
    state: TrainerState,
    tokenizer=None,
    extra_files: dict[str, str] | None = None,
    keep: int = 2,
    state_dict: dict | None = None,
    method_tensors: dict | None = None,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    # a failed write (full disk, the tokenizer's too) is one line naming the checkpoint; the temporary
    # directory is removed and the previous checkpoint stays whole
    with saving(final), atomic_path(final, directory=True) as tmp:
        save_model(model, tmp, state_dict)
        if method_tensors:
            save_file(method_tensors, str(tmp / METHOD_STATE))
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng_state(), tmp / "rng.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(asdict(state), indent=1))
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        _fsync_dir(tmp)
    _fsync_dir(root)
    prune_checkpoints(root, keep)
    return final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a half-written one is a `.tmp` directory and never listed)."""
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := STEP_DIR.match(p.name)) and (p / "trainer_state.json").is_file()
    ]
    return [p for _, p in sorted(found)]


def prune_checkpoints(root: Path, keep: int) -> None:
    for stale in list_checkpoints(root)[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    for tmp in root.glob(".step-*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)


def _damaged(path: Path, error: BaseException) -> CheckpointError:
    detail = (str(error).strip().splitlines() or [""])[0][:160]
    why = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    if isinstance(error, FileNotFoundError):
        why = "missing"
    return CheckpointError(
        f"checkpoint file {path}: cannot be resumed from ({why}); resume from an earlier "
        "checkpoint (resume=PATH) or start afresh (resume=never)"
    )


def read_trainer_state(directory: Path) -> TrainerState:
    path = Path(directory) / "trainer_state.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
        state = TrainerState(**raw)
        if not isinstance(state.step, int) or state.step < 0:
            raise ValueError(f"step must be a non-negative integer, got {state.step!r}")
        return state
    except (OSError, ValueError, TypeError) as e:  # JSONDecodeError is a ValueError; unknown keys a TypeError
        raise _damaged(path, e) from None


def load_checkpoint(directory: Path, model, optimizer, scheduler) -> TrainerState:
    """Restore a checkpoint; any damaged part is a one-line CheckpointError naming the file."""
    directory = Path(directory)
    state = read_trainer_state(directory)  # first: the cheapest part, and nothing is touched yet
    try:
        load_model_weights(model, directory)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - safetensors and torch raise several types for a torn or foreign file
        weights = sorted(directory.glob("*.safetensors"))
        raise _damaged(weights[0] if len(weights) == 1 else directory, e) from None
    for name, restore in (
        ("optimizer.pt", optimizer.load_state_dict),
        ("scheduler.pt", scheduler.load_state_dict),
        ("rng.pt", set_rng_state),
    ):
        try:
            restore(torch.load(directory / name, weights_only=True))
        except Exception as e:  # noqa: BLE001 - EOFError, UnpicklingError, RuntimeError, KeyError, ValueError, ...
            raise _damaged(directory / name, e) from None
    return state


def method_state(state_dict: dict, prefixes: tuple[str, ...]) -> dict:
    """The wrapped module's state-dict entries under `prefixes` (a method's `checkpoint_extras`), for
    `method_state.safetensors`; {} when the method names none."""
    if not prefixes:
        return {}
    return {k: v.detach().cpu().contiguous() for k, v in state_dict.items() if k.startswith(tuple(prefixes))}


def load_method_state(directory: Path, module, prefixes: tuple[str, ...]) -> None:
    """Restore what `method_state` saved into the (unwrapped) module; a missing or foreign file is a
    CheckpointError naming it."""
    if not prefixes:
        return
    path = Path(directory) / METHOD_STATE
    expected = {k for k in module.state_dict() if k.startswith(tuple(prefixes))}
    try:
        tensors = load_file(path)
    except Exception as e:  # noqa: BLE001 - missing, torn, not safetensors
        raise _damaged(path, e) from None
    if set(tensors) != expected:
        raise CheckpointError(
            f"checkpoint file {path}: holds {sorted(tensors)[:5]}, the method expects "
            f"{sorted(expected)[:5]}; resume from a checkpoint of this method (resume=PATH) or "
            "start afresh (resume=never)"
        )
    module.load_state_dict(tensors, strict=False)
