"""`load_engine`: the one place that knows the generation backends and picks one.

The engine interface and the shapes it speaks are `rollout/types.py`; the backends are `rollout/hf.py`
(`HFEngine`, Hugging Face in this process, the reference), `rollout/vllm.py` (`VLLMEngine`, vLLM in this
process, CUDA or CPU build) and `rollout/remote.py` (`RemoteEngine`, a vLLM server elsewhere:
`generation.server`).

backend `auto` takes vLLM wherever it imports and can serve the model and its adapters, else the Hugging
Face engine, saying why in one line on stderr; backend `vllm` that cannot load is a one-line `ConfigError`.
dtype `auto` is `models/dtype.py`'s `choose_dtype`; the engine records the dtype it runs in (`engine.dtype`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from alignline.errors import ConfigError, UserError
from alignline.models.dtype import choose_dtype
from alignline.models.loading import resolve
from alignline.models.named_adapters import hf_only_adapters
from alignline.rollout.hf import HFEngine
from alignline.rollout.types import Engine
from alignline.rollout.vllm import VLLMEngine, prepare_environment

BACKENDS = ("auto", "hf", "vllm")
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
"""Head sizes vLLM 0.32's CPU attention takes (`CPUAttentionBackend.get_supported_head_sizes`, a test keeps them
equal): checked before importing vLLM, so models it cannot run (the tests' tiny ones) go to HF at no cost."""


def load_engine(
    model: str | None,
    backend: str = "auto",
    dtype: str = "float32",
    batch_size: int = 16,
    adapters: dict[str, str] | None = None,
    server: str | None = None,
) -> Engine:
    """An engine for a model directory, checkpoint, adapter or `smollm2-135m`, with `adapters` ({name: path})
    served by name; `server`: the vLLM server at that URL instead of a model in this process."""
    if backend not in BACKENDS:
        raise ConfigError(f"generation backend {backend!r} is not one of auto, hf, vllm")
    adapters = dict(adapters or {})
    if server:
        from alignline.rollout.remote import RemoteEngine  # lazy: the HTTP client is needed only with a server

        return RemoteEngine.connect(server, model=model, adapters=adapters, api_key=None)
    dtype = choose_dtype(dtype)
    if backend == "hf":
        return HFEngine.load(model, dtype, batch_size, adapters)
    reason = vllm_cannot_serve(model, adapters)
    if reason is None:
        try:
            return VLLMEngine.load(model, dtype=dtype, adapters=adapters)
        except UserError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure inside vLLM is the reason to fall back / report
            reason = f"vLLM could not load {model}: {first_line(error)}"
    if backend == "vllm":
        raise ConfigError(f"generation backend 'vllm': {reason}")
    engine = HFEngine.load(model, dtype, batch_size, adapters)  # first: a model that cannot load is its one line
    print(f"generation: {reason}; using the Hugging Face engine", file=sys.stderr, flush=True)
    return engine


def vllm_cannot_serve(model: str | None, adapters: dict[str, str]) -> str | None:
    """Why vLLM cannot serve this model with these adapters here, in words; None when it can (as far as
    can be told before loading it)."""
    hf_only = hf_only_adapters(model, adapters)
    if hf_only:
        return f"vLLM serves LoRA adapters only, not {hf_only}"
    base = resolve(model)[0]
    size = head_size(base)
    if size is not None and size not in CPU_HEAD_SIZES and not torch.cuda.is_available():
        return f"vLLM's CPU attention does not take the head size {size} of {base}"
    missing = vllm_import_problem()
    if missing:
        return missing
    arch = unsupported_architecture(base)
    if arch:
        return f"vLLM does not support the architecture {arch}"
    return None


def head_size(base: str) -> int | None:
    """The attention head size in a model folder's config.json; None when it cannot be read."""
    try:
        config = json.loads((Path(base) / "config.json").read_text())
        return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None


def vllm_import_problem() -> str | None:
    """None when vllm imports; else why not (not installed, or installed against another torch)."""
    prepare_environment("cuda" if torch.cuda.is_available() else "cpu")  # some settings are read at import
    try:
        import vllm  # noqa: F401  # lazy: the check is the import itself (a mismatched build fails only here)
    except ImportError as error:
        if getattr(error, "name", None) == "vllm":
            return "vLLM is not installed (make install installs it)"
        return f"vLLM does not import: {first_line(error)}"
    except Exception as error:  # noqa: BLE001 - a broken install raises anything at import
        return f"vLLM does not import: {first_line(error)}"
    return None


def unsupported_architecture(base: str) -> str | None:
    """The model's architecture when vLLM's registry lacks it; None when supported or unknown (a model
    folder without config.json is reported by the loader)."""
    try:
        archs = json.loads((Path(base) / "config.json").read_text()).get("architectures") or []
    except (OSError, json.JSONDecodeError):
        return None
    from vllm.model_executor.models import ModelRegistry  # lazy: vllm is optional

    supported = set(ModelRegistry.get_supported_archs())
    return next((a for a in archs if a not in supported), None)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]


def vllm_available() -> bool:
    """vllm imports in this environment (CPU or CUDA build)."""
    return vllm_import_problem() is None
