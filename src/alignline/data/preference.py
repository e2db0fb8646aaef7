"""Preference records: the comparisons reward models and the DPO family learn from.

Accepted, with TRL's field names:
- `prompt`, `chosen`, `rejected`: strings (raw text) or message lists (chat; the prompt may include a
  system turn and earlier turns).
- HH style: only `chosen` and `rejected`, whole transcripts sharing the prompt. Message lists split at
  their last common message; strings split before the last `\\n\\nAssistant:`.
- `prompt` with `ranking`: K responses ordered best first, expanded into the K(K-1)/2 pairs.
Optional per record: `weight` or `confidence` (e.g. the share of annotators who agreed; the pair's
weight in the loss), `margin` (reward models), `annotator`/`annotators`, `source` (human | synthetic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alignline.data.formats import Conversation, Message, PlainText, parse_messages, Where
from alignline.data.sources import read_records
from alignline.data.templates import Example, shift_targets, tokenize_sample

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
        cut = chosen.rfind(HH_SPLIT)
        if cut < 0 or not rejected.startswith(chosen[: cut + len(HH_SPLIT)]):
            raise w.error(f"HH-style transcripts must share the prompt up to the last '{HH_SPLIT.strip()}'", "chosen")
        cut += len(HH_SPLIT)
        return chosen[:cut], chosen[cut:], rejected[cut:]
    c, r = parse_messages(chosen, w, "chosen"), parse_messages(rejected, w, "rejected")
    common = 0
    while common < min(len(c), len(r)) and (c[common].role, c[common].content) == (r[common].role, r[common].content):
        common += 1
    while common and c[common - 1].role == "assistant":  # the prompt ends where the compared answers begin
        common -= 1
    if common == 0 or common >= min(len(c), len(r)):
        raise w.error("chosen and rejected transcripts share no prompt, or do not differ", "chosen")
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
            return value
    return 1.0


def to_pairs(record: dict, path: str, location: str) -> list[PreferencePair]:
    w = Where(path, location)
    common = {"weight": _weight(record, w), "source": record.get("source"), "origin": f"{path}, {location}"}
    common["margin"] = _number(record["margin"], w, "margin") if record.get("margin") not in (None, "") else 0.0
    if "ranking" in record:
        if "prompt" not in record:
            raise w.error("is missing (a ranking needs the prompt it answers)", "prompt")
        ranked = record["ranking"]
        if not isinstance(ranked, list) or len(ranked) < 2:
            raise w.error("expected a list of at least two responses, best first", "ranking")
        prompt = _prompt(record["prompt"], w)
        answers = [_completion(r, w, f"ranking[{i}]") for i, r in enumerate(ranked)]
        return [PreferencePair(*_same_kind(prompt, answers[i], answers[j]), **common)
                for i in range(len(answers)) for j in range(i + 1, len(answers))]
    for key in ("chosen", "rejected"):
        if key not in record:
            raise w.error("is missing", key)
    if "prompt" in record:
        prompt = _prompt(record["prompt"], w)
        chosen, rejected = _completion(record["chosen"], w, "chosen"), _completion(record["rejected"], w, "rejected")
    else:
        prompt, chosen, rejected = _split_hh(record["chosen"], record["rejected"], w)
    prompt, chosen, rejected = _same_kind(prompt, chosen, rejected)
    if _key(chosen) == _key(rejected):
        raise w.error("chosen and rejected are identical: the pair teaches nothing", "rejected")
    return [PreferencePair(prompt, chosen, rejected, **common)]


def _key(answer) -> object:
    return answer if isinstance(answer, str) else [(m.role, m.content) for m in answer]


def _context(msgs: list[Message]) -> list[Message]:
    """The prompt is context, never a target."""
    for m in msgs:
        m.train = False
    return msgs


def _prompt(value, w: Where) -> list[Message] | str:
    return value if isinstance(value, str) else _context(parse_messages(value, w, "prompt"))


def _same_kind(prompt, chosen, rejected):
    """Strings stay raw text only when all three are strings; otherwise everything becomes chat."""
    if isinstance(prompt, str) and isinstance(chosen, str) and isinstance(rejected, str):
        return prompt, chosen, rejected
    if isinstance(prompt, str):
        prompt = [Message("user", prompt, train=False)]
    as_chat = (lambda x: [Message("assistant", x)] if isinstance(x, str) else x)
    return prompt, as_chat(chosen), as_chat(rejected)


def load_pairs(path: str) -> list[PreferencePair]:
    pairs = []
    for location, record in read_records(path):
        pairs += to_pairs(record, str(path), location)
    return pairs


def unpaired_fields(record: dict, w: Where) -> tuple[list[Message] | str, list[Message] | str, float]:
    """`prompt`, one `completion` and the record's weight (unpaired feedback, `data/unpaired.py`), checked and made
    the same kind (both raw text, or both chat) exactly as the sides of a pair are."""
    for key in ("prompt", "completion"):
        if key not in record:
            raise w.error("is missing", key)
    completion = _completion(record["completion"], w, "completion")
    prompt, completion, _ = _same_kind(_prompt(record["prompt"], w), completion, completion)
    return prompt, completion, _weight(record, w)


def pair_sample(prompt, completion):
    if isinstance(prompt, str):
        return PlainText(prompt, completion)
    for m in completion:
        m.train = True
    return Conversation(list(prompt) + list(completion))


def _example(tokenizer, prompt, completion, max_length: int) -> tuple[Example, int]:
    ids, mask = tokenize_sample(tokenizer, pair_sample(prompt, completion))
    cut = max(0, len(ids) - max_length)
    ids, mask = ids[:max_length], mask[:max_length]
    return Example(ids, shift_targets(ids, mask), truncated=cut), cut


def tokenize_pair(tokenizer, pair: PreferencePair, max_length: int) -> PairExample | None:
    """Both sides tokenized with the chat template and loss masks; None when the prompt alone fills
    max_length (the caller counts those as dropped)."""
    chosen, _ = _example(tokenizer, pair.prompt, pair.chosen, max_length)
    rejected, _ = _example(tokenizer, pair.prompt, pair.rejected, max_length)
    if chosen.num_targets == 0 or rejected.num_targets == 0:
        return None
    return PairExample(chosen, rejected, weight=pair.weight, margin=pair.margin)
