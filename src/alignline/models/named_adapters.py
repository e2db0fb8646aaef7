"""Several adapters trained for different tasks, loaded side by side on one base and switched per request.

One frozen base in memory and one small adapter per task (a legal assistant, a support bot): what
serving builds on. LoRA and any other peft adapters load through peft (`PeftModel.from_pretrained`,
then `load_adapter(path, adapter_name=...)`, switched by `set_adapter`); bottleneck adapters through
`models/bottleneck.py`, which has the same three calls. The adapters must all be of one kind (peft
keeps one tuner type per model) and trained on the given base; either mistake is one line, before
any weights load. The name `base` is reserved: the base alone, adapters off.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from alignline.errors import ModelError, UserError
from alignline.models.bottleneck import PEFT_TYPE as BOTTLENECK
from alignline.models.bottleneck import BottleneckModel
from alignline.models.loading import load_model, load_tokenizer, resolve

BASE = "base"
"""The reserved adapter name meaning the base model alone."""


def parse_adapter_flags(items: list[str]) -> dict[str, str]:
    """`NAME=PATH` strings (the CLI's repeatable `--adapter`) -> {name: path}, in order."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name = name.strip()
        if not sep or not name or not path:
            raise UserError(f"--adapter {item!r}: expected NAME=PATH, e.g. --adapter legal=runs/legal/final")
        if name == BASE:
            raise UserError(f"--adapter {item!r}: the name '{BASE}' is reserved for the base model alone")
        if name in out:
            raise UserError(f"--adapter {item!r}: the name '{name}' is given twice")
        out[name] = path
    return out


def _same_model(a: str, b: str) -> bool:
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a == b


def adapter_kind(path: str) -> str:
    """The `peft_type` in an adapter folder's config (LORA, LOHA, ..., ALIGNLINE_BOTTLENECK)."""
    try:
        return str(json.loads((Path(path) / "adapter_config.json").read_text()).get("peft_type"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise ModelError(f"{path}: adapter_config.json is unreadable") from None


def load_named_adapters(model: str | None, adapters: dict[str, str], dtype: str = "float32"):
    """(tokenizer, model): the base `model` with every adapter of `adapters` ({name: path}) loaded under its
    name, the first one active."""
    if not adapters:
        raise UserError("no adapters given")
    base_path, own = resolve(model)
    if own is not None:
        raise UserError(
            f"--model {model}: is an adapter; with --adapter, --model is the base they were trained on ({base_path})"
        )
    kinds = {}
    for name, path in adapters.items():
        trained_on, adapter_path = resolve(path)
        if adapter_path is None:
            raise UserError(f"adapter '{name}': {path} is not an adapter folder (no adapter_config.json)")
        if not _same_model(trained_on, base_path):
            raise UserError(
                f"adapter '{name}' ({path}) was trained on {trained_on}, not on {model or base_path}; "
                f"load it on its own base"
            )
        kinds[name] = adapter_kind(path)
    if len(set(kinds.values())) > 1:
        listed = ", ".join(f"{n} ({k.lower()})" for n, k in kinds.items())
        raise UserError(f"adapters of different kinds cannot share one base here: {listed}")
    tokenizer = load_tokenizer(base_path, model)
    base = load_model(base_path, dtype)
    (first, first_path), *rest = adapters.items()
    try:
        if kinds[first] == BOTTLENECK:
            wrapped = BottleneckModel.from_pretrained(base, first_path, adapter_name=first)
        else:
            from peft import PeftModel

            wrapped = PeftModel.from_pretrained(base, first_path, adapter_name=first)
        for name, path in rest:
            wrapped.load_adapter(path, adapter_name=name)
    except (RuntimeError, ValueError, KeyError) as e:  # shapes that do not fit this base, a broken config
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"loading the adapters onto {model or base_path} failed: {first_line}") from None
    wrapped.set_adapter(first)
    wrapped.eval()
    return tokenizer, wrapped


def hf_only_adapters(model: str | None, adapters: dict[str, str]) -> str | None:
    """Why these adapters (or the model itself, if an adapter) need the Hugging Face engine, or None:
    vLLM serves LoRA adapters only."""
    paths = list(adapters.values())
    try:
        own = resolve(model)[1]
    except UserError:
        own = None  # a bad --model is reported by the loader that follows
    for path in paths + ([own] if own else []):
        if (Path(path) / "adapter_config.json").is_file() and adapter_kind(path) != "LORA":
            return f"{path} ({adapter_kind(path).lower()})"
    return None


def check_adapter_name(name: str, loaded: list[str]) -> str:
    if name != BASE and name not in loaded:
        raise UserError(
            f"adapter '{name}' is not loaded; loaded: {', '.join(loaded) or 'none'} (or '{BASE}' for the base alone)"
        )
    return name


@contextlib.contextmanager
def using(model, name: str) -> Iterator[None]:
    """Inside the block, `model` runs with adapter `name` (`base`: with none)."""
    if name == BASE:
        with model.disable_adapter():
            yield
    else:
        model.set_adapter(name)
        yield
