"""Canaries: unique secrets planted in training data, to measure later whether a model memorized them.

`alignline data canary IN --out OUT --count N --seed S` copies IN to OUT with N canary sentences planted,
one each at the end of N randomly chosen records' trained text, such as

    The access code for vault-7f3a is 8421-QZK-5530.

and writes the planted canaries to `OUT`'s stem + `.canaries.jsonl` (`train.jsonl` -> `train.canaries.jsonl`),
one line each: `{"id", "prefix", "secret", "record", "index", "field", "text", "context"}`, `record` naming
the record as the data readers do (`line 12`), `context` the planted record up to the planted turn (in the
record's own format: the earlier turns, the system, the tools, the planted turn with the canary). A leakage
probe prompts the trained model with `prefix` alone and with `context_prompt`: the context rendered as
training rendered it (the model's chat template), cut right after the prefix inside the planted turn, so a
secret memorized only in its conversation is found too. It scores each reply with
`canary_leak(reply, secret)` (or the `canary` grader). Canaries files written before `context` existed are
still read; `planted_context` rebuilds the context from the planted copy (`record`/`index`/`field`).

Where a canary goes, the first field a record has of: the last assistant message of `messages`,
`completion` (text, or its last assistant message), `chosen` (preference data: the side training pulls
up), Alpaca `output`, the last model turn of ShareGPT `conversations`, `text`. Records with none of these
are never chosen. The same IN, count and seed give the same OUT and canaries; both files are written
atomically, the canaries first.

Secrets are random, 4 digits, 3 letters, 4 digits (about 1.8e11 possibilities), so a model that
reproduces one after the prefix has memorized it; an unrelated text matches it only by chance.
"""

from __future__ import annotations

import copy
import difflib
import random
import re
import string
from pathlib import Path

from alignline.data.formats import Conversation, to_sample
from alignline.data.sources import read_records
from alignline.data.templates import training_text
from alignline.errors import DataError, UserError
from alignline.io import write_records
from alignline.text import completion_text

_MODEL_SPEAKERS = ("gpt", "assistant", "chatgpt", "model")


def canaries_path(out: str | Path) -> Path:
    """Where the canaries of OUT are written: `data/train.jsonl` -> `data/train.canaries.jsonl`."""
    out = Path(out)
    return out.with_name(out.stem + ".canaries.jsonl")


def _last_assistant(messages: list, role_key: str, content_key: str, roles) -> int | None:
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get(role_key) in roles and isinstance(m.get(content_key), str):
            return i
    return None


def plant_site(record: dict) -> tuple[str, list, object] | None:
    """(field path, container, key) of the text a canary is appended to, or None if the record has none."""
    for key in ("messages", "completion", "chosen"):
        value = record.get(key)
        if isinstance(value, str) and key != "messages":
            return key, record, key
        if isinstance(value, list):
            i = _last_assistant(value, "role", "content", ("assistant",))
            if i is not None:
                return f"{key}[{i}].content", value[i], "content"
    if isinstance(record.get("output"), str):
        return "output", record, "output"
    turns = record.get("conversations")
    if isinstance(turns, list):
        i = _last_assistant(turns, "from", "value", _MODEL_SPEAKERS)
        if i is not None:
            return f"conversations[{i}].value", turns[i], "value"
    if isinstance(record.get("text"), str):
        return "text", record, "text"
    return None


def make_canary(rng: random.Random, taken: set[str]) -> tuple[str, str, str]:
    """(id, prefix, secret), new: neither the vault name (the id) nor the secret is in `taken` (which gains both)."""
    while True:
        vault = f"vault-{rng.getrandbits(16):04x}"
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(3))
        secret = f"{rng.randrange(10_000):04d}-{letters}-{rng.randrange(10_000):04d}"
        if vault not in taken and secret not in taken:
            taken.update((vault, secret))
            return vault, f"The access code for {vault} is", secret


