"""`load_engine`: the one place that knows both generation backends and picks one.

The engine interface and the shapes it speaks are `rollout/types.py`; the backends are `rollout/hf.py`
(`HFEngine`, Hugging Face in this process) and `rollout/vllm.py` (`VLLMEngine`, where vLLM is installed
and CUDA is present; imported only then).
"""

from __future__ import annotations

import importlib.util

import torch

from alignline.errors import ConfigError
from alignline.models.named_adapters import hf_only_adapters
from alignline.rollout.hf import HFEngine
from alignline.rollout.types import Engine


def load_engine(
    model: str | None,
    backend: str = "auto",
    dtype: str = "float32",
    batch_size: int = 16,
    adapters: dict[str, str] | None = None,
) -> Engine:
    """An engine for a model directory, checkpoint, adapter or `smollm2-135m`.

    backend `auto`: vLLM when it is installed and CUDA is present, else Hugging Face; `hf`; `vllm`.
    """
    if backend not in ("auto", "hf", "vllm"):
        raise ConfigError(f"generation backend {backend!r} is not one of auto, hf, vllm")
    hf_only = hf_only_adapters(model, adapters or {})  # vLLM serves LoRA only
    if backend == "vllm" and hf_only:
        raise ConfigError(f"generation backend 'vllm' serves LoRA adapters only, not {hf_only}; use backend hf")
    if backend == "vllm" or (backend == "auto" and not hf_only and vllm_available()):
        from alignline.rollout.vllm import VLLMEngine  # lazy: imports vllm, which only CUDA machines have

        return VLLMEngine.load(model, dtype=dtype, adapters=adapters or {})
    return HFEngine.load(model, dtype, batch_size, adapters)


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
