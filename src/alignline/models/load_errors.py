"""What is wrong with a local model directory that did not load, in one line naming the file.

transformers reports a local directory's problems (no tokenizer, torn weights) in the same exception
types as a failed hub download, so without this a user with a local directory is told about the hub.
"""

from __future__ import annotations

from pathlib import Path

from alignline.errors import ModelError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.gguf")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def _is_safetensors_error(error: BaseException) -> bool:
    return type(error).__name__ == "SafetensorError" or "deserializing header" in str(error)


def local_load_error(path: str, spec: str | None, error: BaseException, part: str) -> ModelError | None:
    """The ModelError for a local directory that failed to load `part` (`model`, `tokenizer`, `adapter`),
    or None when `path` is not a local directory or the error is not the user's (a bug keeps its traceback)."""
    p = Path(path)
    if not p.is_dir():
        return None
    name = f"model '{spec or path}'"
    if part == "tokenizer":
        if not any((p / f).is_file() for f in TOKENIZER_FILES):
            return ModelError(
                f"{name}: the directory {p} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
                "save one there with tokenizer.save_pretrained()"
            )
        if isinstance(error, (OSError, ValueError)):
            return ModelError(f"{name}: the tokenizer in {p} cannot be loaded ({_first_line(error)})")
        return None
    weights = sorted(f for pattern in WEIGHT_PATTERNS for f in p.glob(pattern))
    if _is_safetensors_error(error):
        suspect = weights[0] if len(weights) == 1 else p
        return ModelError(
            f"{name}: {suspect} is not a readable safetensors file, truncated or corrupt "
            f"({_first_line(error)}); copy or download it again"
        )
    if part == "model" and not weights and not (p / "adapter_config.json").is_file():
        return ModelError(f"{name}: the directory {p} has no weights (model.safetensors)")
    if isinstance(error, (OSError, ValueError)):
        return ModelError(f"{name}: the {part} in {p} cannot be loaded ({_first_line(error)})")
    return None
