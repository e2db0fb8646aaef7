"""Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2020): small modules on a frozen base, one per task.

An adapter maps a sublayer's output h (B, T, H) to h + up(f(down(h))), with down: H -> b and up: b -> H,
b (`bottleneck_size`) much smaller than H. `houlsby` puts one after every decoder layer's attention and one
after its feed-forward block; `pfeiffer` only after the feed-forward block (half the parameters, about the
same quality in their paper). Adapters are kept by name on one base and switched per request
(`set_adapter`), which is what makes them cheap to serve: one frozen base, one small file per task.

Simplifications against the papers, and why:
- Placement: both papers adapt post-norm transformers, where the adapter sits before a layer norm
  (Pfeiffer's also reuses that norm). Llama-family decoders are pre-norm and have no norm there, so
  the adapter goes on the sublayer's output, just before it joins the residual stream; the two
  placements differ only in which sublayers get one.
- Initialization: the up-projection starts at zero (down as nn.Linear's default, AdapterHub's `mam`
  init), so the adapted model starts exactly equal to the base, as LoRA's zero B does; Houlsby's
  near-zero normal init is only close to the identity.
- No dropout and no layer norm inside the adapter (AdapterHub's defaults have neither).

Why not a peft tuner: peft 0.21's `register_peft_method` only takes names already in its fixed `PeftType`
enum. So this is a small wrapper with peft's shape instead: `BottleneckModel` holds the base, forwards to
it, offers `save_pretrained` / `from_pretrained` / `load_adapter` / `set_adapter` / `disable_adapter`,
and its folder is `adapter_config.json` (`peft_type: ALIGNLINE_BOTTLENECK`, `base_model_name_or_path`,
the keys) plus `adapter_model.safetensors` with only the adapter's weights. The adapters are applied by
forward hooks on each decoder layer's `self_attn` and `mlp`, so every path that runs the base's decoder
(the full forward, `get_decoder()` as the fused log-prob head does, generation) goes through them.
Bottleneck adapters add layers, so they cannot be merged into the base weights.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from alignline.errors import ConfigError, ModelError
from alignline.io import atomic_path, write_json

PEFT_TYPE = "ALIGNLINE_BOTTLENECK"
"""The `peft_type` marker in our adapter_config.json (peft itself refuses to load such a folder)."""
NON_LINEARITIES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}
PLACEMENTS: dict[str, tuple[str, ...]] = {"houlsby": ("attn", "mlp"), "pfeiffer": ("mlp",)}
SUBLAYERS = {"attn": "self_attn", "mlp": "mlp"}
"""Our name for a sublayer -> the decoder layer's attribute holding it (Llama, Mistral, Qwen, Gemma, ...)."""
WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"


@dataclass
class BottleneckSpec:
    """What one adapter is; written to adapter_config.json (with `peft_type`)."""

    bottleneck_size: int
    placement: str = "pfeiffer"
    non_linearity: str = "relu"
    hidden_size: int = 0
    """The base's hidden size, checked on load."""
    layers: list[int] | None = None
    """Decoder layers with adapters; None: all."""
    reduction_factor: float | None = None
    """Recorded when the size was given as hidden_size / reduction_factor."""
    base_model_name_or_path: str | None = None

    def to_json(self) -> dict:
        return {"peft_type": PEFT_TYPE, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict) -> BottleneckSpec:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class Bottleneck(nn.Module):
    """h -> h + up(f(down(h))); (..., H) -> (..., H). Starts as the identity (up is zero)."""

    def __init__(
        self,
        hidden: int,
        size: int,
        non_linearity: str,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
    ):
        super().__init__()
        self.down = nn.Linear(hidden, size, dtype=dtype, device=device)
        self.act = NON_LINEARITIES[non_linearity]()
        self.up = nn.Linear(size, hidden, dtype=dtype, device=device)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(self.act(self.down(h)))


def decoder_sublayers(base: nn.Module) -> list[dict[str, nn.Module]]:
    """Per decoder layer, {'attn': its self_attn, 'mlp': its mlp}; a clear error where there are none."""
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else getattr(base, "model", base)
    layers = getattr(decoder, "layers", None)
    if layers is None:
        layers = getattr(decoder, "h", None)
    if not layers or not all(all(hasattr(layer, a) for a in SUBLAYERS.values()) for layer in layers):
        raise ConfigError(
            f"config key 'adapter.type': bottleneck adapters need decoder layers with "
            f"'self_attn' and 'mlp' submodules, and {type(base).__name__} has none; use lora or peft"
        )
    return [{k: getattr(layer, a) for k, a in SUBLAYERS.items()} for layer in layers]


