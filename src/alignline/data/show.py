"""`alignline data show`: one record as the model sees it, with the tokens that are trained marked.

The record goes through exactly what training does (the reader, the format, the chat template, the
tokenizer, the loss mask), like Axolotl's `preprocess --debug`. Trained tokens are green and underlined
on a terminal and wrapped in `[[...]]` otherwise (or with NO_COLOR set); `--json` writes one object a
line per token, `{"id", "text", "trained"}`, plus `"side"` (chosen / rejected) and `"pair"` for
preference records. Nothing is truncated: the whole record is shown, whatever max_length is.

The method decides how the record is read, with the very reader that method trains with: `sft` (the default for
SFT formats), `dpo` / `rm` (both sides of each pair; the default for preference records), `kto` (`data/unpaired.py`:
the completion, which KTO trains for `label: true` and against for `label: false`; the default where a record has a
feedback `label`), `grpo` / `ppo` (the prompt as the rollout engine renders it, with the generation prompt; nothing
is trained there, the policy's own completions are; the default for a prompt with no answer).

The caller loads the tokenizer: the command itself (`run_show`) is in `cli/data.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from alignline.data.formats import format_of, is_unpaired_feedback, refuse_unpaired, to_sample
from alignline.data.preference import pair_sample, to_pairs
from alignline.data.prompts import to_prompt_unit  # the online methods' one reader (GRPO, PPO)
from alignline.data.quality.items import is_prompt_only
from alignline.data.sources import read_records
from alignline.data.templates import render_prompt, tokenize_sample
from alignline.data.unpaired import to_unpaired, unpaired_sample
from alignline.errors import UserError

METHODS = ("sft", "dpo", "rm", "kto", "grpo", "ppo")
ONLINE_METHODS = ("grpo", "ppo")
PREFERENCE_FIELDS = (
    "chosen",
    "rejected",
    "ranking",
    "preferred_output",
    "non_preferred_output",
    "chosen_messages",
    "rejected_messages",
)
ANSI = ("\x1b[32;4m", "\x1b[0m")
BRACKETS = ("[[", "]]")


@dataclass(slots=True)
class View:
    """One tokenized sequence of a record: the SFT sample, or one side of one preference pair."""

    ids: list[int]
    mask: list[bool]
    side: str | None = None
    pair: int | None = None


def segments(tokenizer, ids: list[int], mask: list[bool]) -> list[tuple[bool, str]]:
    """Runs of trained / untrained tokens, each run decoded together (so multi-byte text stays whole)."""
    runs: list[tuple[bool, str]] = []
    start = 0
    for t in range(1, len(ids) + 1):
        if t == len(ids) or mask[t] != mask[start]:
            runs.append((mask[start], tokenizer.decode(ids[start:t])))
            start = t
    return runs


def trained_text(tokenizer, ids: list[int], mask: list[bool]) -> str:
    """The trained tokens alone, decoded: what the loss teaches."""
    return tokenizer.decode([i for i, m in zip(ids, mask) if m])


def infer_method(record: dict) -> str:
    if any(k in record for k in PREFERENCE_FIELDS):
        return "dpo"
    if is_unpaired_feedback(record):
        return "kto"
    return "grpo" if is_prompt_only(record) else "sft"


def record_views(tokenizer, record: dict, path: str, location: str, method: str) -> tuple[list[View], str]:
    """The record's sequences as training builds them, and a short description of how it was read."""
    if method in ("dpo", "rm"):
        pairs = to_pairs(record, path, location)
        views = []
        for k, pair in enumerate(pairs, start=1):
            for side, answer in (("chosen", pair.chosen), ("rejected", pair.rejected)):
                ids, mask = tokenize_sample(tokenizer, pair_sample(pair.prompt, answer, pair.tools, pair.origin))
                views.append(View(ids, mask, side, k))
        kind = "raw text" if isinstance(pairs[0].prompt, str) else "chat"
        return views, f"{method}, {len(pairs)} preference pair{'s' if len(pairs) > 1 else ''} ({kind})"
    if method == "kto":
        unit = to_unpaired(record, path, location)
        sample = unpaired_sample(unit)
        ids, mask = tokenize_sample(tokenizer, sample)
        verdict = "desirable" if unit.label else "undesirable"
        return [View(ids, mask)], f"kto, {format_of(sample)}, label {json.dumps(record.get('label'))} ({verdict})"
    if method in ONLINE_METHODS:
        return [prompt_view(tokenizer, record, path, location)], (
            f"{method}, the prompt as rendered for generation; no trained tokens (the policy's own completions are "
            "trained)"
        )
    refuse_unpaired(record, path, location, method)
    sample = to_sample(record, path, location)
    ids, mask = tokenize_sample(tokenizer, sample)
    return [View(ids, mask)], f"{method}, {format_of(sample)}"


def prompt_view(tokenizer, record: dict, path: str, location: str) -> View:
    """An online method's prompt, read by its loader and rendered as the rollout engine renders it."""
    unit = to_prompt_unit(record, path, location)
    ids = tokenizer(render_prompt(tokenizer, unit.prompt), add_special_tokens=False)["input_ids"]
    return View(list(ids), [False] * len(ids))


def pick_record(path: str, number: int, split: str = "train", columns: dict[str, str] | None = None):
    """The `number`-th record (1-based, as the reader yields them) and its location."""
    if number < 1:
        raise UserError(f"--record: must be >= 1, got {number}")
    count = 0
    for location, record in read_records(path, split, columns):
        count += 1
        if count == number:
            return location, record
    raise UserError(f"{path}: has {count} record{'s' if count != 1 else ''}; --record {number} is out of range")


def render_text(tokenizer, views: list[View], marks: tuple[str, str]) -> str:
    out = []
    for v in views:
        if v.side is not None:
            out.append(f"## pair {v.pair}, {v.side}")
        out.append(
            "".join(
                f"{marks[0]}{text}{marks[1]}" if trained else text
                for trained, text in segments(tokenizer, v.ids, v.mask)
            )
        )
        out.append(f"## {len(v.ids)} tokens, {sum(v.mask)} trained")
    return "\n".join(out)


def token_rows(tokenizer, views: list[View]) -> list[dict]:
    rows = []
    for v in views:
        for tok, trained in zip(v.ids, v.mask):
            row = {"id": tok, "text": tokenizer.decode([tok]), "trained": trained}
            if v.side is not None:
                row.update(side=v.side, pair=v.pair)
            rows.append(row)
    return rows


def show(
    path: str,
    tokenizer,
    number: int = 1,
    method: str | None = None,
    as_json: bool = False,
    split: str = "train",
    columns: dict[str, str] | None = None,
    color: bool = False,
) -> str:
    """The text `alignline data show` prints."""
    if method is not None and method not in METHODS:
        raise UserError(f"--method: {method!r} is not allowed; choose one of {', '.join(METHODS)}")
    location, record = pick_record(path, number, split, columns)
    views, how = record_views(tokenizer, record, str(path), location, method or infer_method(record))
    if as_json:
        return "\n".join(json.dumps(r, ensure_ascii=False) for r in token_rows(tokenizer, views))
    marks = ANSI if color else BRACKETS
    legend = "green underline" if color else "[[...]]"
    return f"# {path}, {location}: {how}; trained tokens in {legend}\n" + render_text(tokenizer, views, marks)


def parse_column_args(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise UserError(f"--column: expected OUR=THEIR (e.g. prompt=question), got {item!r}")
        out[ours.strip()] = theirs.strip()
    return out
