"""Preference records: the comparisons reward models and the DPO family learn from.

Accepted, with TRL's field names:
- `prompt`, `chosen`, `rejected`: strings (raw text) or message lists (chat; the prompt may include a
  system turn and earlier turns).
- A top-level `system` beside the prompt (axolotl's `chatml.prompt_pairs` {system, prompt, chosen, rejected};
  `chatml.intel` and Intel/orca_dpo_pairs {system, question, chosen, rejected}, `question` being the prompt):
  the record is a conversation, [system, user] then the assistant answers, rendered with the chat template, as
  axolotl renders it (an empty `system` adds no system turn, and the record is still chat).
- HH style: only `chosen` and `rejected`, whole transcripts sharing the prompt. Message lists split at
  their last common message; strings split before the last `\\n\\nAssistant:`.
- TRL's implicit prompt: `chosen` and `rejected` strings with no `\\n\\nAssistant:` marker. Their longest common
  prefix is the prompt, as TRL's `extract_prompt` takes it: where the prefix ends in a space, that space belongs
  to the answers. Strings that differ from the first character, or where one is the start of the other, are
  refused (no prompt, or an empty answer).
- LLaMA-Factory Alpaca preference: `instruction`, `input`, `chosen`, `rejected` (optional `system`, `history`):
  the user turn is instruction and input joined with a newline, as LLaMA-Factory joins them; history turns are
  context.
- LLaMA-Factory v1 (`DPOSample`): `chosen_messages` / `rejected_messages`, whole conversations whose content is
  a list of `{type: text, value}` parts (or a string), each message with an optional `loss_weight` 0.0 / 1.0, and
  `tools` (a JSON string). Split at the last common message, as HH message lists are; parts other than text are
  refused naming their type.
- `prompt` with `ranking`: K responses ordered best first, expanded into the K(K-1)/2 pairs (identical
  answers in a ranking are refused).
- HuggingFaceH4/ultrafeedback_binarized: `prompt` a string, `chosen`/`rejected` whole conversations that
  repeat the prompt turn. Where an answer's messages start with the prompt (the prompt string as a user
  turn, after any system turn; or the prompt's message list), that shared part is the prompt and only
  the rest is the answer, so the user turn is not in the sequence twice.
- OpenAI preference fine-tuning: `{"input": {"messages", "tools"?}, "preferred_output": [...],
  "non_preferred_output": [...]}`, the outputs assistant messages (tool calls allowed).
- LLaMA-Factory ShareGPT preference: `conversations` (`from`/`value` turns, the prompt), `chosen` and
  `rejected` each one `{from: gpt, value}` turn, optional `system` and `tools`.
Optional per record: `weight` (>= 0, may exceed 1) or `confidence` (in [0, 1], e.g. the share of
annotators who agreed; the pair's weight in the loss), `margin` (reward models), `annotator`/`annotators`,
`source` (human | synthetic). A file whose every pair weighs 0 is refused: it would train nothing.
A record with a `label: true|false` field is unpaired feedback: refused here, it is `method: kto`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alignline.data.formats import (
    Conversation,
    Message,
    PlainText,
    Where,
    is_unpaired_feedback,
    parse_messages,
    parse_sharegpt,
    parse_sharegpt_turn,
    parse_tools,
    require_assistant,
    require_string,
    with_system,
)
from alignline.data.sources import read_records
from alignline.data.templates import Example, shift_targets, tokenize_sample
from alignline.errors import DataError

HH_SPLIT = "\n\nAssistant:"


@dataclass(slots=True)
class PreferencePair:
    prompt: list[Message] | str
    chosen: list[Message] | str
    rejected: list[Message] | str
    weight: float = 1.0
    margin: float = 0.0
    source: str | None = None
    origin: str = ""
    tools: list[dict] | None = None
    """Function schemas offered in the prompt (chat pairs only)."""


@dataclass(slots=True)
class PairExample:
    chosen: Example
    rejected: Example
    weight: float = 1.0
    margin: float = 0.0
    ref: tuple[float, float] | None = None
    """Reference log-probs (chosen, rejected), when computed once before training."""


def _completion(value, w: Where, fld: str) -> list[Message] | str:
    if isinstance(value, str):
        return value
    msgs = parse_messages(value, w, fld)
    if not any(m.role == "assistant" for m in msgs):
        raise w.error("has no assistant message", fld)
    return msgs


def _split_hh(chosen, rejected, w: Where):
    if isinstance(chosen, str) and isinstance(rejected, str):
        if HH_SPLIT not in chosen:
            return _split_implicit(chosen, rejected, w)
        cut = chosen.rfind(HH_SPLIT)
        if not rejected.startswith(chosen[: cut + len(HH_SPLIT)]):
            raise w.error(f"HH-style transcripts must share the prompt up to the last '{HH_SPLIT.strip()}'", "chosen")
        cut += len(HH_SPLIT)
        return chosen[:cut], chosen[cut:], rejected[cut:]
    return _split_messages(parse_messages(chosen, w, "chosen"), parse_messages(rejected, w, "rejected"), w)


def _split_implicit(chosen: str, rejected: str, w: Where):
    """TRL's implicit prompt (`extract_prompt`): the longest common prefix, less a trailing space, which stays
    with the answers ("The sky is" + " blue.")."""
    limit = min(len(chosen), len(rejected))
    n = next((i for i in range(limit) if chosen[i] != rejected[i]), limit)
    if n == 0:
        raise w.error(
            "chosen and rejected (an implicit prompt, TRL style) share no prefix to read as the prompt; "
            "add a `prompt` field",
            "chosen",
        )
    if n == limit and len(chosen) != len(rejected):
        raise w.error(
            "one of chosen and rejected is the start of the other: an implicit prompt (their shared "
            "prefix) would leave an empty answer; add a `prompt` field",
            "chosen",
        )
    if chosen[n - 1] == " ":
        n -= 1
    return chosen[:n], chosen[n:], rejected[n:]


def _split_messages(c: list[Message], r: list[Message], w: Where, fld: str = "chosen"):
    common = 0
    while common < min(len(c), len(r)) and (c[common].role, c[common].content) == (r[common].role, r[common].content):
        common += 1
    while common and c[common - 1].role == "assistant":  # the prompt ends where the compared answers begin
        common -= 1
    if common == 0 or common >= min(len(c), len(r)):
        raise w.error("chosen and rejected transcripts share no prompt, or do not differ", fld)
    return _context(c[:common]), c[common:], r[common:]


def _number(value, w: Where, key: str) -> float:
    """A finite number; numeric strings (CSV cells) count."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise w.error(f"must be a finite number, got {value!r}", key)
    return float(value)


