"""The record formats of the Hugging Face ecosystem, normalized to two sample kinds.

- `Conversation`: chat messages, rendered later with the model's chat template. Comes from `messages`
  (OpenAI / HF, with an optional per-message `weight: 0|1`), `prompt`/`completion` as message lists,
  Alpaca (`instruction`/`input`/`output`, with LLaMA-Factory's `history` and `system`) and ShareGPT
  (`conversations` of `from`/`value`, with LLaMA-Factory's `function_call`/`observation` turns, `tools`).
- `PlainText`: raw text with no template. Comes from `prompt`/`completion` as strings (loss on the
  completion, as TRL does) and `text` (continued pretraining: loss on everything).

A top-level `system` makes `prompt`/`completion` a conversation even when both are strings: [system, user, assistant]
through the chat template, the assistant turn trained (an empty or null `system` adds no system turn, the record is
still chat, as axolotl renders it). With a message-list prompt (or `messages`) it becomes the first turn; a
different system message already there is refused.

OpenAI's chat shape is read as OpenAI means it: an assistant message may carry `tool_calls`
(`[{id, type: function, function: {name, arguments}}]`, `arguments` a JSON string or object) and no
`content` (or `content: null`); `tool` messages answer with `tool_call_id`; a top-level `tools` list
holds the function schemas; `developer` is a role (templates.py maps it to `system` where the template
knows no `developer`). Content given as a list of parts (`[{type: text, text}]`) is its text parts
joined with no separator, as chat templates that iterate parts render them; any other part (an image,
audio) is refused: this toolkit trains text models.

Alpaca `history` ([instruction, response] pairs before the current turn) becomes earlier turns, and
their responses are trained, as LLaMA-Factory does (its `mask_history` is off by default).

Every field problem raises `DataError` naming the file, the record and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from alignline.errors import DataError

ROLES = ("system", "developer", "user", "assistant", "tool")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "chatgpt": "assistant", "tool": "tool", "function": "tool",
                  "observation": "tool", "function_call": "assistant"}


@dataclass(slots=True)
class Message:
    role: str
    content: str
    train: bool = True
    """Only meaningful for assistant turns: `weight: 0` leaves the turn out of the loss."""
    tool_calls: list[dict] | None = None
    """Assistant turns: `[{id?, type: function, function: {name, arguments: dict}}]`, arguments parsed."""
    tool_call_id: str | None = None
    """Tool turns: which call this answers."""
    name: str | None = None


@dataclass(slots=True)
class Conversation:
    messages: list[Message]
    origin: str = ""
    """`file, line N`: where the record came from, for reports and errors."""
    tools: list[dict] | None = None
    """OpenAI function schemas offered to the model (`[{type: function, function: {name, ...}}]`)."""


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


def parse_content(value, where: Where, fld: str) -> str:
    """A string, or OpenAI content parts: text parts joined with no separator; any other part is refused."""
    if not isinstance(value, list):
        return require_string(value, where, fld)
    texts = []
    for i, part in enumerate(value):
        item = f"{fld}[{i}]"
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise where.error(f"expected a content part {{type, text}}, got {type(part).__name__}", item)
        kind = part.get("type", "text")
        if kind not in ("text", "input_text", "output_text"):
            raise where.error(f"a {kind!r} part: only text parts can be trained (remove images, audio, files)",
                              f"{item}.type")
        texts.append(require_string(part.get("text"), where, f"{item}.text"))
    return "".join(texts)


def parse_tool_calls(value, where: Where, fld: str) -> list[dict]:
    """OpenAI `tool_calls`, normalized to `{id?, type: function, function: {name, arguments: dict}}`:
    chat templates write `arguments | tojson`, so a JSON string is parsed once here."""
    if not isinstance(value, list) or not value:
        raise where.error("expected a non-empty list of {id, type: function, function: {name, arguments}}", fld)
    out = []
    for i, call in enumerate(value):
        item = f"{fld}[{i}]"
        if not isinstance(call, dict):
            raise where.error(f"expected a tool call object, got {type(call).__name__}", item)
        if call.get("type", "function") != "function":
            raise where.error(f"only function tool calls are supported, got {call.get('type')!r}", f"{item}.type")
        fn = call.get("function")
        if not isinstance(fn, dict):
            raise where.error("expected {name, arguments}", f"{item}.function")
        name = require_string(fn.get("name"), where, f"{item}.function.name")
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as e:
                raise where.error(f"not valid JSON ({e.msg} at column {e.colno})", f"{item}.function.arguments") from None
        if not isinstance(args, dict):
            raise where.error(f"expected a JSON object, got {type(args).__name__}", f"{item}.function.arguments")
        norm = {"type": "function", "function": {"name": name, "arguments": args}}
        if call.get("id") is not None:
            norm["id"] = require_string(call["id"], where, f"{item}.id")
        out.append(norm)
    return out


def parse_tools(value, where: Where, fld: str = "tools") -> list[dict] | None:
    """A `tools` list (OpenAI function schemas; LLaMA-Factory's bare `{name, parameters}` and a JSON string
    of either are accepted); None when absent or empty."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise where.error(f"not valid JSON ({e.msg} at column {e.colno})", fld) from None
    if not isinstance(value, list):
        raise where.error(f"expected a list of function schemas, got {type(value).__name__}", fld)
    out = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise where.error(f"expected a function schema object, got {type(tool).__name__}", f"{fld}[{i}]")
        if "function" not in tool:  # LLaMA-Factory writes the bare function schema
            tool = {"type": "function", "function": tool}
        if not isinstance(tool["function"], dict) or not isinstance(tool["function"].get("name"), str):
            raise where.error("expected {type: function, function: {name, description, parameters}}", f"{fld}[{i}]")
        out.append(tool)
    return out or None


