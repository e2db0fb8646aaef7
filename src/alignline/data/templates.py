"""Samples to token ids and targets, with the model's own chat template and exact loss masks.

How the masks are found, for any template: the conversation is rendered once in full; for each
assistant turn to train, the template is rendered up to the turn's generation prompt and up to the
end of the turn, and the characters between are the turn. Tokens are labelled by their character
offsets in the full rendering, so tokenization across turn boundaries matches what the model sees at
inference. Each trained turn ends with the end-of-turn token, trained too (it is added where a
template leaves it out): a fine-tuned model that never learned to stop is the most common SFT bug.
Whitespace a template writes after the end-of-turn token is context, not target.

Tool use goes through the template's own tool support where it has some (`apply_chat_template(messages,
tools=...)` with `tool_calls` on assistant messages, arguments as objects, as transformers documents);
the tool-call text is part of the assistant turn and trained. Where the template has none (it never
mentions `tool_calls` / `tools`), a documented fallback text keeps the calls instead of dropping them:
Hermes / Qwen style, `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>` appended to the
assistant content, tool results as `<tool_response>\n...\n</tool_response>` in a `tool` turn, and the
schemas in a system turn (`# Tools` then one JSON schema a line inside `<tools></tools>`). The
`developer` role becomes `system` where the template never mentions `developer`.

Turns a record itself marks trained (axolotl's `train: true` on a user turn) are found the same way, by
rendering up to the turn, and train their own text and the end-of-turn token after it. Masked characters
inside a trained turn (axolotl's `train_detail`, per-part flags) are found by locating the turn's content
(and reasoning) in its rendering; a token that touches a masked character is masked.

Reasoning goes to the template under the key it renders (`reasoning_content`, Qwen3; `thinking`, Harmony),
found once per template by rendering a sentinel; where it renders none, `settle_reasoning` refuses the data
or, with `data.reasoning: drop`, removes it and reports the count (never a silent drop).

Targets are pre-shifted: `targets[t]` is the token position t must predict, or -100. Shifting per
example (instead of in the loss) keeps packed examples from predicting each other's first token.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from alignline.data.formats import Conversation, Message, PlainText, Sample
from alignline.errors import DataError

IGNORE = -100

# A plain ChatML template for tokenizers that ship none (base models).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(slots=True)
class Example:
    input_ids: list[int]
    targets: list[int]
    truncated: int = 0
    """Tokens cut off at max_length (0 if none)."""

    @property
    def num_targets(self) -> int:
        return sum(t != IGNORE for t in self.targets)


def end_of_turn_token(tokenizer) -> str:
    return tokenizer.eos_token


def template_source(tokenizer) -> str:
    """The Jinja text that renders tool conversations (a tokenizer may ship named templates)."""
    t = tokenizer.chat_template
    if isinstance(t, dict):
        return t.get("tool_use") or t.get("default") or next(iter(t.values()), "")
    return t or ""


@dataclass(frozen=True, slots=True)
class TemplateTraits:
    tool_calls: bool
    """The template renders assistant `tool_calls` itself."""
    tools: bool
    """The template renders the `tools` schemas itself."""
    developer: bool
    """The template knows the `developer` role."""
    reasoning_key: str | None = None
    """The message key under which the template renders an assistant turn's reasoning, None if it renders none."""


def template_traits(tokenizer) -> TemplateTraits:
    src = template_source(tokenizer)
    return TemplateTraits(
        "tool_calls" in src, re.search(r"\btools\b", src) is not None, "developer" in src, reasoning_key(tokenizer)
    )


EMPTY_THINK = re.compile(r"<think>\s*</think>\s*")
REASONING_KEYS = ("reasoning_content", "thinking")
"""Qwen3's (and DeepSeek-R1 distills') name, then Harmony's (gpt-oss)."""
REASONING_SENTINEL = "alignline-reasoning-probe-5e1f"
_reasoning_keys: dict[str, str | None] = {}


def reasoning_key(tokenizer) -> str | None:
    """Which key the template renders reasoning from, found by rendering a sentinel (a template may name the
    key and still drop it, e.g. only on some turns), once per template."""
    src = template_source(tokenizer)
    if src not in _reasoning_keys:
        _reasoning_keys[src] = None
        for key in REASONING_KEYS:
            if key not in src:
                continue
            probe = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", key: REASONING_SENTINEL}]
            try:
                text = tokenizer.apply_chat_template(probe, tokenize=False)
            except Exception:  # noqa: BLE001 - a template that refuses the probe renders no reasoning we can rely on
                continue
            if REASONING_SENTINEL in text:
                _reasoning_keys[src] = key
                break
    return _reasoning_keys[src]


