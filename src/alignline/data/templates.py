"""Samples to token ids and targets, with the model's own chat template and exact loss masks.

How the masks are found, for any template: the conversation is rendered once in full; for each
assistant turn to train, the template is rendered up to the turn's generation prompt and up to the
end of the turn, and the characters between are the turn. Tokens are labelled by their character
offsets in the full rendering, so tokenization across turn boundaries matches what the model sees at
inference. Each trained turn ends with the end-of-turn token, trained too (it is added where a
template leaves it out): a fine-tuned model that never learned to stop is the most common SFT bug.
Whitespace a template writes after the end-of-turn token is context, not target.

Targets are pre-shifted: `targets[t]` is the token position t must predict, or -100. Shifting per
example (instead of in the loss) keeps packed examples from predicting each other's first token.
"""

from __future__ import annotations

from dataclasses import dataclass

from alignline.data.formats import Conversation, PlainText, Sample
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


def _render(tokenizer, messages: list[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _assistant_spans(tokenizer, sample: Conversation, full: str, loss_on: str) -> list[tuple[int, int, bool]]:
    """Character spans `(start, end, has_eos)` of the assistant turns to train."""
    messages = [{"role": m.role, "content": m.content} for m in sample.messages]
    eos = end_of_turn_token(tokenizer)
    spans = []
    for i, m in enumerate(sample.messages):
        if m.role != "assistant" or (loss_on == "assistant" and not m.train):
            continue
        before = _render(tokenizer, messages[:i], True) if i else ""
        upto = _render(tokenizer, messages[: i + 1], False)
        if not (full.startswith(upto) and upto.startswith(before)):
            raise DataError(sample.origin.split(", ")[0], "the chat template renders this conversation "
                            "differently turn by turn, so its loss mask cannot be found",
                            record=sample.origin.partition(", ")[2] or None, field="messages")
        start, end = len(before), len(upto)
        cut = upto.rfind(eos, start, end) if eos else -1
        if cut >= 0:
            spans.append((start, cut + len(eos), True))
        else:
            spans.append((start, len(upto[:end].rstrip()), False))
    return spans


def _label(ids: list[int], offsets: list[tuple[int, int]], spans: list[tuple[int, int, bool]], eos_id: int):
    """Token-level mask from character spans; inserts the EOS token where a span lacks it."""
    out_ids, mask = [], []
    pending = sorted(spans)
    span_i = 0
    for tok, (s, _e) in zip(ids, offsets):
        while span_i < len(pending) and s >= pending[span_i][1]:
            if not pending[span_i][2]:  # the template wrote no end-of-turn token: add one, trained
                out_ids.append(eos_id)
                mask.append(True)
            span_i += 1
        inside = span_i < len(pending) and pending[span_i][0] <= s < pending[span_i][1]
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
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHATML_TEMPLATE
    messages = [{"role": m.role, "content": m.content} for m in sample.messages]
    full = _render(tokenizer, messages, False)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    if loss_on == "all":
        return list(enc["input_ids"]), [True] * len(enc["input_ids"])
    spans = _assistant_spans(tokenizer, sample, full, loss_on)
    return _label(list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]], spans, eos_id)


def build_examples(tokenizer, sample: Sample, max_length: int, loss_on: str = "assistant",
                   split_long: bool = False) -> list[Example]:
    """One sample to training examples. Long samples are truncated (counted), or for continued
    pretraining (`split_long`) cut into consecutive max_length windows so no text is lost."""
    ids, mask = tokenize_sample(tokenizer, sample, loss_on)
    if len(ids) <= max_length:
        return [Example(ids, shift_targets(ids, mask))]
    if not split_long:
        return [Example(ids[:max_length], shift_targets(ids[:max_length], mask[:max_length]),
                        truncated=len(ids) - max_length)]
    examples = []
    for start in range(0, len(ids), max_length):
        chunk_ids, chunk_mask = ids[start:start + max_length], mask[start:start + max_length]
        if len(chunk_ids) >= 2:
            examples.append(Example(chunk_ids, shift_targets(chunk_ids, chunk_mask)))
    return examples
