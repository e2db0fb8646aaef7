"""LLaMA-Factory `dataset_info.json` entries, used as written.

A recipe names an entry instead of a file:

    data:
      train: {dataset_info: data/dataset_info.json, name: alpaca_en_demo}
      # or, in a mix:  train: [{dataset_info: data/dataset_info.json, name: dpo_en_demo, weight: 0.5}, ...]
      eval: {dataset_info: data/dataset_info.json, name: my_eval}

The config turns that into the reference `data/dataset_info.json#alpaca_en_demo` (`ref_string`), which every reader
(`sources.read_records`: training, `data show`, `data check`, the gates) resolves here: the entry's `file_name` is read
(relative to the dataset_info.json's folder) and each record is translated into an alignline record.

What each key means is what it means in LLaMA-Factory (`data/README.md`, `src/llamafactory/data/parser.py` and
`converter.py`):
- `formatting`: `alpaca` (default) or `sharegpt`. `ranking: true`: preference data. A `kto_tag` column: unpaired
  feedback (KTO).
- `columns` maps LLaMA-Factory's names to the file's fields; defaults `prompt: instruction`, `query: input`,
  `response: output`, `messages: conversations`. `system`, `history` and `tools` are read only when mapped (as in
  LLaMA-Factory, whose defaults for them are none).
- `tags` (sharegpt): `role_tag`/`content_tag` name a turn's keys (defaults `from`/`value`); `user_tag`,
  `assistant_tag`, `observation_tag`, `function_tag`, `system_tag` the role values (defaults `human`, `gpt`,
  `observation`, `function_call`, `system`). A first turn with the system tag is the system prompt.
- `split` picks a split of a `datasets` directory (default: `data.split`).

The translation (into shapes alignline reads natively, so the same tokens train as from the equivalent file):
- alpaca: the user turn is `prompt` and `query` joined by a newline (LLaMA-Factory's `instruction\\ninput`), after
  any `history` pairs (whose responses train, as in LLaMA-Factory) and `system`: an SFT record is `{messages, tools}`;
  a record with only the prompt column (`columns: {prompt: text}`, LLaMA-Factory's pre-training entry) is `{text}`.
- sharegpt: turns checked in LLaMA-Factory's order (user or observation, then assistant or function call, ...); an SFT
  record ends with the assistant, a ranking record with the user. Function-call turns hold `{name, arguments}` JSON
  and become tool calls; observation turns become tool results.
- ranking: `{prompt: [messages], chosen: [assistant], rejected: [assistant]}` (TRL's conversational preference).
- kto_tag: `{prompt: [messages], completion: [last assistant turn], label}` (TRL's unpaired preference); the earlier
  turns are context.

Refused, each in one line naming the entry and the key: entries without `file_name` that point at a hub
(`hf_hub_url`, `ms_hub_url`, `om_hub_url`, `script_url`, `cloud_file_name`): alignline reads local files; `num_samples`
(use the source's `weight` and `data.mix_size`); `subset`/`folder` (hub options); `images`/`videos`/`audios` columns
(alignline trains text models); `formatting: openai` (name the file directly: alignline reads OpenAI messages);
unknown keys, columns and tags. Where an entry has both a hub address and `file_name`, the local file is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from alignline.config_checks import REF, normalize_source, parse_ref, ref_string  # noqa: F401  (re-exported)
from alignline.data.formats import Message, Where, require_string, sharegpt_turn
from alignline.data.paths import missing_reason
from alignline.errors import DataError

COLUMNS = (
    "prompt",
    "query",
    "response",
    "history",
    "messages",
    "system",
    "tools",
    "images",
    "videos",
    "audios",
    "chosen",
    "rejected",
    "kto_tag",
)
DEFAULT_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "messages": "conversations"}
TAGS = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")
DEFAULT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
HUB_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
ENTRY_KEYS = (
    "file_name",
    "formatting",
    "ranking",
    "columns",
    "tags",
    "split",
    *HUB_KEYS,
    "subset",
    "folder",
    "num_samples",
)
MEDIA = ("images", "videos", "audios")
# The reference syntax `PATH.json#NAME` is the recipe's: config_checks.py owns it (config sits below data).


@dataclass(frozen=True)
class Entry:
    info: Path
    name: str
    file: Path
    formatting: str = "alpaca"
    ranking: bool = False
    split: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    """LLaMA-Factory's column name -> the file's field, defaults filled in."""
    mapped: frozenset[str] = frozenset()
    """The columns the entry names itself (optional columns are read only when named)."""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def kto(self) -> bool:
        return "kto_tag" in self.columns

    @property
    def where(self) -> str:
        return f"{self.file} (entry {self.name!r} of {self.info})"


def _entry_error(info: Path, name: str, message: str, key: str | None = None) -> DataError:
    return DataError(str(info), message, record=f"entry {name!r}", field=key)


def _read_info(info: Path) -> dict:
    if not info.is_file():
        raise DataError(str(info), missing_reason(info))
    try:
        data = json.loads(info.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DataError(str(info), f"malformed JSON ({e.msg})", record=f"line {e.lineno}") from None
    except UnicodeDecodeError:
        raise DataError(str(info), "not UTF-8 text; re-save the file as UTF-8") from None
    if not isinstance(data, dict):
        raise DataError(str(info), "a dataset_info.json is an object of named entries")
    return data


def _string_map(info: Path, name: str, value, key: str, allowed: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _entry_error(info, name, f"expected an object, got {type(value).__name__}", key)
    for k, v in value.items():
        if k not in allowed:
            raise _entry_error(
                info, name, f"unknown {key[:-1]} {k!r}; LLaMA-Factory's are {', '.join(allowed)}", f"{key}.{k}"
            )
        if not isinstance(v, str):
            raise _entry_error(info, name, f"expected a field name (a string), got {v!r}", f"{key}.{k}")
    return dict(value)


def _check_keys(info: Path, name: str, raw: dict) -> None:
    for key in raw:
        if key not in ENTRY_KEYS:
            raise _entry_error(info, name, f"unknown key; LLaMA-Factory's keys are {', '.join(ENTRY_KEYS)}", key)
    if "file_name" not in raw:
        hub = next((k for k in HUB_KEYS if k in raw), None)
        if hub is None:
            raise _entry_error(info, name, "is missing: the entry names no file", "file_name")
        raise _entry_error(
            info,
            name,
            f"points at {raw[hub]!r} ({hub}), not a local file: alignline reads local "
            "files; download the dataset (e.g. `huggingface-cli download --repo-type dataset ID "
            "--local-dir DIR`) and add file_name to the entry, or name a hub dataset id as "
            "data.train with data.columns",
            hub,
        )
    if "num_samples" in raw:
        raise _entry_error(
            info, name, "is not read: set the source's `weight` and `data.mix_size` to sample a mix", "num_samples"
        )
    for key in ("subset", "folder"):
        if raw.get(key) is not None:
            raise _entry_error(info, name, "applies to hub datasets; this entry reads file_name: remove it", key)


def load_entry(info: Path, name: str) -> Entry:
    """The named entry of a dataset_info.json, checked; every problem names the file, the entry and the key."""
    data = _read_info(info)
    if name not in data:
        names = ", ".join(list(data)[:12]) + (", ..." if len(data) > 12 else "")
        raise DataError(str(info), f"no entry {name!r}; it has {names or 'none'}")
    raw = data[name]
    if not isinstance(raw, dict):
        raise _entry_error(info, name, f"expected an object, got {type(raw).__name__}")
    _check_keys(info, name, raw)
    formatting = raw.get("formatting", "alpaca")
    if formatting == "openai":
        raise _entry_error(
            info,
            name,
            "'openai' is not translated: name the file itself as data.train (alignline reads OpenAI messages natively)",
            "formatting",
        )
    if formatting not in ("alpaca", "sharegpt"):
        raise _entry_error(info, name, f"{formatting!r} is not allowed; choose alpaca or sharegpt", "formatting")
    ranking = raw.get("ranking", False)
    if not isinstance(ranking, bool):
        raise _entry_error(info, name, f"expected true or false, got {ranking!r}", "ranking")
    split = raw.get("split")
    if split is not None and not isinstance(split, str):
        raise _entry_error(info, name, f"expected a split name, got {split!r}", "split")
    mapped = _string_map(info, name, raw.get("columns", {}), "columns", COLUMNS)
    tags = _string_map(info, name, raw.get("tags", {}), "tags", TAGS)
    for media in MEDIA:
        if media in mapped:
            raise _entry_error(
                info,
                name,
                f"alignline trains text models and cannot read {media}; remove the "
                f"{media} column (and the <{media[:-1]}> markers) for a text-only copy",
                f"columns.{media}",
            )
    if ranking and "kto_tag" in mapped:
        raise _entry_error(
            info, name, "ranking (pairs) and kto_tag (unpaired feedback) exclude each other", "columns.kto_tag"
        )
    if ranking and not {"chosen", "rejected"} <= set(mapped):
        raise _entry_error(info, name, "a ranking entry maps both chosen and rejected", "columns")
    file_name = raw["file_name"]
    if not isinstance(file_name, str) or not file_name:
        raise _entry_error(info, name, f"expected a file name, got {file_name!r}", "file_name")
    return Entry(
        info,
        name,
        info.parent / file_name,
        formatting,
        ranking,
        split,
        {**DEFAULT_COLUMNS, **mapped},
        frozenset(mapped),
        {**DEFAULT_TAGS, **tags},
    )


# ---------------------------------------------------------------------------------------------------------------
# Records: LLaMA-Factory's shapes -> alignline's.


def _column(entry: Entry, record: dict, name: str, w: Where, required: bool = False):
    """The field a LLaMA-Factory column names; None when the column is unmapped (optional ones are read only when
    mapped) or the record lacks the field (as in LLaMA-Factory, where `datasets` fills a sparse column with null)."""
    if name not in entry.columns:
        return None
    fld = entry.columns[name]
    if required and fld not in record:
        default = "" if name in entry.mapped else ", LLaMA-Factory's default"
        raise w.error(f"is missing (entry {entry.name!r} maps {name} to it{default})", fld)
    return record.get(fld)


def unused_columns(entry: Entry, seen: set[str]) -> DataError | None:
    """A column the entry maps to a field no record has (a typo in the entry) would otherwise read as empty."""
    for name in sorted(entry.mapped):
        if entry.columns[name] not in seen:
            return _entry_error(
                entry.info,
                entry.name,
                f"maps {name} to {entry.columns[name]!r}, a field no record of {entry.file} has",
                f"columns.{name}",
            )
    return None


def _message_dict(m: Message) -> dict:
    out = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = m.tool_calls
    return out


def _text(value, w: Where, fld: str) -> str:
    return "" if value is None else require_string(value, w, fld)


def _alpaca_prompt(entry: Entry, record: dict, w: Where) -> list[dict]:
    """System, history pairs, then `prompt\\nquery` as LLaMA-Factory's AlpacaDatasetConverter builds the user turn."""
    msgs = []
    system = _column(entry, record, "system", w)
    if system:
        msgs.append({"role": "system", "content": require_string(system, w, entry.columns["system"])})
    history = _column(entry, record, "history", w) or []
    hist_fld = entry.columns.get("history", "history")
    if not isinstance(history, list):
        raise w.error("expected a list of [instruction, response] pairs", hist_fld)
    for i, turn in enumerate(history):
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise w.error("expected an [instruction, response] pair", f"{hist_fld}[{i}]")
        msgs.append({"role": "user", "content": require_string(turn[0], w, f"{hist_fld}[{i}][0]")})
        msgs.append({"role": "assistant", "content": require_string(turn[1], w, f"{hist_fld}[{i}][1]")})
    parts = [_text(_column(entry, record, key, w), w, entry.columns[key]) for key in ("prompt", "query")]
    if not any(parts):
        raise w.error(
            f"the user turn would be empty: {entry.columns['prompt']!r} and {entry.columns['query']!r} are "
            "both missing or empty",
            entry.columns["prompt"],
        )
    msgs.append({"role": "user", "content": "\n".join(p for p in parts if p)})
    return msgs


