"""Records as the quality checks see them: one `Item` per record, whatever its format.

SFT and text records go through the foundation's `to_sample`; preference records (`prompt`/`chosen`/
`rejected`, strings or message lists, or `chosen`/`rejected` conversations with an implicit shared
prompt) are read here. A record that cannot be read at all is bad input (`DataError`, exit 2);
softer problems (roles out of order, empty turns) are counted by the format check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alignline.data.formats import Conversation, Message, PlainText, Sample, to_sample
from alignline.data.sources import read_records
from alignline.errors import DataError

CATEGORY_FIELDS = ("task", "category")


@dataclass(slots=True)
class Item:
    index: int
    """0-based position over all the files of a split, in order."""
    rid: str
    """`file, line N`: how a person finds the record."""
    kind: str
    """chat | text | prompt_completion | preference"""
    record: dict
    text: str
    """Everything the model reads or writes, joined (duplicates, PII)."""
    prompt: str
    """The user's side (leakage, task classification); the whole text for plain text records."""
    response: str
    """The final assistant turn, the completion, or the chosen answer."""
    messages: list[Message] = field(default_factory=list)
    chosen: list[Message] | None = None
    rejected: list[Message] | None = None
    sample: Sample | None = None

    @property
    def prompt_messages(self) -> list[Message]:
        return self.messages[: len(self.messages) - len(self.chosen)] if self.chosen is not None else self.messages

    @property
    def label(self) -> str | None:
        for key in CATEGORY_FIELDS:
            value = self.record.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None


def _turns(value, path: str, loc: str, fld: str, default_role: str) -> list[Message]:
    if isinstance(value, str):
        return [Message(default_role, value)]
    if not isinstance(value, list) or not value:
        raise DataError(path, "expected a string or a non-empty list of {role, content} messages", loc, fld)
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise DataError(path, f"expected a message object, got {type(m).__name__}", loc, f"{fld}[{i}]")
        role, content = m.get("role"), m.get("content")
        if not isinstance(role, str):
            raise DataError(path, "is missing or not a string", loc, f"{fld}[{i}].role")
        if not isinstance(content, str):
            raise DataError(path, "is missing or not a string", loc, f"{fld}[{i}].content")
        out.append(Message(role, content))
    return out


def _joined(messages: list[Message]) -> str:
    return "\n".join(m.content for m in messages)


def _preference(record: dict, path: str, loc: str, index: int) -> Item:
    chosen = _turns(record["chosen"], path, loc, "chosen", "assistant")
    rejected = _turns(record["rejected"], path, loc, "rejected", "assistant")
    if "prompt" in record and record["prompt"] is not None:
        prompt = _turns(record["prompt"], path, loc, "prompt", "user")
    else:  # implicit prompt: the shared leading turns of both conversations
        k = 0
        while (k < min(len(chosen), len(rejected)) - 1 and chosen[k].role != "assistant"
               and (chosen[k].role, chosen[k].content) == (rejected[k].role, rejected[k].content)):
            k += 1
        prompt, chosen, rejected = chosen[:k], chosen[k:], rejected[k:]
    user = _joined([m for m in prompt if m.role != "system"])
    text = "\n".join([_joined(prompt), _joined(chosen), _joined(rejected)])
    return Item(index, f"{path}, {loc}", "preference", record, text, user, _joined(chosen),
                messages=prompt + chosen, chosen=chosen, rejected=rejected)


def to_item(record: dict, path: str, loc: str, index: int) -> Item:
    if "chosen" in record and "rejected" in record:
        return _preference(record, path, loc, index)
    sample = to_sample(record, path, loc)
    rid = f"{path}, {loc}"
    if isinstance(sample, PlainText):
        kind = "text" if not sample.prompt else "prompt_completion"
        text = sample.prompt + ("\n" if sample.prompt else "") + sample.completion
        prompt = sample.prompt or sample.completion
        msgs = ([Message("user", sample.prompt)] if sample.prompt else []) + [Message("assistant", sample.completion)]
        return Item(index, rid, kind, record, text, prompt, sample.completion, messages=msgs, sample=sample)
    assert isinstance(sample, Conversation)
    msgs = sample.messages
    last = next((m.content for m in reversed(msgs) if m.role == "assistant"), "")
    user = _joined([m for m in msgs if m.role == "user"])
    return Item(index, rid, "chat", record, _joined(msgs), user, last, messages=msgs, sample=sample)


def iter_items(paths: list[str] | str, start: int = 0) -> Iterator[Item]:
    """Every record of one split (several files in order) as an `Item`; bad input raises `DataError`."""
    if isinstance(paths, (str, Path)):
        paths = [str(paths)]
    index = start
    for path in paths:
        for loc, record in read_records(path):
            yield to_item(record, str(path), loc, index)
            index += 1