def _weight(record: dict, w: Where) -> float:
    for key in ("weight", "confidence"):
        if record.get(key) not in (None, ""):
            value = _number(record[key], w, key)
            if value < 0:
                raise w.error(f"must be >= 0, got {value!r}", key)
            if key == "confidence" and value > 1:  # a share of agreement; `weight` is the unbounded one
                raise w.error(f"must be in [0, 1], got {value!r} (use `weight` for a weight above 1)", key)
            return value
    return 1.0


def to_pairs(record: dict, path: str, location: str) -> list[PreferencePair]:
    w = Where(path, location)
    common = {"weight": _weight(record, w), "source": record.get("source"), "origin": f"{path}, {location}"}
    common["margin"] = _number(record["margin"], w, "margin") if record.get("margin") not in (None, "") else 0.0
    if "preferred_output" in record or "non_preferred_output" in record:
        return [_openai_pair(record, w, common)]
    if "ranking" in record:
        if "prompt" not in record and "question" not in record:
            raise w.error("is missing (a ranking needs the prompt it answers)", "prompt")
        ranked = record["ranking"]
        if not isinstance(ranked, list) or len(ranked) < 2:
            raise w.error("expected a list of at least two responses, best first", "ranking")
        prompt = record_prompt(record, w)
        answers = [_completion(r, w, f"ranking[{i}]") for i, r in enumerate(ranked)]
        keys = [_key(a) for a in answers]
        for j, k in enumerate(keys):
            if k in keys[:j]:
                raise w.error(
                    f"is identical to ranking[{keys.index(k)}]: identical answers cannot be ranked", f"ranking[{j}]"
                )
        return [
            PreferencePair(*_same_kind(prompt, answers[i], answers[j]), **common)
            for i in range(len(answers))
            for j in range(i + 1, len(answers))
        ]
    if is_unpaired_feedback(record) and "chosen" not in record:
        raise w.error(
            "unpaired feedback (prompt/completion/label, KTO's format) has no chosen/rejected pair; use `method: kto`",
            "label",
        )
    if "chosen_messages" in record or "rejected_messages" in record:
        return [_v1_pair(record, w, common)]
    for key in ("chosen", "rejected"):
        if key not in record:
            raise w.error("is missing", key)
    tools = None
    if "conversations" in record:
        prompt, chosen, rejected, tools = _sharegpt_pair(record, w)
    elif "prompt" in record or "question" in record:
        key = _prompt_key(record)
        prompt = _prompt(record[key], w, key)
        chosen, rejected = _completion(record["chosen"], w, "chosen"), _completion(record["rejected"], w, "rejected")
        prompt, chosen, rejected = _strip_repeated_prompt(prompt, chosen, rejected, w)
        prompt = _as_chat_if_system(prompt, record, w)  # after the strip, which compares the prompt as written
        tools = parse_tools(record.get("tools"), w)
    elif "instruction" in record:
        prompt = _alpaca_prompt(record, w)
        chosen, rejected = _completion(record["chosen"], w, "chosen"), _completion(record["rejected"], w, "rejected")
    else:
        if isinstance(record.get("input"), str):  # argilla's intel-orca pairs, axolotl's chatml.icr / argilla
            raise w.error(
                "chosen/rejected beside an `input` string (axolotl's chatml.icr / argilla shape): the "
                "prompt is not read from `input`; set `data.columns: {prompt: input}`",
                "input",
            )
        prompt, chosen, rejected = _split_hh(record["chosen"], record["rejected"], w)
        if "system" in record:
            if isinstance(prompt, str):
                raise w.error(
                    "a top-level system needs the user's turn in a `prompt` field (the chosen/rejected "
                    "strings here carry the prompt inside them)",
                    "system",
                )
            prompt = with_system(prompt, record, w)
    prompt, chosen, rejected = _same_kind(prompt, chosen, rejected)
    if _key(chosen) == _key(rejected):
        raise w.error("chosen and rejected are identical: the pair teaches nothing", "rejected")
    return [PreferencePair(prompt, chosen, rejected, tools=tools if not isinstance(prompt, str) else None, **common)]