def _tools(entry: Entry, record: dict, w: Where) -> dict:
    tools = _column(entry, record, "tools", w)
    return {"tools": tools} if tools not in (None, "", []) else {}


def _answer(value, w: Where, fld: str) -> list[dict]:
    return [{"role": "assistant", "content": require_string(value, w, fld)}]


def _from_alpaca(entry: Entry, record: dict, w: Where) -> dict:
    c = entry.columns
    if entry.ranking:
        return {
            "prompt": _alpaca_prompt(entry, record, w),
            **_tools(entry, record, w),
            "chosen": _answer(_column(entry, record, "chosen", w, True), w, c["chosen"]),
            "rejected": _answer(_column(entry, record, "rejected", w, True), w, c["rejected"]),
        }
    if entry.mapped == {"prompt"} and c["response"] not in record:
        # LLaMA-Factory's pre-training entry (`columns: {prompt: text}`): the prompt column is the document
        return {"text": require_string(_column(entry, record, "prompt", w, True), w, c["prompt"])}
    prompt = _alpaca_prompt(entry, record, w)
    answer = _answer(_column(entry, record, "response", w, True), w, c["response"])
    if entry.kto:
        return _unpaired(entry, record, prompt, answer, w)
    return {"messages": prompt + answer, **_tools(entry, record, w)}


