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

OpenAI's legacy function calling is read as tool calls: an assistant `function_call: {name, arguments}` is
one tool call (no id), a `function` message (`name`, `content`) is a tool result, and a top-level `functions`
list holds the schemas (a record with both `tools` and `functions` is refused).

Training flags inside records, read as axolotl (`message_field_training: train`,
`message_field_training_detail: train_detail`) means them:
- `train: true|false` on any message decides whether that turn is trained, whatever its role (a user turn
  with `train: true` is trained: its content and the end-of-turn token the template writes after it).
  Without it, assistant turns are trained and the others are context. OpenAI's `weight: 0|1` and
  LLaMA-Factory v1's `loss_weight: 0|1` say the same for assistant turns; flags that disagree are refused.
- `train_detail: [{begin_offset, end_offset, train}]`: character offsets into the (string) content,
  `end_offset` inclusive; only text inside a `train: true` entry is trained, and a token straddling a
  trained and a masked character is masked (as axolotl does). A turn with a train_detail is trained.
- content parts (`[{type: text, text, train | weight}]`): a part flagged `train: false` / `weight: 0` is
  masked, an unflagged part follows its turn; the same on `reasoning_content` parts.
The rest of a trained turn (reasoning, tool calls, the end-of-turn token) stays trained. A turn whose every
character is masked trains nothing, not even its end-of-turn token (axolotl would train that token alone).
With `data.loss_on: all` every token is trained and these flags are not read.

Reasoning: an assistant turn's `reasoning_content` (a string or text parts), Harmony's `thinking`, or
LLaMA-Factory v1 `{"type": "reasoning", "value": ...}` parts. Passed to the chat template under the name it
reads (templates.py finds out by rendering a sentinel) and trained with the turn. Where the template renders
none, training refuses the data unless `data.reasoning: drop`, which leaves it out and warns once with the
count per field (and never trains an empty `<think></think>` a template writes anyway). Content parts may also
be LLaMA-Factory v1's `{"type": "text", "value": ...}` and `{"type": "tool_call", "value": "{name, arguments}"}`.

Alpaca `history` ([instruction, response] pairs before the current turn) becomes earlier turns, and
their responses are trained, as LLaMA-Factory does (its `mask_history` is off by default).

Every field problem raises `DataError` naming the file, the record and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from alignline.errors import DataError

ROLES = ("system", "developer", "user", "assistant", "tool")
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
    "function_call": "assistant",
}


@dataclass(slots=True)
class Message:
    role: str
    content: str
    train: bool = True
    """False leaves the turn out of the loss, whatever else: `weight: 0`, `train: false`, a prompt that is context."""
    tool_calls: list[dict] | None = None
    """Assistant turns: `[{id?, type: function, function: {name, arguments: dict}}]`, arguments parsed."""
    tool_call_id: str | None = None
    """Tool turns: which call this answers."""
    name: str | None = None
    train_input: bool = False
    """A non-assistant turn the record itself marks as trained (axolotl's `train: true` / `train_detail`)."""
    content_train: list[tuple[int, int]] | None = None
    """Character ranges `[begin, end)` of `content` that are trained when the turn is; the rest of the content
    is masked. None: all of it (axolotl's `train_detail` and per-part `train` / `weight` set this)."""
    reasoning: str | None = None
    """Assistant turns: the reasoning before the answer (`reasoning_content`, Harmony's `thinking`,
    LLaMA-Factory v1 `reasoning` parts), passed to the chat template and trained with the turn."""
    reasoning_train: list[tuple[int, int]] | None = None
    """As `content_train`, for `reasoning`."""
    reasoning_field: str | None = None
    """Where the reasoning came from (`messages[2].reasoning_content`), for errors and warnings."""


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


TEXT_PARTS = ("text", "input_text", "output_text")


@dataclass(slots=True)
class Parts:
    """A message's content, read from a string or a list of content parts."""

    text: str
    text_train: list[tuple[int, int]] | None = None
    reasoning: str | None = None
    reasoning_train: list[tuple[int, int]] | None = None
    tool_calls: list[dict] | None = None


def part_flag(part: dict, where: Where, item: str) -> bool | None:
    """axolotl's per-part `train: true|false` or `weight: 0|1`; None when the part carries neither."""
    train, weight = part.get("train"), part.get("weight")
    if train is not None and not isinstance(train, bool):
        raise where.error(f"must be true or false, got {json.dumps(train)}", f"{item}.train")
    if weight is not None and (isinstance(weight, bool) or weight not in (0, 1)):
        raise where.error(f"must be 0 or 1, got {json.dumps(weight)}", f"{item}.weight")
    if train is not None and weight is not None and train != bool(weight):
        raise where.error(f"train: {json.dumps(train)} contradicts weight: {weight}; keep one", f"{item}.train")
    return train if train is not None else (None if weight is None else bool(weight))