def _sample_error(sample: Sample, message: str, fld: str | None) -> DataError:
    return DataError(sample.origin.split(", ")[0], message, record=sample.origin.partition(", ")[2] or None, field=fld)


def reasoning_refusal(sample: Sample, field: str | None, count: int = 1) -> DataError:
    many = f"{count} assistant turns carry reasoning" if count > 1 else "this turn carries reasoning"
    return _sample_error(
        sample,
        f"{many} and the chat template does not render it (it reads neither "
        "reasoning_content nor thinking): set data.reasoning: drop to train without it, or use a "
        "template that renders it (Qwen3's)",
        field,
    )


def settle_reasoning(tokenizer, samples: list[Sample], mode: str = "keep") -> dict[str, int]:
    """Reasoning the chat template cannot render: refused (`data.reasoning: keep`, the default), or removed
    with `data.reasoning: drop`; returns what was dropped, `{field: count}`, for the caller's warning line."""
    seen = {
        id(m): (s, m)
        for s in samples
        if isinstance(s, Conversation)
        for m in s.messages  # upsampled: once
        if m.reasoning is not None
    }
    carrying = list(seen.values())
    if not carrying:
        return {}
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHATML_TEMPLATE
    if reasoning_key(tokenizer) is not None:
        return {}
    if mode != "drop":
        raise reasoning_refusal(carrying[0][0], carrying[0][1].reasoning_field, len(carrying))
    dropped: dict[str, int] = {}
    for _, m in carrying:
        name = (m.reasoning_field or "reasoning").rsplit(".", 1)[-1]
        dropped[name] = dropped.get(name, 0) + 1
        m.reasoning, m.reasoning_train = None, None
    return dropped


def fallback_tool_call(call: dict) -> str:
    fn = call["function"]
    return (
        "<tool_call>\n"
        + json.dumps({"name": fn["name"], "arguments": fn["arguments"]}, ensure_ascii=False)
        + "\n</tool_call>"
    )


def fallback_tools_text(tools: list[dict]) -> str:
    lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return (
        f'# Tools\n\nYou may call these functions, each call as <tool_call>{{"name": ..., "arguments": ...}}'
        f"</tool_call>:\n<tools>\n{lines}\n</tools>"
    )


def template_messages(tokenizer, sample: Conversation) -> tuple[list[dict], list[dict] | None]:
    """The conversation as the template expects it, and the `tools` to pass (None: none, or folded in)."""
    traits = template_traits(tokenizer)
    out = []
    for m in sample.messages:
        role = "system" if m.role == "developer" and not traits.developer else m.role
        d = {"role": role, "content": m.content}
        if m.tool_calls:
            if traits.tool_calls:
                d["tool_calls"] = m.tool_calls
            else:
                calls = "\n".join(fallback_tool_call(c) for c in m.tool_calls)
                d["content"] = f"{m.content}\n{calls}" if m.content else calls
        if m.role == "tool":
            if m.tool_call_id is not None:
                d["tool_call_id"] = m.tool_call_id
            if not traits.tool_calls:
                d["content"] = f"<tool_response>\n{m.content}\n</tool_response>"
        if m.name is not None:
            d["name"] = m.name
        if m.reasoning is not None:
            if traits.reasoning_key is None:
                raise reasoning_refusal(sample, m.reasoning_field)
            d[traits.reasoning_key] = m.reasoning
        out.append(d)
    tools = sample.tools
    if tools and not traits.tools:
        text = fallback_tools_text(tools)
        if out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": f"{out[0]['content']}\n\n{text}" if out[0]["content"] else text}
        else:
            out.insert(0, {"role": "system", "content": text})
        tools = None
    return out, tools


def _render(
    tokenizer,
    messages: list[dict],
    generation_prompt: bool,
    tools: list[dict] | None = None,
    sample: Sample | None = None,
) -> str:
    try:
        return tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=generation_prompt
        )
    except Exception as e:  # a template's own raise_exception (roles it refuses) is the user's data problem
        if sample is None or type(e).__name__ not in (
            "TemplateError",
            "TemplateSyntaxError",
            "UndefinedError",
            "TypeError",
            "ValueError",
        ):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(
            sample.origin.split(", ")[0],
            f"the chat template refused this conversation ({first})",
            record=sample.origin.partition(", ")[2] or None,
            field="messages",
        ) from None


Span = tuple[int, int, bool]
"""Characters `[start, end)` of a trained turn in the full rendering, and whether they end with the
end-of-turn token (when not, one is inserted, trained)."""