class _AdapterHook:
    """Forward hook on one sublayer: applies the owner's active adapter there, if it has one.

    A callable object rather than a closure, so `copy.deepcopy` of the model points the copy's hooks at
    the copy's adapters (functions are not deep-copied; objects are)."""

    def __init__(self, owner: BottleneckModel, layer: int, where: str):
        self.owner, self.key, self.where = owner, str(layer), where

    def __call__(self, module: nn.Module, args, output):
        name = self.owner.active
        if name is None:
            return output
        adapter = self.owner.bottleneck_adapters[name]
        if self.where not in adapter or self.key not in adapter[self.where]:  # pfeiffer, or a frozen layer
            return output
        adapters = adapter[self.where]
        if isinstance(output, tuple):  # attention returns (output, weights)
            return (adapters[self.key](output[0]), *output[1:])
        return adapters[self.key](output)


class BottleneckModel(nn.Module):
    """A frozen base with named bottleneck adapters; one active at a time, or none (the base itself)."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base_model = base
        self.bottleneck_adapters = nn.ModuleDict()
        self.specs: dict[str, BottleneckSpec] = {}
        self.active: str | None = None
        self._sublayers = decoder_sublayers(base)
        for i, subs in enumerate(self._sublayers):
            for where, module in subs.items():
                module.register_forward_hook(_AdapterHook(self, i, where))

    # -- what callers of a PeftModel expect ------------------------------------------------------
    def get_base_model(self) -> nn.Module:
        return self.base_model

    def forward(self, *args, **kwargs):
        return self.base_model(*args, **kwargs)

    def generate(self, *args, **kwargs):
        return self.base_model.generate(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in ("base_model", "bottleneck_adapters"):
                raise
            return getattr(self.base_model, name)  # config, device, get_input_embeddings, ...

    @property
    def adapter_names(self) -> list[str]:
        return list(self.bottleneck_adapters)

    def set_adapter(self, name: str | None) -> None:
        """Make `name` the active adapter (None: none, the plain base)."""
        if name is not None and name not in self.bottleneck_adapters:
            raise ModelError(f"adapter '{name}' is not loaded; loaded: {', '.join(self.adapter_names) or 'none'}")
        self.active = name

    set_active = set_adapter

    @contextlib.contextmanager
    def disable_adapter(self) -> Iterator[None]:
        """The base alone inside the block (DPO's reference), as peft's `disable_adapter`."""
        previous, self.active = self.active, None
        try:
            yield
        finally:
            self.active = previous

    # -- adding, saving, loading -----------------------------------------------------------------
    def add_adapter(self, name: str, spec: BottleneckSpec, trainable: bool = True) -> None:
        """A new adapter `name` (identity at start), made active."""
        hidden = _hidden_size(self.base_model)
        if spec.hidden_size and spec.hidden_size != hidden:
            raise ModelError(
                f"bottleneck adapter '{name}' was trained on a model with hidden size "
                f"{spec.hidden_size}; this base has {hidden} (load it on the base it was trained on)"
            )
        if spec.layers is not None and any(not 0 <= i < len(self._sublayers) for i in spec.layers):
            raise ModelError(
                f"bottleneck adapter '{name}' has layers {spec.layers}, but this base has {len(self._sublayers)}"
            )
        spec.hidden_size = hidden
        ref = next(self.base_model.parameters())
        layers = range(len(self._sublayers)) if spec.layers is None else spec.layers
        adapter = nn.ModuleDict(
            {
                where: nn.ModuleDict(
                    {
                        str(i): Bottleneck(hidden, spec.bottleneck_size, spec.non_linearity, ref.dtype, ref.device)
                        for i in layers
                    }
                )
                for where in PLACEMENTS[spec.placement]
            }
        )
        adapter.requires_grad_(trainable)
        self.bottleneck_adapters[name] = adapter
        self.specs[name] = spec
        self.active = name

    def _default_name(self, name: str | None) -> str:
        name = name or self.active or (self.adapter_names[0] if len(self.adapter_names) == 1 else None)
        if name is None or name not in self.bottleneck_adapters:
            raise ModelError(f"which adapter? loaded: {', '.join(self.adapter_names) or 'none'}")
        return name

    def adapter_state_dict(self, name: str | None = None, state_dict: dict | None = None) -> dict[str, torch.Tensor]:
        """The adapter's weights alone, keyed `mlp.3.down.weight` (sublayer, layer, projection). `state_dict`:
        this module's full state dict as gathered elsewhere (accelerate's `get_state_dict`)."""
        prefix = f"bottleneck_adapters.{self._default_name(name)}."
        source = state_dict if state_dict is not None else self.state_dict()
        return {k[len(prefix) :]: v.detach().to("cpu").contiguous() for k, v in source.items() if k.startswith(prefix)}

    def save_pretrained(
        self,
        directory: str | Path,
        state_dict: dict | None = None,
        safe_serialization: bool = True,
        adapter_name: str | None = None,
    ) -> None:
        """Write `adapter_config.json` and `adapter_model.safetensors` (the adapter only) to `directory`."""
        from safetensors.torch import save_file

        name = self._default_name(adapter_name)
        spec = self.specs[name]
        if spec.base_model_name_or_path is None:
            spec.base_model_name_or_path = getattr(self.base_model, "name_or_path", None)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(self.adapter_state_dict(name, state_dict), str(tmp), metadata={"format": "pt"})
        write_json(directory / CONFIG_NAME, spec.to_json())

    def load_adapter(self, path: str | Path, adapter_name: str = "default", is_trainable: bool = False) -> None:
        """Add the adapter saved in `path` as `adapter_name` (made active)."""
        if adapter_name in self.bottleneck_adapters:
            raise ModelError(f"adapter name '{adapter_name}' is already loaded")
        spec = read_spec(path)
        self.add_adapter(adapter_name, spec, trainable=is_trainable)
        try:
            self.load_adapter_weights(path, adapter_name)
        except ModelError:
            del self.bottleneck_adapters[adapter_name]
            del self.specs[adapter_name]
            raise

    def load_adapter_weights(self, path: str | Path, adapter_name: str | None = None) -> None:
        """Copy the weights saved in `path` into an adapter already built with the same spec (resume)."""
        from safetensors.torch import load_file

        name = self._default_name(adapter_name)
        saved = load_file(str(Path(path) / WEIGHTS_NAME))
        params = {k: v for k, v in self.bottleneck_adapters[name].state_dict(keep_vars=True).items()}
        if saved.keys() != params.keys() or any(saved[k].shape != params[k].shape for k in saved):
            raise ModelError(f"{path}: the bottleneck adapter's weights do not match its adapter_config.json")
        with torch.no_grad():
            for key, tensor in saved.items():
                params[key].copy_(tensor)

    @classmethod
    def from_pretrained(
        cls, base: nn.Module, path: str | Path, adapter_name: str = "default", is_trainable: bool = False
    ) -> BottleneckModel:
        """The base (frozen) with the adapter saved in `path`, as peft's `PeftModel.from_pretrained`."""
        base.requires_grad_(False)
        model = cls(base)
        model.load_adapter(path, adapter_name, is_trainable)
        return model