def record_prompt(record: dict, w: Where) -> list[Message] | str:
    """The prompt of a `prompt` (or axolotl's `question`) record, a conversation where the record says so."""
    key = _prompt_key(record)
    return _as_chat_if_system(_prompt(record[key], w, key), record, w)


def _prompt_key(record: dict) -> str:
    return "prompt" if "prompt" in record else "question"


def _as_chat_if_system(prompt, record: dict, w: Where) -> list[Message] | str:
    """With a top-level `system` (axolotl's chatml.* types, Intel/orca_dpo_pairs) the record is a conversation
    whatever the system's value, as axolotl renders it; so is a `question` record (axolotl's chatml.intel)."""
    if "prompt" in record and "system" not in record:
        return prompt
    msgs = [Message("user", prompt, train=False)] if isinstance(prompt, str) else prompt
    return with_system(msgs, record, w)


def _alpaca_prompt(record: dict, w: Where) -> list[Message]:
    """LLaMA-Factory's Alpaca preference record: the user turn is instruction and input joined with a newline
    (its converter's join, empty parts left out), after `system` and `history` ([instruction, response] pairs)."""
    parts = []
    for key in ("instruction", "input"):
        value = record.get(key)
        if value not in (None, ""):
            parts.append(require_string(value, w, key))
    if not parts:
        raise w.error("is empty: the Alpaca record has no instruction to answer", "instruction")
    history = record.get("history") or []
    if not isinstance(history, list):
        raise w.error("expected a list of [instruction, response] pairs", "history")
    msgs = []
    for i, turn in enumerate(history):
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise w.error("expected an [instruction, response] pair", f"history[{i}]")
        msgs.append(Message("user", require_string(turn[0], w, f"history[{i}][0]")))
        msgs.append(Message("assistant", require_string(turn[1], w, f"history[{i}][1]")))
    msgs.append(Message("user", "\n".join(parts)))
    return _context(with_system(msgs, record, w))