def _unpaired(entry: Entry, record: dict, prompt: list[dict], answer: list[dict], w: Where) -> dict:
    if _tools(entry, record, w):
        raise w.error(
            "unpaired feedback (KTO) is read without tools; remove the tools column from the entry",
            entry.columns["tools"],
        )
    return {"prompt": prompt, "completion": answer, "label": _column(entry, record, "kto_tag", w, True)}


def _roles(entry: Entry) -> dict[str, str]:
    t = entry.tags
    return {
        t["user_tag"]: "user",
        t["assistant_tag"]: "assistant",
        t["observation_tag"]: "tool",
        t["function_tag"]: "function_call",
        t["system_tag"]: "system",
    }


def _turn(entry: Entry, turn, allowed: tuple[str, str], w: Where, item: str) -> dict:
    """One sharegpt turn whose role tag must be one of `allowed` (LLaMA-Factory's odd/even positions)."""
    t = entry.tags
    if not isinstance(turn, dict):
        raise w.error(f"expected a turn object, got {type(turn).__name__}", item)
    if t["role_tag"] not in turn:
        raise w.error("is missing", f"{item}.{t['role_tag']}")
    tag = turn[t["role_tag"]]
    if tag not in allowed:
        raise w.error(
            f"{tag!r} here: LLaMA-Factory expects {' or '.join(map(repr, allowed))} at this position "
            "(user or observation turns, then assistant or function-call turns, alternating)",
            f"{item}.{t['role_tag']}",
        )
    content = require_string(turn.get(t["content_tag"]), w, f"{item}.{t['content_tag']}")
    role = _roles(entry)[tag]
    if role != "function_call":
        return {"role": role, "content": content}
    call = sharegpt_turn({"from": "function_call", "value": content}, "assistant", w, f"{item}.{t['content_tag']}")
    return _message_dict(call)