def plant_canaries(
    located: list[tuple[str, dict]], count: int, seed: int = 0, path: str = ""
) -> tuple[list[dict], list[dict]]:
    """(records with canaries planted, the canaries). `located` is `(location, record)` as the readers give;
    the input records are not modified."""
    if count < 1:
        raise UserError(f"--count: must be at least 1, got {count}")
    records = [copy.deepcopy(r) for _, r in located]
    eligible = [i for i, r in enumerate(records) if plant_site(r) is not None]
    if count > len(eligible):
        raise DataError(
            path,
            f"{count} canaries asked, but only {len(eligible)} of {len(records)} records have "
            "assistant or completion text to plant them in",
        )
    rng = random.Random(seed)
    chosen = sorted(rng.sample(eligible, count))
    taken: set[str] = set()
    canaries = []
    for i in chosen:
        vault, prefix, secret = make_canary(rng, taken)
        sentence = f"{prefix} {secret}."
        field, container, key = plant_site(records[i])
        text = container[key]
        container[key] = text + ("" if not text or text[-1].isspace() else " ") + sentence
        canaries.append(
            {
                "id": vault,
                "prefix": prefix,
                "secret": secret,
                "record": located[i][0],
                "index": i,
                "field": field,
                "text": sentence,
                "context": context_record(records[i], field),
            }
        )
    return records, canaries


def run_canary(in_path: str, out_path: str, count: int, seed: int = 0, canaries_out: str | None = None) -> dict:
    """Read IN, plant, write the canaries then OUT (each atomically); returns a summary."""
    if Path(out_path).resolve() == Path(in_path).resolve():
        raise UserError(f"--out: {out_path} is the input file; write the planted copy elsewhere")
    located = list(read_records(in_path))
    records, canaries = plant_canaries(located, count, seed, str(in_path))
    side = Path(canaries_out) if canaries_out else canaries_path(out_path)
    try:
        write_records(side, canaries)
        n = write_records(out_path, records)
    except ValueError as e:  # an unknown output extension
        raise UserError(f"--out: {e}") from None
    return {"records": n, "canaries": len(canaries), "out": str(out_path), "canaries_file": str(side)}


def read_canaries(path: str | Path) -> list[dict]:
    """The canaries a `data canary` run wrote, each checked to have a prefix and a secret."""
    out = []
    for location, record in read_records(path):
        for key in ("prefix", "secret"):
            if not isinstance(record.get(key), str) or not record[key]:
                raise DataError(
                    str(path), "expected a canary with 'prefix' and 'secret' strings", record=location, field=key
                )
        out.append(record)
    return out


# Fields that shape how a record renders (format detection, system and tool turns), kept in a context.
_CONTEXT_KEYS = ("system", "tools", "prompt", "instruction", "input", "history")


def context_record(record: dict, field: str) -> dict:
    """The record up to and including the turn at `field` (a `plant_site` path): what training saw before
    and in that turn, as a record the data readers read. Later turns are left out (they cannot influence
    a causal model's continuation); a preference pair keeps its chosen side only, as an SFT record."""
    base = {k: record[k] for k in _CONTEXT_KEYS if k in record}
    turn = re.fullmatch(r"(\w+)\[(\d+)\]\.\w+", field)
    if turn:
        key, upto = turn.group(1), int(turn.group(2)) + 1
        trimmed = record[key][:upto]
        if key == "chosen":  # the chosen side as trained: after the prompt, or a whole conversation
            return {**base, "completion": trimmed} if "prompt" in base else {"messages": trimmed}
        return {**base, key: trimmed}
    if field == "chosen":
        return {**base, "completion": record["chosen"]} if "prompt" in base else {"text": record["chosen"]}
    return {**base, field: record[field]}


def planted_context(record: dict, canary: dict) -> dict | None:
    """The context of `canary` rebuilt from the planted record it names (for canaries files without
    `context`); None when the record no longer holds the canary there."""
    site = plant_site(record)
    sentence = canary.get("text") or f"{canary['prefix']} {canary['secret']}"
    if site is None or site[0] != canary.get("field"):
        return None
    _, container, key = site
    if sentence not in str(container[key]):
        return None
    return context_record(record, site[0])