def _v1_pair(record: dict, w: Where, common: dict) -> PreferencePair:
    """LLaMA-Factory v1's DPO sample: two whole conversations, split at their last common message."""
    for key in ("chosen_messages", "rejected_messages"):
        if key not in record:
            raise w.error("is missing (LLaMA-Factory v1 preference records hold both conversations)", key)
    c = _v1_messages(record["chosen_messages"], w, "chosen_messages")
    r = _v1_messages(record["rejected_messages"], w, "rejected_messages")
    prompt, chosen, rejected = _split_messages(c, r, w, "chosen_messages")
    for key, side in (("chosen_messages", chosen), ("rejected_messages", rejected)):
        require_assistant(side, w, key)
        if any(m.role == "assistant" and not m.train for m in side):  # the pair's loss scores each answer whole
            raise w.error(
                "an answer message has loss_weight 0.0: preference training scores the whole answer; "
                "set it to 1.0 or drop the message",
                key,
            )
    return PreferencePair(prompt, chosen, rejected, tools=parse_tools(record.get("tools"), w), **common)


def _v1_messages(value, w: Where, fld: str) -> list[Message]:
    """v1 messages in OpenAI's shape: text parts carry `value` (OpenAI's `text`), `loss_weight` becomes the
    message's 0/1 weight; parts of other types go on to `parse_content`, which names them."""
    if not isinstance(value, list) or not value:
        raise w.error("expected a non-empty list of {role, content} messages", fld)
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise w.error(f"expected a message object, got {type(m).__name__}", f"{fld}[{i}]")
        m = dict(m)
        if isinstance(m.get("content"), list):
            m["content"] = [_v1_part(part) for part in m["content"]]
        if "loss_weight" in m:
            weight = m.pop("loss_weight")
            if isinstance(weight, bool) or weight not in (0, 1):
                raise w.error(f"must be 0.0 or 1.0, got {weight!r}", f"{fld}[{i}].loss_weight")
            m["weight"] = int(weight)
        out.append(m)
    return parse_messages(out, w, fld)


def _v1_part(part):
    if isinstance(part, dict) and part.get("type", "text") == "text" and "value" in part and "text" not in part:
        return {"type": "text", "text": part["value"]}
    return part


def _openai_pair(record: dict, w: Where, common: dict) -> PreferencePair:
    """OpenAI's preference fine-tuning record: input.messages, preferred_output, non_preferred_output."""
    for key in ("input", "preferred_output", "non_preferred_output"):
        if key not in record:
            raise w.error("is missing", key)
    inp = record["input"]
    if not isinstance(inp, dict) or "messages" not in inp:
        raise w.error("expected {messages, tools?}", "input")
    prompt = _context(parse_messages(inp["messages"], w, "input.messages"))
    chosen = _completion(record["preferred_output"], w, "preferred_output")
    rejected = _completion(record["non_preferred_output"], w, "non_preferred_output")
    if isinstance(chosen, str) or isinstance(rejected, str):
        raise w.error(
            "expected a list of assistant messages",
            "preferred_output" if isinstance(chosen, str) else "non_preferred_output",
        )
    if _key(chosen) == _key(rejected):
        raise w.error(
            "preferred and non-preferred outputs are identical: the pair teaches nothing", "non_preferred_output"
        )
    return PreferencePair(prompt, chosen, rejected, tools=parse_tools(inp.get("tools"), w, "input.tools"), **common)


