"""An online method's records (GRPO, PPO, episodes): a prompt plus the columns its rewards read, and the report
of what was read.

A record is `prompt` (a string, used as it is, or a message list, rendered with the chat template and its
generation prompt; a trailing assistant turn, a reference answer, is left out of the prompt) plus any other
columns, which reach the rewards (or the environment) as TRL passes them. A top-level `system` makes the prompt a
conversation, [system, user] through the chat template (an empty one adds no system turn); it stays a column too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from alignline.data.dataset import DataReportBase
from alignline.data.formats import Message, Where, with_system
from alignline.data.sources import read_records
from alignline.errors import DataError


@dataclass(slots=True)
class PromptUnit:
    prompt: str | list[dict]
    """As the engine takes it: a message list (chat template) or raw text."""
    columns: dict
    """The record's other fields, passed to the rewards (e.g. `answer`)."""
    origin: str = ""


@dataclass
class PromptReport(DataReportBase):
    """Prompts are tokenized when sampled, not when prepared: nothing is dropped, truncated or counted in tokens."""

    unit: ClassVar[str] = "prompts"
    unmeasured: ClassVar[tuple[str, ...]] = ("dropped", "truncated", "train_tokens")


def to_prompt_unit(record: dict, path: str, location: str) -> PromptUnit:
    if "prompt" not in record:
        raise DataError(
            path,
            "is missing (an online method's records are a prompt plus the columns its rewards read)",
            record=location,
            field="prompt",
        )
    prompt = record["prompt"]
    if isinstance(prompt, list):
        for i, m in enumerate(prompt):
            if not isinstance(m, dict) or "role" not in m or not isinstance(m.get("content"), str):
                raise DataError(path, "expected a {role, content} message", record=location, field=f"prompt[{i}]")
        while prompt and prompt[-1]["role"] == "assistant":  # a reference answer is not part of the prompt
            prompt = prompt[:-1]
        prompt = [{"role": m["role"], "content": m["content"]} for m in prompt]
    if not prompt or not isinstance(prompt, (str, list)):
        raise DataError(path, "expected a non-empty string or message list", record=location, field="prompt")
    if "system" in record:
        prompt = prompt_with_system(prompt, record, path, location)
    columns = {k: v for k, v in record.items() if k != "prompt"}  # `system` stays a column too, as TRL passes it
    return PromptUnit(prompt, columns, f"{path}, {location}")


def prompt_with_system(prompt: str | list[dict], record: dict, path: str, location: str) -> list[dict]:
    """A record that carries a `system` is a conversation: [system, user] rendered through the chat template for
    generation (formats.with_system decides, as it does for SFT and preference records)."""
    where = Where(path, location)
    messages = (
        [Message(m["role"], m["content"]) for m in prompt] if isinstance(prompt, list) else [Message("user", prompt)]
    )
    return [{"role": m.role, "content": m.content} for m in with_system(messages, record, where)]


def load_prompts(path: str, split: str = "train", columns: dict | None = None) -> list[PromptUnit]:
    return [to_prompt_unit(r, str(path), loc) for loc, r in read_records(path, split, columns)]