def message_weight(m: dict, where: Where, item: str) -> bool:
    weight = m.get("weight", 1)
    if isinstance(weight, bool) or weight not in (0, 1):  # True == 1 in Python: refuse it, it is a typo
        raise where.error(f"must be 0 or 1, got {json.dumps(weight)}", f"{item}.weight")
    return bool(weight)


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
        calls = None
        if role == "assistant" and m.get("tool_calls") not in (None, []):
            calls = parse_tool_calls(m["tool_calls"], where, f"{item}.tool_calls")
        if calls is not None and m.get("content") is None:  # OpenAI: a tool-call turn may have no content
            content = ""
        else:
            if "content" not in m:
                raise where.error("is missing", f"{item}.content")
            content = parse_content(m["content"], where, f"{item}.content")
        msg = Message(role, content, train=message_weight(m, where, item), tool_calls=calls)
        if role == "tool" and m.get("tool_call_id") is not None:
            msg.tool_call_id = require_string(m["tool_call_id"], where, f"{item}.tool_call_id")
        if m.get("name") is not None and role in ("tool", "user", "assistant"):
            msg.name = require_string(m["name"], where, f"{item}.name")
        out.append(msg)
    return out


def require_assistant(messages: list[Message], where: Where, fld: str) -> None:
    if not any(m.role == "assistant" for m in messages):
        raise where.error("has no assistant message to learn from", fld)


def _from_messages(r: dict, w: Where) -> Sample:
    msgs = with_system(parse_messages(r["messages"], w, "messages"), r, w)
    require_assistant(msgs, w, "messages")
    return Conversation(msgs, tools=parse_tools(r.get("tools"), w))


def _from_prompt_completion(r: dict, w: Where) -> Sample:
    prompt, completion = r["prompt"], r["completion"]
    if isinstance(prompt, str) and isinstance(completion, str) and "system" not in r:
        return PlainText(prompt, completion)
    # a record that carries a system is a conversation, whatever the prompt's shape
    prompt_msgs = with_system(parse_messages(prompt, w, "prompt") if isinstance(prompt, list) else [
        Message("user", require_string(prompt, w, "prompt"))], r, w)
    if isinstance(completion, str):
        completion_msgs = [Message("assistant", completion)]
    else:
        completion_msgs = parse_messages(completion, w, "completion")
    require_assistant(completion_msgs, w, "completion")
    for m in prompt_msgs:  # the prompt is context, never a target
        m.train = False
    return Conversation(prompt_msgs + completion_msgs, tools=parse_tools(r.get("tools"), w))


def _from_text(r: dict, w: Where) -> Sample:
    return PlainText("", require_string(r["text"], w, "text"))


def with_system(messages: list[Message], record: dict, where: Where) -> list[Message]:
    """A record's top-level `system` as the conversation's first turn (axolotl, LLaMA-Factory and GRPO datasets
    carry it beside a string prompt). An empty or null `system` adds no turn, as axolotl renders it; a different
    system turn already opening the messages is refused: which of the two was meant is not ours to guess."""
    system = record.get("system")
    if system in (None, ""):
        return messages
    system = require_string(system, where, "system")
    if messages and messages[0].role == "system":
        if messages[0].content != system:
            raise where.error("differs from the prompt's own system message; keep one of the two", "system")
        return messages
    return [Message("system", system, train=False)] + messages