def part_text(part: dict, where: Where, item: str) -> str:
    """A part's text: `text` (OpenAI), `value` (LLaMA-Factory v1) or `content` (accepted by axolotl)."""
    for key in ("text", "value", "content"):
        if part.get(key) is not None:
            return require_string(part[key], where, f"{item}.{key}")
    raise where.error("is missing (a text part holds `text`, or `value` in LLaMA-Factory v1 files)", f"{item}.text")


def v1_tool_call(part: dict, where: Where, item: str) -> dict:
    """LLaMA-Factory v1 `{"type": "tool_call", "value": "{\"name\": ..., \"arguments\": ...}"}`."""
    value = part.get("value")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise where.error(f"a tool_call part holds {{name, arguments}} JSON ({e.msg})", f"{item}.value") from None
    if not isinstance(value, dict):
        raise where.error("a tool_call part holds {name, arguments} JSON", f"{item}.value")
    return parse_tool_calls([{"type": "function", "function": value}], where, f"{item}.value")[0]


def parse_parts(value, where: Where, fld: str) -> Parts:
    """A string, or content parts: text parts joined with no separator (as chat templates that iterate parts
    render them); LLaMA-Factory v1 `reasoning` and `tool_call` parts; per-part training flags (axolotl) become
    trained character ranges. Any other part (an image, audio) is refused."""
    if not isinstance(value, list):
        return Parts(require_string(value, where, fld))
    texts: dict[str, list[str]] = {"text": [], "reasoning": []}
    ranges: dict[str, list[tuple[int, int]]] = {"text": [], "reasoning": []}
    flagged = {"text": False, "reasoning": False}
    calls = []
    for i, part in enumerate(value):
        item = f"{fld}[{i}]"
        if isinstance(part, str):
            part = {"type": "text", "text": part}
        if not isinstance(part, dict):
            raise where.error(f"expected a content part {{type, text}}, got {type(part).__name__}", item)
        kind = part.get("type", "text")
        if kind == "tool_call":
            calls.append(v1_tool_call(part, where, item))
            continue
        if kind not in TEXT_PARTS + ("reasoning",):
            raise where.error(
                f"a {kind!r} part: only text parts can be trained (remove images, audio, files)", f"{item}.type"
            )
        slot = "reasoning" if kind == "reasoning" else "text"
        text, flag = part_text(part, where, item), part_flag(part, where, item)
        begin = sum(map(len, texts[slot]))
        texts[slot].append(text)
        flagged[slot] = flagged[slot] or flag is not None
        if flag is not False and text:  # an unflagged part follows the turn (axolotl)
            ranges[slot].append((begin, begin + len(text)))
    return Parts(
        "".join(texts["text"]),
        ranges["text"] if flagged["text"] else None,
        "".join(texts["reasoning"]) if texts["reasoning"] else None,
        ranges["reasoning"] if flagged["reasoning"] else None,
        calls or None,
    )


def parse_content(value, where: Where, fld: str) -> str:
    """A string, or OpenAI content parts: text parts joined with no separator; any other part is refused."""
    parts = parse_parts(value, where, fld)
    if parts.reasoning is not None or parts.tool_calls or parts.text_train is not None:
        raise where.error("reasoning, tool_call parts and per-part training flags belong in chat messages", fld)
    return parts.text


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
                raise where.error(
                    f"not valid JSON ({e.msg} at column {e.colno})", f"{item}.function.arguments"
                ) from None
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
    weight = 1 if m.get("weight") is None else m["weight"]  # None: a table column other messages fill
    if isinstance(weight, bool) or weight not in (0, 1):  # True == 1 in Python: refuse it, it is a typo
        raise where.error(f"must be 0 or 1, got {json.dumps(weight)}", f"{item}.weight")
    return bool(weight)


def turn_flag(m: dict, role: str, where: Where, item: str) -> bool | None:
    """The record's own say on whether a turn is trained, None when it has none: axolotl's `train` (any role),
    OpenAI's `weight: 0|1` and LLaMA-Factory v1's `loss_weight` (both assistant turns only, as they mean it)."""
    flags = {}
    if m.get("train") is not None:
        if not isinstance(m["train"], bool):
            raise where.error(f"must be true or false, got {json.dumps(m['train'])}", f"{item}.train")
        flags["train"] = m["train"]
    weight = message_weight(m, where, item)  # checked on every turn, read on assistant turns
    if role == "assistant" and m.get("weight") is not None:
        flags["weight"] = weight
    if m.get("loss_weight") is not None:
        lw = m["loss_weight"]
        if isinstance(lw, bool) or lw not in (0, 1):
            raise where.error(f"must be 0 or 1 (a turn is trained or not), got {json.dumps(lw)}", f"{item}.loss_weight")
        if role == "assistant":
            flags["loss_weight"] = bool(lw)
    if len(set(flags.values())) > 1:
        raise where.error(
            f"{', '.join(f'{k}: {json.dumps(m[k])}' for k in flags)} contradict each other; keep one",
            f"{item}.{next(iter(flags))}",
        )
    return next(iter(flags.values()), None)