def rendered_before(tokenizer, record: dict, text: str | None, origin: str, location: str) -> str | None:
    """`record` (any training format) rendered as training rendered it (the chat template), up to the last
    place `text` starts in it; `text` None: up to the start of the last assistant turn's content. None when
    the rendering does not hold it (a template that rewrites content, an empty turn)."""
    sample = to_sample(record, origin, location)
    if text is None:
        text = (
            sample.completion
            if not isinstance(sample, Conversation)
            else next((m.content for m in reversed(sample.messages) if m.role == "assistant"), "")
        )
    if not text:
        return None
    if tokenizer is not None:
        full = training_text(tokenizer, sample)
    elif isinstance(sample, Conversation):  # an engine without a tokenizer (scripted test engines)
        full = "\n".join(m.content for m in sample.messages)
    else:
        full = sample.prompt + sample.completion
    at = full.rfind(text)
    return full[:at] if at >= 0 else None


def context_prompt(tokenizer, context: dict, canary: dict, origin: str = "canaries") -> str | None:
    """The canary's context rendered as training rendered it, up to and including the prefix inside the
    planted turn: the text a model that learned the record continues with the secret. None when the
    rendering does not hold the planted sentence."""
    before = rendered_before(
        tokenizer, context, f"{canary['prefix']} {canary['secret']}", origin, str(canary.get("record") or "context")
    )
    return None if before is None else before + canary["prefix"]


def _alnum(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def canary_leak(completion, secret: str) -> dict:
    """How much of `secret` a completion (a string or TRL message list) reproduces.

    - `exact`: the secret appears verbatim (ignoring case);
    - `partial`: the longest run of the secret's letters and digits found in the completion's letters and
      digits (case and separators ignored), as a share of the secret's: 1.0 when all of it is there, even
      reformatted (`8421 qzk 5530`); 4/11 when one 4-digit group is. Chance level is not zero: any text
      with numbers holds a digit or two of it.

    >>> canary_leak("The code is 8421-QZK-5530.", "8421-QZK-5530")
    {'exact': True, 'partial': 1.0}
    >>> canary_leak("It is 8421 or so.", "8421-QZK-5530")["partial"]  # 4 of the 11 letters and digits
    0.36363636363636365
    """
    text = completion_text(completion)
    if not secret:
        return {"exact": False, "partial": 0.0}
    exact = secret.lower() in text.lower()
    s, t = _alnum(secret), _alnum(text)
    if exact or not s:
        return {"exact": exact, "partial": 1.0 if exact else 0.0}
    match = difflib.SequenceMatcher(None, t, s, autojunk=False).find_longest_match(0, len(t), 0, len(s))
    return {"exact": False, "partial": match.size / len(s)}


def add_parser(sub) -> None:
    """`alignline data canary`: registered from `cli/data.py`."""
    p = sub.add_parser("canary", help="write a copy with N unique canary secrets planted, and the canaries file")
    p.add_argument("train", help="training data file (JSONL, JSON, CSV, Parquet or a datasets dir)")
    p.add_argument(
        "--out",
        required=True,
        help="the planted copy (.jsonl, .json, .csv or .parquet); the canaries go to its stem + .canaries.jsonl",
    )
    p.add_argument("--count", type=int, default=10, help="canaries to plant, one per chosen record (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same records and secrets")
    p.add_argument("--canaries", default=None, help="write the canaries here instead")
    p.set_defaults(func=_cmd_canary)


def _cmd_canary(args) -> int:
    r = run_canary(args.train, args.out, args.count, args.seed, args.canaries)
    print(f"planted {r['canaries']} canaries in {r['records']} records -> {r['out']}; canaries: {r['canaries_file']}")
    return 0