def _locate(full: str, piece: str, lo: int, hi: int, last: bool) -> tuple[int, int, int] | None:
    """Where `piece` (a turn's content or reasoning) sits in `full[lo:hi]`: `(base, start, end)`, base the
    position of the piece's character 0 and `[start, end)` what the template wrote of it (templates may strip
    the piece's outer whitespace, as Qwen3's does)."""
    find = full.rfind if last else full.find
    pos = find(piece, lo, hi)
    if pos >= 0:
        return pos, pos, pos + len(piece)
    core = piece.strip()
    pos = find(core, lo, hi) if core else -1
    if pos < 0:
        return None
    return pos - (len(piece) - len(piece.lstrip())), pos, pos + len(core)


def _holes(ranges: list[tuple[int, int]], length: int, where: tuple[int, int, int]) -> list[tuple[int, int]]:
    """The masked characters of a piece (those no trained range covers), as positions in the full rendering."""
    base, start, end = where
    out, at = [], 0
    for b, e in sorted(ranges) + [(length, length)]:
        if b > at:
            out.append((max(base + at, start), min(base + b, end)))
        at = max(at, e)
    return [(b, e) for b, e in out if b < e]


def _turn_holes(sample: Sample, m: Message, full: str, lo: int, hi: int, fld: str) -> list[tuple[int, int]]:
    holes = []
    for piece, ranges, last, name in (
        (m.content, m.content_train, True, "content"),
        (m.reasoning, m.reasoning_train, False, "reasoning"),
    ):
        if ranges is None or not piece:
            continue
        where = _locate(full, piece, lo, hi, last)
        if where is None:
            raise _sample_error(
                sample,
                f"the chat template rewrites this turn's {name}, so its train_detail / "
                "per-part training flags cannot be placed",
                fld,
            )
        holes += _holes(ranges, len(piece), where)
    return holes


def _check_prefix(sample: Sample, full: str, before: str, upto: str) -> None:
    if not (full.startswith(upto) and upto.startswith(before)):
        hint = (
            "; it renders reasoning only in some turns (Qwen3 keeps it after the last user turn only): put each "
            "assistant turn with reasoning in its own record"
            if isinstance(sample, Conversation) and any(m.reasoning is not None for m in sample.messages)
            else ""
        )
        raise _sample_error(
            sample,
            "the chat template renders this conversation differently turn by turn, so its "
            f"loss mask cannot be found{hint}",
            "messages",
        )


def _trained_spans(tokenizer, sample: Conversation, full: str) -> tuple[list[Span], list[tuple[int, int]]]:
    """Character spans of the turns to train (assistant turns unless masked, and turns the record itself
    marks trained), and the masked holes inside them (train_detail, per-part flags)."""
    messages, tools = template_messages(tokenizer, sample)
    shift = len(messages) - len(sample.messages)  # 1 where the fallback tools turn was put first
    eos = end_of_turn_token(tokenizer)
    spans, holes = [], []
    for i, m in enumerate(sample.messages):
        assistant = m.role == "assistant"
        if not m.train or not (assistant or (m.train_input and m.content)):  # train False: masked, or context
            continue
        fld = f"messages[{i}]"
        i += shift
        before = _render(tokenizer, messages[:i], assistant, tools, sample) if i else ""
        upto = _render(tokenizer, messages[: i + 1], False, tools, sample)
        _check_prefix(sample, full, before, upto)
        start, end = len(before), len(upto)
        if not assistant:  # the turn's own text, as axolotl trains it, and the end-of-turn token after it
            where = _locate(full, m.content, start, end, True)
            if where is None:
                raise _sample_error(
                    sample,
                    "the chat template rewrites this turn's content, so the turn marked `train` cannot be found in it",
                    fld,
                )
            cut = upto.find(eos, where[2], end) if eos else -1
            start, end = where[1], (cut + len(eos) if cut >= 0 else where[2])
            spans.append((start, end, True))
        else:
            cut = upto.rfind(eos, start, end) if eos else -1
            spans.append((start, cut + len(eos), True) if cut >= 0 else (start, len(upto[:end].rstrip()), False))
        holes += _turn_holes(sample, m, full, start, end, fld)
        if assistant and m.reasoning is None and m.reasoning_field is not None:  # dropped (data.reasoning: drop)
            empty = EMPTY_THINK.search(full, start, end)
            if empty:  # a template that writes the block anyway must not teach an empty thought
                holes.append(empty.span())
    return spans, holes