def parse_train_detail(value, content, where: Where, item: str) -> list[tuple[int, int]]:
    """axolotl's `train_detail`: `[{begin_offset, end_offset, train}]`, character offsets into the content with
    `end_offset` inclusive (their example marks " very well" of "I'm doing very well, thank you!" as 9..18).
    Returns the trained ranges `[begin, end)`; text no entry covers is not trained, as in axolotl."""
    fld = f"{item}.train_detail"
    if not isinstance(content, str):
        raise where.error("train_detail offsets need a string content (with content parts, flag the parts)", fld)
    if not isinstance(value, list):
        raise where.error("expected a list of {begin_offset, end_offset, train}", fld)
    trained = []
    for i, d in enumerate(value):
        at = f"{fld}[{i}]"
        if not isinstance(d, dict):
            raise where.error("expected {begin_offset, end_offset, train}", at)
        b, e, train = d.get("begin_offset"), d.get("end_offset"), d.get("train")
        for key, v in (("begin_offset", b), ("end_offset", e)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise where.error(f"expected a character offset (an integer >= 0), got {json.dumps(v)}", f"{at}.{key}")
        if not isinstance(train, bool):
            raise where.error(f"must be true or false, got {json.dumps(train)}", f"{at}.train")
        if b > e or e >= len(content):
            raise where.error(
                f"offsets {b}..{e} (end inclusive) fall outside the content's {len(content)} characters", at
            )
        if train:
            trained.append((b, e + 1))
    return trained


REASONING_FIELDS = ("reasoning_content", "thinking")


def parse_reasoning(
    m: dict, parts: Parts, role: str, where: Where, item: str
) -> tuple[str | None, str | None, list | None]:
    """`(reasoning, the field it came from, trained ranges)`: `reasoning_content` (a string or parts), Harmony's
    `thinking`, or LLaMA-Factory v1 `reasoning` parts; one source at most."""
    found = []
    for key in REASONING_FIELDS:
        if m.get(key) not in (None, "", []):
            got = parse_parts(m[key], where, f"{item}.{key}")
            if got.reasoning is not None or got.tool_calls:
                raise where.error("expected the reasoning text (a string or text parts)", f"{item}.{key}")
            found.append((got.text, f"{item}.{key}", got.text_train))
    if parts.reasoning:
        found.append((parts.reasoning, f"{item}.content (reasoning parts)", parts.reasoning_train))
    if not found:
        return None, None, None
    if len(found) > 1:
        raise where.error(f"reasoning given twice ({' and '.join(f[1] for f in found)}); keep one", found[1][1])
    if role != "assistant":
        raise where.error("reasoning is only read on assistant turns", found[0][1])
    return found[0]


def legacy_function_call(m: dict, where: Where, item: str) -> list[dict]:
    """OpenAI's legacy `function_call: {name, arguments}` (before `tool_calls`): one tool call with no id."""
    if m.get("tool_calls") not in (None, []):
        raise where.error("a message has tool_calls or the legacy function_call, not both", f"{item}.function_call")
    call = m["function_call"]
    if not isinstance(call, dict):
        raise where.error("expected {name, arguments}", f"{item}.function_call")
    return parse_tool_calls([{"type": "function", "function": call}], where, f"{item}.function_call")


def message_calls(m: dict, role: str, parts: Parts, where: Where, item: str) -> list[dict] | None:
    calls = list(parts.tool_calls or [])
    if role == "assistant" and m.get("tool_calls") not in (None, []):
        calls += parse_tool_calls(m["tool_calls"], where, f"{item}.tool_calls")
    if role == "assistant" and m.get("function_call") is not None:
        calls += legacy_function_call(m, where, item)
    return calls or None


def set_training(msg: Message, m: dict, where: Where, item: str) -> None:
    """`train` / `train_input` from the record's flags (see the module docstring); content_train already set."""
    if m.get("train_detail") is not None:
        if msg.content_train is not None:
            raise where.error(
                "train_detail and per-part training flags both mask this content; keep one", f"{item}.train_detail"
            )
        content = m.get("content", m.get("value"))
        msg.content_train = parse_train_detail(m["train_detail"], content, where, item)
    flag = turn_flag(m, msg.role, where, item)
    if flag is None and (msg.content_train is not None or msg.reasoning_train is not None):
        flag = bool(msg.content_train or msg.reasoning_train)  # axolotl: a turn with a training detail is trained
    msg.train = flag is not False
    msg.train_input = msg.role != "assistant" and bool(flag)


def parse_message(m, where: Where, item: str) -> Message:
    if not isinstance(m, dict):
        raise where.error(f"expected a message object, got {type(m).__name__}", item)
    if "role" not in m:
        raise where.error("is missing", f"{item}.role")
    role = m["role"]
    if role not in ROLES + ("function",):
        raise where.error(f"unknown role {role!r}; allowed: {', '.join(ROLES)}", f"{item}.role")
    if role == "function":  # OpenAI's legacy function result: {role: function, name, content}
        role = "tool"
    legacy_call = role == "assistant" and m.get("function_call") is not None
    if (m.get("tool_calls") not in (None, []) or legacy_call) and m.get("content") is None and role == "assistant":
        parts = Parts("")  # OpenAI: a tool-call turn may have no content
    else:
        if "content" not in m:
            raise where.error("is missing", f"{item}.content")
        parts = parse_parts(m["content"], where, f"{item}.content")
    calls = message_calls(m, role, parts, where, item)
    reasoning, reasoning_field, reasoning_train = parse_reasoning(m, parts, role, where, item)
    msg = Message(
        role,
        parts.text,
        tool_calls=calls,
        content_train=parts.text_train,
        reasoning=reasoning,
        reasoning_train=reasoning_train,
        reasoning_field=reasoning_field,
    )
    set_training(msg, m, where, item)
    if role == "tool" and m.get("tool_call_id") is not None:
        msg.tool_call_id = require_string(m["tool_call_id"], where, f"{item}.tool_call_id")
    if m.get("name") is not None and role in ("tool", "user", "assistant"):
        msg.name = require_string(m["name"], where, f"{item}.name")
    return msg


def parse_messages(value, where: Where, fld: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise where.error("expected a non-empty list of {role, content} messages", fld)
    return [parse_message(m, where, f"{fld}[{i}]") for i, m in enumerate(value)]


def require_assistant(messages: list[Message], where: Where, fld: str) -> None:
    if not any(m.role == "assistant" for m in messages):
        raise where.error("has no assistant message to learn from", fld)


def record_tools(r: dict, w: Where) -> list[dict] | None:
    """`tools`, or OpenAI's legacy `functions` (bare function schemas); both at once are refused."""
    if r.get("functions") not in (None, "", []):
        if r.get("tools") not in (None, "", []):
            raise w.error("a record has tools or the legacy functions, not both", "functions")
        return parse_tools(r["functions"], w, "functions")
    return parse_tools(r.get("tools"), w)


def _from_messages(r: dict, w: Where) -> Sample:
    msgs = with_system(parse_messages(r["messages"], w, "messages"), r, w)
    require_assistant(msgs, w, "messages")
    return Conversation(msgs, tools=record_tools(r, w))


def _from_prompt_completion(r: dict, w: Where) -> Sample:
    prompt, completion = r["prompt"], r["completion"]
    if isinstance(prompt, str) and isinstance(completion, str) and "system" not in r:
        return PlainText(prompt, completion)
    # a record that carries a system is a conversation, whatever the prompt's shape
    prompt_msgs = with_system(
        parse_messages(prompt, w, "prompt")
        if isinstance(prompt, list)
        else [Message("user", require_string(prompt, w, "prompt"))],
        r,
        w,
    )
    if isinstance(completion, str):
        completion_msgs = [Message("assistant", completion)]
    else:
        completion_msgs = parse_messages(completion, w, "completion")
    require_assistant(completion_msgs, w, "completion")
    for m in prompt_msgs:  # the prompt is context, never a target
        m.train = False
    return Conversation(prompt_msgs + completion_msgs, tools=record_tools(r, w))


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
        msg = Message(role, value)
        set_training(msg, t, w, item)  # axolotl's train / train_detail on ShareGPT-shaped turns
        return msg
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
        raise DataError(
            path,
            f"unpaired feedback (KTO's prompt/completion/label format): {method} would train on "
            "every completion, label: false ones too; use `method: kto` (or, for label: true records "
            "only, drop the field)",
            record=location,
            field="label",
        )


def to_sample(record: dict, path: str, location: str) -> Sample:
    """Normalize one record; the error names the file, the record and the missing field."""
    where = Where(path, location)
    if "message_id" in record and "parent_id" in record and "messages" not in record:
        raise where.error(
            "one message of a message-tree export (OpenAssistant style); read the whole file, "
            "whose threads are rebuilt, not single records",
            "message_id",
        )
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
