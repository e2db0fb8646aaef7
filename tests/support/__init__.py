"""Test helpers, importable from every test as `from support import ...` (pyproject puts `tests/` on the
path). Kept out of the wheel: they need pytest, a PostgreSQL server or Chromium. The tiny model builders
stay in `alignline.testing` because `bench/` needs them from the installed package; they are re-exported
here so a test has one place to import from."""

from alignline.testing import (
    TINY_ARCHITECTURES,
    TINY_CHAT_TEMPLATE,
    TINY_VOCAB,
    random_packed_batch,
    save_tiny_model,
    split_packed,
    tiny_architecture,
    tiny_llama,
    tiny_tokenizer,
)
from support.data import assistant, chat_records, system, user, write_jsonl, write_recipe
from support.engines import ScriptedEngine, ScriptedTokenEngine
from support.models import safetensors_weights, save_random_adapter, spy_on_adapted_model
from support.numerics import FLOAT32_EPS, reorder_tolerance
from support.processes import kill_when_exists
from support.services import (
    CHROMIUM_ARGS,
    chromium_or_skip,
    postgres_database,
    postgres_url_or_skip,
    system_part_or_skip,
    vllm_or_skip,
)

__all__ = [
    "CHROMIUM_ARGS",
    "TINY_ARCHITECTURES",
    "TINY_CHAT_TEMPLATE",
    "TINY_VOCAB",
    "ScriptedEngine",
    "ScriptedTokenEngine",
    "assistant",
    "chat_records",
    "chromium_or_skip",
    "kill_when_exists",
    "postgres_database",
    "postgres_url_or_skip",
    "random_packed_batch",
    "safetensors_weights",
    "save_random_adapter",
    "save_tiny_model",
    "spy_on_adapted_model",
    "split_packed",
    "system",
    "system_part_or_skip",
    "tiny_architecture",
    "tiny_llama",
    "tiny_tokenizer",
    "user",
    "vllm_or_skip",
    "write_jsonl",
    "write_recipe",
    "FLOAT32_EPS",
    "reorder_tolerance",
]
