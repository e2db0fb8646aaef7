"""The record formats of the Hugging Face ecosystem, normalized to two sample kinds.

- `Conversation`: chat messages, rendered later with the model's chat template. Comes from `messages`
  (OpenAI / HF, with an optional per-message `weight: 0|1`), `prompt`/`completion` as message lists,
  Alpaca (`instruction`/`input`/`output`) and ShareGPT (`conversations` of `from`/`value`).
- `PlainText`: raw text with no template. Comes from `prompt`/`completion` as strings (loss on the
  completion, as TRL does) and `text` (continued pretraining: loss on everything).

Every field problem raises `DataError` naming the file, the record and the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignline.errors import DataError

ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "chatgpt": "assistant", "tool": "tool", "function": "tool",
                  "observation": "tool", "function_call": "assistant"}


@dataclass(slots=True)
class Message:
    role: str
    content: str
    train: bool = True
    """Only meaningful for assistant turns: `weight: 0` leaves the turn out of the loss."""


@dataclass(slots=True)
class Conversation:
    messages: list[Message]
    origin: str = ""
    """`file, line N`: where the record came from, for reports and errors."""


@dataclass(slots=True)
class PlainText:
    prompt: str
    completion: str
    origin: str = ""


Sample = Conversation | PlainText


@dataclass(slots=True)
class Where:
    path: str
    record: str

    def error(self, message: str, fld: str | None = None) -> DataError:
        return DataError(self.path, message, record=self.record, field=fld)


def require_string(value, where: Where, fld: str) -> str:
    if value is None:
        raise where.error("is missing or null", fld)
    if not isinstance(value, str):
        raise where.error(f"expected a string, got {type(value).__name__}", fld)
    return value


def parse_messages(value, where: Where, fld: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise where.error("expected a non-empty list of {role, content} messages", fld)
    out = []
    for i, m in enumerate(value):
        item = f"{fld}[{i}]"
        if not isinstance(m, dict):
            raise where.error(f"expected a message object, got {type(m).__name__}", item)
        if "role" not in m:
            raise where.error("is missing", f"{item}.role")
        role = m["role"]
        if role not in ROLES:
            raise where.error(f"unknown role {role!r}; allowed: {', '.join(ROLES)}", f"{item}.role")
        if "content" not in m:
            raise where.error("is missing", f"{item}.content")
        content = require_string(m["content"], where, f"{item}.content")
        weight = m.get("weight", 1)
        if weight not in (0, 1):
            raise where.error(f"must be 0 or 1, got {weight!r}", f"{item}.weight")
        out.append(Message(role, content, train=bool(weight)))
    return out


def require_assistant(messages: list[Message], where: Where, fld: str) -> None:
    if not any(m.role == "assistant" for m in messages):
        raise where.error("has no assistant message to learn from", fld)


def _from_messages(r: dict, w: Where) -> Sample:
    msgs = parse_messages(r["messages"], w, "messages")
    require_assistant(msgs, w, "messages")
    return Conversation(msgs)


def _from_prompt_completion(r: dict, w: Where) -> Sample:
    prompt, completion = r["prompt"], r["completion"]
    if isinstance(prompt, str) and isinstance(completion, str):
        return PlainText(prompt, completion)
    prompt_msgs = parse_messages(prompt, w, "prompt") if isinstance(prompt, list) else [
        Message("user", require_string(prompt, w, "prompt"))]
    if isinstance(completion, str):
        completion_msgs = [Message("assistant", completion)]
    else:
        completion_msgs = parse_messages(completion, w, "completion")
    require_assistant(completion_msgs, w, "completion")
    for m in prompt_msgs:  # the prompt is context, never a target
        m.train = False
    return Conversation(prompt_msgs + completion_msgs)


def _from_text(r: dict, w: Where) -> Sample:
    return PlainText("", require_string(r["text"], w, "text"))


def _from_alpaca(r: dict, w: Where) -> Sample:
    instruction = require_string(r["instruction"], w, "instruction")
    extra = r.get("input") or ""
    if not isinstance(extra, str):
        raise w.error(f"expected a string, got {type(extra).__name__}", "input")
    msgs = []
    if r.get("system"):
        msgs.append(Message("system", require_string(r["system"], w, "system")))
    msgs.append(Message("user", f"{instruction}\n\n{extra}" if extra.strip() else instruction))
    msgs.append(Message("assistant", require_string(r["output"], w, "output")))
    return Conversation(msgs)


def _from_sharegpt(r: dict, w: Where) -> Sample:
    turns = r["conversations"]
    if not isinstance(turns, list) or not turns:
        raise w.error("expected a non-empty list of {from, value} turns", "conversations")
    msgs = []
    for i, t in enumerate(turns):
        item = f"conversations[{i}]"
        if not isinstance(t, dict):
            raise w.error(f"expected a turn object, got {type(t).__name__}", item)
        if "from" not in t:
            raise w.error("is missing", f"{item}.from")
        role = SHAREGPT_ROLES.get(t["from"])
        if role is None:
            raise w.error(f"unknown speaker {t['from']!r}; allowed: {', '.join(SHAREGPT_ROLES)}", f"{item}.from")
        msgs.append(Message(role, require_string(t.get("value"), w, f"{item}.value")))
    if r.get("system") and msgs[0].role != "system":
        msgs.insert(0, Message("system", require_string(r["system"], w, "system")))
    require_assistant(msgs, w, "conversations")
    return Conversation(msgs)


# Tried in order: the first whose fields are all present decides the record's format.
FORMATS = {
    "messages": (("messages",), _from_messages),
    "prompt_completion": (("prompt", "completion"), _from_prompt_completion),
    "text": (("text",), _from_text),
    "alpaca": (("instruction", "output"), _from_alpaca),
    "sharegpt": (("conversations",), _from_sharegpt),
}


def detect_format(record: dict) -> str | None:
    for name, (fields, _) in FORMATS.items():
        if all(f in record for f in fields):
            return name
    return None


def to_sample(record: dict, path: str, location: str) -> Sample:
    """Normalize one record; the error names the file, the record and the missing field."""
    where = Where(path, location)
    name = detect_format(record)
    if name is None:
        known = "; ".join("/".join(fields) for fields, _ in FORMATS.values())
        present = ", ".join(map(str, record)) or "none"
        raise where.error(f"no known format: expected fields {known} (found: {present})")
    sample = FORMATS[name][1](record, where)
    sample.origin = f"{path}, {location}"
    return sample


def format_of(sample: Sample) -> str:
    return "chat" if isinstance(sample, Conversation) else ("text" if not sample.prompt else "prompt_completion")
