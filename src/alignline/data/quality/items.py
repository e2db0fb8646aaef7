"""Records as the quality checks see them: one `Item` per record, whatever its format.

SFT and text records go through the foundation's `to_sample`, preference records (`prompt`/`chosen`/
`rejected`, HH transcripts, rankings, LLaMA-Factory v1 `chosen_messages`) through `preference.to_pairs`, and
unpaired feedback (a `label: true|false` beside a `completion`, or LLaMA-Factory's KTO `messages`) through
`unpaired.to_unpaired`, exactly as training reads them.
A record that cannot be read at all is bad input (`DataError`, exit 2); softer problems (roles out
of order, empty turns) are counted by the format check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alignline.data.formats import (
    Conversation,
    Message,
    PlainText,
    Sample,
    Where,
    is_unpaired_feedback,
    parse_messages,
    require_string,
    to_sample,
    with_system,
)
from alignline.data.preference import to_pairs
from alignline.data.sources import read_records
from alignline.data.unpaired import to_unpaired, unpaired_sample

CATEGORY_FIELDS = ("task", "category")


@dataclass(slots=True)
class Item:
    index: int
    """0-based position over all the files of a split, in order."""
    rid: str
    """`file, line N`: how a person finds the record."""
    kind: str
    """chat | text | prompt_completion | preference | prompt (an online method's prompt, no answer)"""
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
    rejected_sample: Sample | None = None
    """Raw-text preference pairs: (prompt, chosen) and (prompt, rejected) as training tokenizes them."""

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


def _as_messages(value, role: str) -> list[Message]:
    return [Message(role, value)] if isinstance(value, str) else list(value)


def _joined(messages: list[Message]) -> str:
    # reasoning is trained too, so duplicates and PII are looked for in it
    return "\n".join(f"{m.reasoning}\n{m.content}" if m.reasoning else m.content for m in messages)


def _preference(record: dict, path: str, loc: str, index: int) -> Item:
    """Parsed as training parses it (`preference.to_pairs`); a ranking is seen as its best vs its worst answer."""
    pairs = to_pairs(record, path, loc)
    first, last = pairs[0], pairs[-1]
    raw_prompt = isinstance(first.prompt, str)
    prompt = _as_messages(first.prompt, "user")
    chosen, rejected = _as_messages(first.chosen, "assistant"), _as_messages(last.rejected, "assistant")
    answers = [chosen] + [_as_messages(p.rejected, "assistant") for p in pairs if p.chosen is first.chosen]
    user = _joined([m for m in prompt if m.role != "system"])
    text = "\n".join([_joined(prompt)] + [_joined(a) for a in answers])
    sample = PlainText(first.prompt, first.chosen) if raw_prompt and isinstance(first.chosen, str) else None
    rejected_sample = PlainText(first.prompt, last.rejected) if sample is not None else None
    return Item(
        index,
        f"{path}, {loc}",
        "preference",
        record,
        text,
        user,
        _joined(chosen),
        messages=prompt + chosen,
        chosen=chosen,
        rejected=rejected,
        sample=sample,
        rejected_sample=rejected_sample,
    )


ANSWER_FIELDS = (
    "completion",
    "chosen",
    "rejected",
    "ranking",
    "preferred_output",
    "messages",
    "text",
    "conversations",
    "instruction",
    "output",
    "chosen_messages",
    "rejected_messages",
)
PREFERENCE_FIELDS = ("ranking", "preferred_output", "chosen_messages", "rejected_messages")
UNPAIRED_FIELDS = ("completion", "messages", "conversations")


def is_prompt_only(record: dict) -> bool:
    """A prompt and the columns its rewards read (GRPO's data), with no answer to learn from."""
    return "prompt" in record and not any(k in record for k in ANSWER_FIELDS)


def _prompt_only(record: dict, path: str, loc: str, index: int) -> Item:
    value = record["prompt"]
    where = Where(path, loc)
    msgs = with_system(
        parse_messages(value, where, "prompt")
        if isinstance(value, list)
        else [Message("user", require_string(value, where, "prompt"))],
        record,
        where,
    )  # as generation renders it
    user = _joined([m for m in msgs if m.role != "system"])
    return Item(index, f"{path}, {loc}", "prompt", record, _joined(msgs), user, "", messages=msgs)


def to_item(record: dict, path: str, loc: str, index: int) -> Item:
    if is_prompt_only(record):
        return _prompt_only(record, path, loc, index)
    if ("chosen" in record and "rejected" in record) or any(k in record for k in PREFERENCE_FIELDS):
        return _preference(record, path, loc, index)
    if is_unpaired_feedback(record) and any(k in record for k in UNPAIRED_FIELDS):
        sample = unpaired_sample(to_unpaired(record, path, loc))  # KTO's reading: system, judged last turn
    else:
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


def iter_items(
    paths: list[str] | str, start: int = 0, split: str = "train", columns: dict[str, str] | None = None
) -> Iterator[Item]:
    """Every record of one split (several files in order) as an `Item`, read as training reads it (`split` and
    `columns` are `data.split` and `data.columns`); bad input raises `DataError`."""
    if isinstance(paths, (str, Path)):
        paths = [str(paths)]
    index = start
    for path in paths:
        for loc, record in read_records(path, split, columns):
            yield to_item(record, str(path), loc, index)
            index += 1