def _sharegpt_pair(record: dict, w: Where):
    """LLaMA-Factory's ShareGPT preference record: the prompt turns, then one chosen and one rejected turn."""
    prompt = _context(parse_sharegpt(record["conversations"], w))
    if record.get("system") and prompt[0].role != "system":
        prompt.insert(0, Message("system", require_string(record["system"], w, "system"), train=False))
    sides = []
    for key in ("chosen", "rejected"):
        value = record[key]
        if isinstance(value, str):
            sides.append([Message("assistant", value)])
            continue
        turns = value if isinstance(value, list) else [value]
        msgs = [
            parse_sharegpt_turn(t, w, key if not isinstance(value, list) else f"{key}[{i}]")
            for i, t in enumerate(turns)
        ]
        if not any(m.role == "assistant" for m in msgs):
            raise w.error("has no assistant (gpt) turn", key)
        sides.append(msgs)
    return prompt, sides[0], sides[1], parse_tools(record.get("tools"), w)


def _repeated_prefix(prompt, answer) -> int:
    """How many leading messages of a chat answer repeat the prompt (0: none)."""
    if isinstance(answer, str):
        return 0
    if isinstance(prompt, str):
        for k, m in enumerate(answer):
            if m.role == "assistant":
                return 0
            if m.role == "user" and m.content.strip() == prompt.strip():
                return k + 1
        return 0
    n = len(prompt)
    same = all((a.role, a.content.strip()) == (p.role, p.content.strip()) for a, p in zip(answer, prompt))
    return n if len(answer) > n and same else 0


def _strip_repeated_prompt(prompt, chosen, rejected, w: Where):
    """ultrafeedback_binarized style: answers that are whole conversations repeating the prompt."""
    kc, kr = _repeated_prefix(prompt, chosen), _repeated_prefix(prompt, rejected)
    if not kc and not kr:
        return prompt, chosen, rejected
    if kc and kr and _key(chosen[:kc]) != _key(rejected[:kr]):
        raise w.error("chosen and rejected repeat the prompt with different turns before it", "rejected")
    if isinstance(prompt, str):  # the answer's own copy carries any system turn before the user turn
        prompt = _context([Message(m.role, m.content) for m in (chosen[:kc] if kc else rejected[:kr])])
    chosen, rejected = chosen[kc:], rejected[kr:]
    for key, side in (("chosen", chosen), ("rejected", rejected)):
        if not any(m.role == "assistant" for m in side):
            raise w.error("has no assistant message after the repeated prompt", key)
    return prompt, chosen, rejected


def _key(answer) -> object:
    return answer if isinstance(answer, str) else [(m.role, m.content) for m in answer]


def _context(msgs: list[Message]) -> list[Message]:
    """The prompt is context, never a target."""
    for m in msgs:
        m.train = False
    return msgs


def _prompt(value, w: Where, fld: str = "prompt") -> list[Message] | str:
    return value if isinstance(value, str) else _context(parse_messages(value, w, fld))


def _same_kind(prompt, chosen, rejected):
    """Strings stay raw text only when all three are strings; otherwise everything becomes chat."""
    if isinstance(prompt, str) and isinstance(chosen, str) and isinstance(rejected, str):
        return prompt, chosen, rejected
    if isinstance(prompt, str):
        prompt = [Message("user", prompt, train=False)]

    def as_chat(x):
        return [Message("assistant", x)] if isinstance(x, str) else x

    return prompt, as_chat(chosen), as_chat(rejected)