def _hidden_size(base: nn.Module) -> int:
    config = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    return int(config.hidden_size)


def is_bottleneck_dir(path: str | Path) -> bool:
    """A folder holding one of our bottleneck adapters (not a peft adapter)."""
    config = Path(path) / CONFIG_NAME
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("peft_type") == PEFT_TYPE
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def read_spec(path: str | Path) -> BottleneckSpec:
    if not is_bottleneck_dir(path):
        raise ModelError(f"{path}: not a bottleneck adapter folder ({CONFIG_NAME} with peft_type {PEFT_TYPE})")
    if not (Path(path) / WEIGHTS_NAME).is_file():
        raise ModelError(f"{path}: {WEIGHTS_NAME} is missing")
    try:
        spec = BottleneckSpec.from_json(json.loads((Path(path) / CONFIG_NAME).read_text()))
    except TypeError as e:
        raise ModelError(f"{path}: {CONFIG_NAME} is not a bottleneck adapter config ({e})") from None
    if spec.placement not in PLACEMENTS or spec.non_linearity not in NON_LINEARITIES:
        raise ModelError(f"{path}: unknown placement {spec.placement!r} or non_linearity {spec.non_linearity!r}")
    return spec


def spec_from_config(adapter, base: nn.Module, freeze_layers: int = 0) -> BottleneckSpec:
    """The spec an `AdapterConfig` with `type: bottleneck` asks for, on `base`."""
    hidden = _hidden_size(base)
    n_layers = len(decoder_sublayers(base))
    if freeze_layers > n_layers:
        raise ConfigError(f"config key 'training.freeze_layers': {freeze_layers} exceeds the model's {n_layers} layers")
    if adapter.bottleneck_size is not None:
        size = adapter.bottleneck_size
    else:
        size = max(1, round(hidden / adapter.reduction_factor))
    return BottleneckSpec(
        bottleneck_size=size,
        placement=adapter.placement,
        non_linearity=adapter.non_linearity,
        hidden_size=hidden,
        reduction_factor=adapter.reduction_factor,
        layers=list(range(freeze_layers, n_layers)) if freeze_layers else None,
        base_model_name_or_path=getattr(base, "name_or_path", None),
    )


def add_bottleneck(
    model: nn.Module, adapter, freeze_layers: int = 0, gradient_checkpointing: bool = False
) -> BottleneckModel:
    """Freeze `model` and add one trainable adapter, `default`, as the recipe's `adapter:` says."""
    spec = spec_from_config(adapter, model, freeze_layers)
    model.requires_grad_(False)
    if gradient_checkpointing:
        model.enable_input_require_grads()  # checkpointed blocks need an input that requires grad
    wrapped = BottleneckModel(model)
    wrapped.add_adapter("default", spec, trainable=True)
    return wrapped
