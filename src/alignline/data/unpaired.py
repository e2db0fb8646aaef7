"""Unpaired feedback: one completion per record, judged desirable or not (what KTO learns from).

TRL's unpaired preference format: `prompt` and `completion` (strings, or message lists for chat; the prompt may hold
a system turn and earlier turns) and `label`, `true` for a desirable completion and `false` for an undesirable one.
CSV cells carry no types, so the strings `true`/`false` (any case) count too; anything else (1, "yes", null) is an
error rather than a guess. Optional per record: `weight` or `confidence`, the completion's weight in the loss, and
`tools` (function schemas, chat records), rendered into the prompt as a preference pair's are.

Also read as their authors mean them:
- A top-level `system` beside a string prompt (axolotl's KTO `chatml.prompt_pairs`, `user_defined`
  {system, prompt, completion, label}; `chatml.intel` {system, question, completion, label}, `question` being the
  prompt): a conversation, [system, user] then the assistant completion, through the chat template.
- LLaMA-Factory's KTO file (`kto_en_demo.json`): `messages` ({role, content}) or ShareGPT `conversations`
  ({from, value}, optional `system`) and `label`. The last turn is the judged assistant completion; the turns
  before it, earlier assistant answers included, are context and not trained.

Tokenized exactly as one side of a preference pair is (`data/preference.py`: the same checks, chat template and loss
mask), so the same record trains the same tokens under DPO and KTO.

A training set with only desirable (or only undesirable) completions trains (TRL allows it, and KTO's loss is
defined for it), with a warning (`methods/kto.py`): without the other kind the policy is pushed one way only, held
back by nothing but the KL reference point. The warning looks at the training set, not at each file, since desirable
and undesirable completions in two files (good.jsonl, bad.jsonl) is a normal set-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignline.data.formats import Message, Sample, Where, parse_tools
from alignline.data.preference import pair_sample, unpaired_fields
from alignline.data.sources import read_records
from alignline.data.templates import IGNORE, Example, shift_targets, tokenize_sample

_LABEL_STRINGS = {"true": True, "false": False}


@dataclass(slots=True)
class UnpairedRecord:
    prompt: list[Message] | str
    completion: list[Message] | str
    label: bool
    """True: desirable."""
    weight: float = 1.0
    origin: str = ""
    tools: list[dict] | None = None
    """Function schemas offered in the prompt (chat records only), as in a preference pair."""


@dataclass(slots=True)
class UnpairedExample:
    example: Example
    label: bool
    weight: float = 1.0
    prompt_len: int = 0
    """Tokens before the completion's first target: where a mismatched completion is spliced in."""


def _label(record: dict, w: Where) -> bool:
    if "label" not in record:
        raise w.error("is missing (true: a desirable completion, false: an undesirable one)", "label")
    value = record["label"]
    if isinstance(value, str) and value.strip().lower() in _LABEL_STRINGS:
        return _LABEL_STRINGS[value.strip().lower()]
    if not isinstance(value, bool):
        raise w.error(f"expected true or false, got {value!r}", "label")
    return value


def to_unpaired(record: dict, path: str, location: str) -> UnpairedRecord:
    w = Where(path, location)
    label = _label(record, w)
    if "completion" not in record and "chosen" in record and "rejected" in record:
        raise w.error(
            "is missing: this is a chosen/rejected pair; unpaired feedback is prompt, completion and "
            "label (scripts/unpair_preferences.py splits pairs into two such records)",
            "completion",
        )
    prompt, completion, weight = unpaired_fields(record, w)
    tools = parse_tools(record.get("tools"), w) if not isinstance(prompt, str) else None
    return UnpairedRecord(prompt, completion, label, weight, origin=f"{path}, {location}", tools=tools)


def load_unpaired(path: str, split: str = "train", columns: dict[str, str] | None = None) -> list[UnpairedRecord]:
    """Every record of one file (or split, with fields renamed by `columns`), validated."""
    return [to_unpaired(record, str(path), location) for location, record in read_records(path, split, columns)]


def unpaired_sample(record: UnpairedRecord) -> Sample:
    """The sequence KTO trains on: the prompt as context, the completion the target (`data show` shows this)."""
    return pair_sample(record.prompt, record.completion, record.tools, record.origin)


def tokenize_unpaired(tokenizer, record: UnpairedRecord, max_length: int) -> UnpairedExample | None:
    """Prompt and completion with the chat template and loss mask, truncated to max_length; None when the prompt
    alone fills max_length (the caller counts those as dropped)."""
    ids, mask = tokenize_sample(tokenizer, unpaired_sample(record))
    cut = max(0, len(ids) - max_length)
    ids, mask = ids[:max_length], mask[:max_length]
    if not any(mask[1:]):  # position 0 predicts nothing, so a target needs a trained token after it
        return None
    return UnpairedExample(
        Example(ids, shift_targets(ids, mask), truncated=cut), record.label, record.weight, prompt_len=mask.index(True)
    )


def mismatched(prompt_of: UnpairedExample, completion_of: UnpairedExample, max_length: int) -> Example:
    """`prompt_of`'s prompt tokens followed by `completion_of`'s completion tokens (TRL splices token ids the same
    way), its completion the only target; truncated to max_length."""
    a, b = prompt_of.example, completion_of.example
    start = completion_of.prompt_len
    ids = a.input_ids[: prompt_of.prompt_len] + b.input_ids[start:]
    # the completion's trained positions: input t is trained when the target of t - 1 is not IGNORE
    mask = [False] * prompt_of.prompt_len + [b.targets[t - 1] != IGNORE for t in range(start, len(b.input_ids))]
    ids, mask = ids[:max_length], mask[:max_length]
    return Example(ids, shift_targets(ids, mask))


def kl_examples(units: list[UnpairedExample], max_length: int) -> list[Example]:
    """One mismatched sequence per unit: unit i's prompt with unit i-1's completion (the last's for i = 0), TRL's
    rotation, so the mismatched completions are the batch's own completions, each paired with another prompt."""
    return [mismatched(u, units[i - 1], max_length) for i, u in enumerate(units)]
