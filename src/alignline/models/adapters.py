"""Parameter-efficient methods (through peft), layer freezing and gradient checkpointing.

- full fine-tuning: no adapter; `freeze_layers: N` freezes the embeddings and the first N layers.
- LoRA (with DoRA and rsLoRA switches) and QLoRA: adapters on the chosen linear layers; with
  `freeze_layers: N` the first N layers get no adapters.
- prompt and prefix tuning: learned virtual tokens, the model itself frozen.
- bottleneck adapters (Houlsby, Pfeiffer): `models/bottleneck.py`, our own module in peft's save layout.
- `type: peft`: any peft config passed through (`peft_config: {peft_type: LOHA, ...}`).
Several saved adapters load side by side on one base and are switched per call: `models/named_adapters.py`.
QLoRA needs bitsandbytes and a CUDA GPU; elsewhere it fails with one clear line, before any work.
"""

from __future__ import annotations

import warnings

import torch

from alignline.config import AdapterConfig, TrainingConfig
from alignline.config_checks import (
    peft_config_from,
    uses_virtual_tokens,  # noqa: F401  (re-exported: methods and the loop ask here)
)
from alignline.errors import ConfigError
from alignline.models.bottleneck import add_bottleneck
from alignline.models.peft_unwrap import unwrap


def decoder_layers(model) -> torch.nn.ModuleList:
    base = unwrap(model)
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else base.model
    layers = getattr(decoder, "layers", None) or getattr(decoder, "h", None)
    if layers is None:
        raise ConfigError("config key 'training.freeze_layers': cannot find this model's decoder layers")
    return layers


def check_qlora_supported() -> None:
    if importlib_find("bitsandbytes") is None:
        raise ConfigError("config key 'adapter.type': qlora needs bitsandbytes (pip install bitsandbytes)")
    if not torch.cuda.is_available():
        raise ConfigError(
            "config key 'adapter.type': qlora (4-bit bitsandbytes) needs a CUDA GPU and none is "
            "available here; use 'lora' on this machine"
        )


def importlib_find(name: str):
    import importlib.util

    return importlib.util.find_spec(name)


def qlora_quantization_config():
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def _layer_linear_names(model) -> list[str]:
    """Short names of the linear layers inside the decoder layers (what 'all-linear' means there)."""
    layer = decoder_layers(model)[0]
    return sorted({name.rsplit(".", 1)[-1] for name, m in layer.named_modules() if isinstance(m, torch.nn.Linear)})


def _freeze_full(model, n_layers: int) -> None:
    layers = decoder_layers(model)
    if n_layers > len(layers):
        raise ConfigError(f"config key 'training.freeze_layers': {n_layers} exceeds the model's {len(layers)} layers")
    for p in model.get_input_embeddings().parameters():
        p.requires_grad_(False)
    for layer in layers[:n_layers]:
        for p in layer.parameters():
            p.requires_grad_(False)


def apply_adapter(model, adapter: AdapterConfig | None, training: TrainingConfig, task_type: str = "CAUSAL_LM"):
    """Return the model ready to train: adapters added, frozen parts frozen, checkpointing on if asked."""
    if training.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if adapter is None:
        if training.freeze_layers:
            _freeze_full(model, training.freeze_layers)
        return model

    if adapter.type == "bottleneck":
        return add_bottleneck(model, adapter, training.freeze_layers, training.gradient_checkpointing)

    import peft

    n_layers = len(decoder_layers(model))
    if adapter.type in ("lora", "qlora"):
        if adapter.type == "qlora":
            model = peft.prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=training.gradient_checkpointing
            )
        if training.freeze_layers >= n_layers:  # all frozen: peft reads an empty layer list as "every layer"
            raise ConfigError(
                f"config key 'training.freeze_layers': {training.freeze_layers} leaves none of the "
                f"model's {n_layers} layers for the adapter"
            )
        layers = list(range(training.freeze_layers, n_layers)) if training.freeze_layers else None
        targets = adapter.target_modules
        if layers is not None and isinstance(targets, str):
            # peft takes layers_to_transform only with explicit module names
            if targets != "all-linear":
                raise ConfigError(
                    "config key 'adapter.target_modules': with training.freeze_layers, give a list "
                    "of module names or 'all-linear', not a pattern"
                )
            targets = _layer_linear_names(model)
        config = peft.LoraConfig(
            r=adapter.r,
            lora_alpha=adapter.alpha,
            lora_dropout=adapter.dropout,
            target_modules=targets,
            use_dora=adapter.use_dora,
            use_rslora=adapter.use_rslora,
            layers_to_transform=layers,
            task_type=task_type,
        )
    elif adapter.type == "peft":
        config = peft_config_from(adapter.peft_config, task_type)
        if str(config.peft_type.value) == "ADALORA":  # its schedule needs calls inside the step, not made here
            warnings.warn(
                "adalora trains at init_r here: the loop does not call update_and_allocate, so the rank "
                "budget schedule and its orthogonal regularization are not run",
                stacklevel=2,
            )
    elif adapter.type == "prompt":
        config = peft.PromptTuningConfig(num_virtual_tokens=adapter.num_virtual_tokens, task_type="CAUSAL_LM")
    else:
        config = peft.PrefixTuningConfig(num_virtual_tokens=adapter.num_virtual_tokens, task_type="CAUSAL_LM")
    if training.gradient_checkpointing:
        model.enable_input_require_grads()  # checkpointed blocks need an input that requires grad
    try:
        with warnings.catch_warnings():  # peft calls a transformers property deprecated in v5; not ours to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
            return peft.get_peft_model(model, config)
    except (ValueError, TypeError, KeyError, NotImplementedError) as e:
        key = "adapter.peft_config" if adapter.type == "peft" else "adapter"
        raise ConfigError(f"config key '{key}': peft rejected it: {_first_line(e)}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def parameter_counts(model) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}