def load_pairs(path: str, split: str = "train", columns: dict[str, str] | None = None) -> list[PreferencePair]:
    pairs = []
    for location, record in read_records(path, split, columns):
        pairs += to_pairs(record, str(path), location)
    if pairs and all(p.weight == 0 for p in pairs):
        raise DataError(
            str(path), f"every pair has weight 0 ({len(pairs)} pairs): nothing would be learned", field="weight"
        )
    return pairs


def unpaired_fields(record: dict, w: Where) -> tuple[list[Message] | str, list[Message] | str, float]:
    """`prompt`, one `completion` and the record's weight (unpaired feedback, `data/unpaired.py`), checked and made
    the same kind (both raw text, or both chat) exactly as the sides of a pair are. A top-level `system` (or
    axolotl's `question` as the prompt) makes it chat, as in a pair. LLaMA-Factory's KTO file has no `completion`:
    its `messages` (or ShareGPT `conversations`) end with the judged assistant turn, the turns before are context."""
    if "completion" not in record and ("messages" in record or "conversations" in record):
        return _judged_last_turn(record, w) + (_weight(record, w),)
    if "prompt" not in record and "question" not in record:
        other = next((k for k in ("instruction", "input") if isinstance(record.get(k), str)), None)
        if other:  # axolotl's KTO chatml.argilla shape: the prompt under another name
            raise w.error(
                f"the prompt is read from `prompt` (or `question`), not `{other}`; set "
                f"`data.columns: {{prompt: {other}}}`",
                other,
            )
        raise w.error("is missing", "prompt")
    if "completion" not in record:
        raise w.error("is missing", "completion")
    completion = _completion(record["completion"], w, "completion")
    prompt, completion, _ = _same_kind(record_prompt(record, w), completion, completion)
    return prompt, completion, _weight(record, w)


def _judged_last_turn(record: dict, w: Where) -> tuple[list[Message], list[Message]]:
    """LLaMA-Factory's KTO record (its `kto_tag` column is `label`): the last turn is the completion the label
    judges; every earlier turn, earlier assistant answers included, is context and not trained."""
    if "messages" in record:
        fld, msgs = "messages", parse_messages(record["messages"], w, "messages")
    else:
        fld, msgs = "conversations", parse_sharegpt(record["conversations"], w)
    if msgs[-1].role != "assistant":
        raise w.error("the last turn must be the assistant answer the label judges", f"{fld}[{len(msgs) - 1}]")
    msgs = with_system(msgs, record, w)
    if not any(m.role == "user" for m in msgs[:-1]):
        raise w.error("has no user turn before the judged answer", fld)
    return _context(msgs[:-1]), [msgs[-1]]


def pair_sample(prompt, completion, tools: list[dict] | None = None, origin: str = ""):
    if isinstance(prompt, str):
        return PlainText(prompt, completion, origin=origin)
    for m in completion:
        m.train = True
    return Conversation(list(prompt) + list(completion), origin=origin, tools=tools)


def _example(tokenizer, pair: PreferencePair, completion, max_length: int) -> tuple[Example, int]:
    ids, mask = tokenize_sample(tokenizer, pair_sample(pair.prompt, completion, pair.tools, pair.origin))
    cut = max(0, len(ids) - max_length)
    ids, mask = ids[:max_length], mask[:max_length]
    return Example(ids, shift_targets(ids, mask), truncated=cut), cut


def tokenize_pair(tokenizer, pair: PreferencePair, max_length: int) -> PairExample | None:
    """Both sides tokenized with the chat template and loss masks; None when the prompt alone fills
    max_length (the caller counts those as dropped)."""
    chosen, _ = _example(tokenizer, pair, pair.chosen, max_length)
    rejected, _ = _example(tokenizer, pair, pair.rejected, max_length)
    if chosen.num_targets == 0 or rejected.num_targets == 0:
        return None
    return PairExample(chosen, rejected, weight=pair.weight, margin=pair.margin)