def _sharegpt_prompt(entry: Entry, record: dict, w: Where) -> list[dict]:
    """System and the turns, in LLaMA-Factory's order; an SFT conversation ends with the assistant, a ranking
    record's with the user (its answers are `chosen` and `rejected`)."""
    t = entry.tags
    fld = entry.columns["messages"]
    turns = _column(entry, record, "messages", w, True)
    if not isinstance(turns, list) or not turns:
        raise w.error("expected a non-empty list of turns", fld)
    system = None
    if t["system_tag"] and isinstance(turns[0], dict) and turns[0].get(t["role_tag"]) == t["system_tag"]:
        system = require_string(turns[0].get(t["content_tag"]), w, f"{fld}[0].{t['content_tag']}")
        turns = turns[1:]
        start = 1
    else:
        system = _column(entry, record, "system", w)
        start = 0
    odd, even = (t["user_tag"], t["observation_tag"]), (t["assistant_tag"], t["function_tag"])
    msgs = [_turn(entry, turn, odd if i % 2 == 0 else even, w, f"{fld}[{i + start}]") for i, turn in enumerate(turns)]
    if entry.ranking == (len(msgs) % 2 == 0):
        want = "the user's turn (its answers are chosen and rejected)" if entry.ranking else "an assistant turn"
        raise w.error(f"has {len(msgs)} turns after any system turn; LLaMA-Factory expects it to end with {want}", fld)
    if system:
        msgs.insert(0, {"role": "system", "content": require_string(system, w, entry.columns.get("system", fld))})
    return msgs


def _from_sharegpt(entry: Entry, record: dict, w: Where) -> dict:
    msgs = _sharegpt_prompt(entry, record, w)
    if entry.ranking:
        even = (entry.tags["assistant_tag"], entry.tags["function_tag"])
        sides = {
            key: [_turn(entry, _column(entry, record, key, w, True), even, w, entry.columns[key])]
            for key in ("chosen", "rejected")
        }
        return {"prompt": msgs, **sides, **_tools(entry, record, w)}
    if entry.kto:  # the last assistant turn is judged, the earlier turns are its context
        return _unpaired(entry, record, msgs[:-1], msgs[-1:], w)
    return {"messages": msgs, **_tools(entry, record, w)}


def translate(entry: Entry, record: dict, location: str) -> dict:
    """One record of the entry's file as alignline reads it; errors name the file, the record and the field."""
    w = Where(entry.where, location)
    return _from_sharegpt(entry, record, w) if entry.formatting == "sharegpt" else _from_alpaca(entry, record, w)