def _from_alpaca(r: dict, w: Where) -> Sample:
    instruction = require_string(r["instruction"], w, "instruction")
    extra = r.get("input") or ""
    if not isinstance(extra, str):
        raise w.error(f"expected a string, got {type(extra).__name__}", "input")
    msgs = []
    if r.get("system"):
        msgs.append(Message("system", require_string(r["system"], w, "system")))
    history = r.get("history") or []
    if not isinstance(history, list):
        raise w.error("expected a list of [instruction, response] pairs", "history")
    for i, turn in enumerate(history):
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise w.error("expected an [instruction, response] pair", f"history[{i}]")
        msgs.append(Message("user", require_string(turn[0], w, f"history[{i}][0]")))
        msgs.append(Message("assistant", require_string(turn[1], w, f"history[{i}][1]")))
    msgs.append(Message("user", f"{instruction}\n\n{extra}" if extra.strip() else instruction))
    msgs.append(Message("assistant", require_string(r["output"], w, "output")))
    return Conversation(msgs)


def parse_sharegpt(turns, w: Where, fld: str = "conversations") -> list[Message]:
    if not isinstance(turns, list) or not turns:
        raise w.error("expected a non-empty list of {from, value} turns", fld)
    msgs = []
    for i, t in enumerate(turns):
        msgs.append(parse_sharegpt_turn(t, w, f"{fld}[{i}]"))
    return msgs


def parse_sharegpt_turn(t, w: Where, item: str) -> Message:
    if not isinstance(t, dict):
        raise w.error(f"expected a turn object, got {type(t).__name__}", item)
    if "from" not in t:
        raise w.error("is missing", f"{item}.from")
    role = SHAREGPT_ROLES.get(t["from"])
    if role is None:
        raise w.error(f"unknown speaker {t['from']!r}; allowed: {', '.join(SHAREGPT_ROLES)}", f"{item}.from")
    return sharegpt_turn(t, role, w, item)


def _from_sharegpt(r: dict, w: Where) -> Sample:
    msgs = parse_sharegpt(r["conversations"], w)
    if r.get("system") and msgs[0].role != "system":
        msgs.insert(0, Message("system", require_string(r["system"], w, "system")))
    require_assistant(msgs, w, "conversations")
    return Conversation(msgs, tools=parse_tools(r.get("tools"), w))


def sharegpt_turn(t: dict, role: str, w: Where, item: str) -> Message:
    """One ShareGPT turn; LLaMA-Factory's `function_call` value is `{"name", "arguments"}` JSON (or a list
    of them) and becomes a real tool call, so templates with tool support render it as such."""
    value = require_string(t.get("value"), w, f"{item}.value")
    if t["from"] != "function_call":
        return Message(role, value)
    try:
        calls = json.loads(value)
    except json.JSONDecodeError as e:
        raise w.error(f"a function_call turn holds {{name, arguments}} JSON ({e.msg})", f"{item}.value") from None
    calls = calls if isinstance(calls, list) else [calls]
    if not all(isinstance(c, dict) for c in calls):
        raise w.error("a function_call turn holds {name, arguments} JSON", f"{item}.value")
    wrapped = [{"type": "function", "function": c} for c in calls]
    return Message("assistant", "", tool_calls=parse_tool_calls(wrapped, w, f"{item}.value"))


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


def is_unpaired_feedback(record: dict) -> bool:
    """KTO's unpaired format: `label: true|false` (a CSV cell gives the string `true` / `false`)."""
    label = record.get("label")
    return isinstance(label, bool) or (isinstance(label, str) and label.strip().lower() in ("true", "false"))


def refuse_unpaired(record: dict, path: str, location: str, method: str = "sft") -> None:
    """A method that does not read `label` would train on every completion, the `label: false` (undesirable)
    ones too. Any feedback label is refused, `true` included (a file that is all `label: true` is SFT data
    once the field is dropped, which the message says); a non-boolean label (a category) passes."""
    if is_unpaired_feedback(record):
        raise DataError(path, f"unpaired feedback (KTO's prompt/completion/label format): {method} would train on "
                        "every completion, label: false ones too; use `method: kto` (or, for label: true records "
                        "only, drop the field)", record=location, field="label")


def to_sample(record: dict, path: str, location: str) -> Sample:
    """Normalize one record; the error names the file, the record and the missing field."""
    where = Where(path, location)
    if "message_id" in record and "parent_id" in record and "messages" not in record:
        raise where.error("one message of a message-tree export (OpenAssistant style); read the whole file, "
                          "whose threads are rebuilt, not single records", "message_id")
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