def _label(
    ids: list[int], offsets: list[tuple[int, int]], spans: list[Span], eos_id: int, holes: list[tuple[int, int]] = ()
):
    """Token-level mask from character spans; inserts the EOS token where a span lacks it. A token touching a
    masked hole is not trained (a token straddling trained and masked text is masked, as axolotl does)."""
    out_ids, mask = [], []
    pending = sorted(spans)
    span_i = 0
    for tok, (s, e) in zip(ids, offsets):
        while span_i < len(pending) and s >= pending[span_i][1]:
            if not pending[span_i][2]:  # the template wrote no end-of-turn token: add one, trained
                out_ids.append(eos_id)
                mask.append(True)
            span_i += 1
        inside = span_i < len(pending) and pending[span_i][0] <= s < pending[span_i][1]
        if inside and holes:
            inside = not any(s < he and max(e, s + 1) > hs for hs, he in holes)
        out_ids.append(tok)
        mask.append(inside)
    for span in pending[span_i:]:
        if not span[2]:
            out_ids.append(eos_id)
            mask.append(True)
    return out_ids, mask


def shift_targets(ids: list[int], mask: list[bool]) -> list[int]:
    """targets[t] = ids[t+1] where position t+1 is trained, else IGNORE; the last position predicts nothing."""
    return [ids[t + 1] if mask[t + 1] else IGNORE for t in range(len(ids) - 1)] + [IGNORE]


def tokenize_sample(tokenizer, sample: Sample, loss_on: str = "assistant") -> tuple[list[int], list[bool]]:
    """Token ids and per-token loss mask (True: trained) of one sample, untruncated."""
    eos_id = tokenizer.eos_token_id
    if isinstance(sample, PlainText):
        # Tokenized apart, as TRL does: no token straddles the boundary, and every completion of
        # the same prompt (chosen, rejected) starts from exactly the same prompt tokens.
        prompt = tokenizer(sample.prompt, add_special_tokens=False)["input_ids"] if sample.prompt else []
        completion = tokenizer(sample.completion, add_special_tokens=False)["input_ids"] + [eos_id]
        return list(prompt) + list(completion), [loss_on == "all"] * len(prompt) + [True] * len(completion)
    if tokenizer.chat_template is None:  # kept on the tokenizer: the span renderings below need it too
        tokenizer.chat_template = CHATML_TEMPLATE
    full = training_text(tokenizer, sample)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    if loss_on == "all":
        return list(enc["input_ids"]), [True] * len(enc["input_ids"])
    spans, holes = _trained_spans(tokenizer, sample, full)
    return _label(list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]], spans, eos_id, holes)


def training_text(tokenizer, sample: Sample) -> str:
    """The text training tokenizes for `sample` (`tokenize_sample`): the conversation through the chat
    template (ChatML where the tokenizer ships none), or prompt then completion for plain text. Probes of
    what a model learned from a record (canaries in context) render the record with this."""
    if isinstance(sample, PlainText):
        return sample.prompt + sample.completion
    own = tokenizer.chat_template
    if own is None:  # as training renders it, without changing the tokenizer the caller generates with
        tokenizer.chat_template = CHATML_TEMPLATE
    try:
        messages, tools = template_messages(tokenizer, sample)
        return _render(tokenizer, messages, False, tools, sample)
    finally:
        tokenizer.chat_template = own


def build_examples(
    tokenizer, sample: Sample, max_length: int, loss_on: str = "assistant", split_long: bool = False
) -> list[Example]:
    """One sample to training examples. Long samples are truncated (counted), or for continued
    pretraining (`split_long`) cut into consecutive max_length windows so no text is lost."""
    ids, mask = tokenize_sample(tokenizer, sample, loss_on)
    if len(ids) <= max_length:
        return [Example(ids, shift_targets(ids, mask))]
    if not split_long:
        return [
            Example(
                ids[:max_length], shift_targets(ids[:max_length], mask[:max_length]), truncated=len(ids) - max_length
            )
        ]
    examples = []
    for start in range(0, len(ids), max_length):
        chunk_ids, chunk_mask = ids[start : start + max_length], mask[start : start + max_length]
        if len(chunk_ids) >= 2:
            examples.append(Example(chunk_ids, shift_targets(chunk_ids, chunk_mask)))
    return examples


# A prompt as generation renders it: here, below the engines, so the data gates and `data show` render a
# prompt exactly as `rollout/` does (rollout/types.py imports these three).


class TokenIds(list):
    """A prompt already tokenized (`alignline serve` encodes each request itself, so that text from a user
    never becomes control tokens); engines feed these ids to the model as they are."""


Prompt = str | list[dict] | TokenIds


def render_prompt(tokenizer, prompt: Prompt) -> str:
    """A chat prompt through the model's template (with the generation prompt); a string as it is."""
    if isinstance(prompt, TokenIds):
        return tokenizer.decode(prompt)
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return "\n".join(m["content"] for m in prompt) + "\n"
