"""Structure and length: roles in order, a final assistant turn, no empty turns, tokens vs max_length.

Lengths are measured the way training encodes a record (`templates.tokenize_sample`: the model's
chat template, the end-of-turn token), so "truncated" means exactly what the training run would cut.
A preference pair's length is its longer side (prompt + chosen or prompt + rejected).
"""

from __future__ import annotations

from array import array

from alignline.data.formats import Conversation, Message
from alignline.data.quality.items import Item
from alignline.data.templates import render_prompt, settle_reasoning, tokenize_sample

PROBLEMS = (
    "empty_turn",
    "system_not_first",
    "first_not_user",
    "roles_not_alternating",
    "no_final_assistant",
    "empty_text",
    "chosen_not_assistant",
    "rejected_not_assistant",
)


def conversation_problems(messages: list[Message]) -> list[str]:
    out = []
    if any(not m.content.strip() and not m.tool_calls for m in messages):  # a tool-call turn needs no content
        out.append("empty_turn")
    if any(m.role in ("system", "developer") for m in messages[1:]):
        out.append("system_not_first")
    turns = [m.role for m in messages if m.role not in ("system", "developer")]
    if turns and turns[0] != "user":
        out.append("first_not_user")
    # user and assistant alternate; tool results may follow an assistant (tool call) turn, then the assistant again.
    for prev, cur in zip(turns, turns[1:]):
        if (
            (prev == cur and cur != "tool")
            or (cur == "tool" and prev not in ("assistant", "tool"))
            or (prev == "tool" and cur == "user")
        ):
            out.append("roles_not_alternating")
            break
    if not turns or turns[-1] != "assistant":
        out.append("no_final_assistant")
    return out


def item_problems(item: Item) -> list[str]:
    if item.kind == "text":
        return [] if item.text.strip() else ["empty_text"]
    if item.kind == "prompt_completion":
        return [] if item.prompt.strip() and item.response.strip() else ["empty_turn"]
    if item.kind == "prompt":  # an online method's prompt: the policy writes the answer
        return [] if item.prompt.strip() else ["empty_turn"]
    if item.kind == "preference":
        prompt, chosen, rejected = item.prompt_messages, item.chosen or [], item.rejected or []
        out = []
        if not chosen or any(m.role != "assistant" for m in chosen):
            out.append("chosen_not_assistant")
        if not rejected or any(m.role != "assistant" for m in rejected):
            out.append("rejected_not_assistant")
        if not prompt or any(not m.content.strip() for m in prompt + chosen + rejected):
            out.append("empty_turn")
        return out
    return conversation_problems(item.messages)


class FormatCheck:
    def __init__(self, tokenizer=None, max_length: int | None = None, keep: int = 200):
        self.tokenizer, self.max_length, self.keep = tokenizer, max_length, keep
        self.counts = {p: 0 for p in PROBLEMS}
        self.invalid = 0
        self.ids: list[dict] = []
        self.lengths = array("I")
        self.chars = array("I")
        self.truncated = 0
        self.truncatable = 0
        self.truncated_ids: list[str] = []
        self.kinds: dict[str, int] = {}
        self.total = 0

    def _tokens(self, item: Item) -> int:
        # a length only: reasoning the template cannot render is refused or dropped by training (data.reasoning)
        chat = item.kind == "preference" and item.sample is None
        settle_reasoning(
            self.tokenizer, [Conversation(item.messages + (item.rejected or []))] if chat else [item.sample], "drop"
        )
        if item.kind == "preference" and item.sample is not None:  # raw text pairs: no chat template
            return max(len(tokenize_sample(self.tokenizer, x)[0]) for x in (item.sample, item.rejected_sample))
        if item.kind == "preference":
            prompt = item.prompt_messages
            sides = [prompt + (item.chosen or []), prompt + (item.rejected or [])]
            return max(
                len(tokenize_sample(self.tokenizer, Conversation(s, item.rid))[0])
                for s in sides
                if any(m.role == "assistant" for m in s)
            )
        if item.kind == "prompt":
            prompt = [{"role": m.role, "content": m.content} for m in item.messages]
            return len(self.tokenizer(render_prompt(self.tokenizer, prompt), add_special_tokens=False).input_ids)
        return len(tokenize_sample(self.tokenizer, item.sample)[0])

    def add(self, item: Item) -> None:
        self.total += 1
        self.kinds[item.kind] = self.kinds.get(item.kind, 0) + 1
        problems = item_problems(item)
        if problems:
            self.invalid += 1
            for p in problems:
                self.counts[p] += 1
            if len(self.ids) < self.keep:
                self.ids.append({"id": item.rid, "problems": problems})
        self.chars.append(min(len(item.text), 2**32 - 1))
        if self.tokenizer is not None:
            n = self._tokens(item)
            self.lengths.append(n)
            if self.max_length is not None and item.kind != "text":  # plain text is split into windows, not cut
                self.truncatable += 1
                if n > self.max_length:
                    self.truncated += 1
                    if len(self.truncated_ids) < self.keep:
                        self.truncated_ids.append(item.rid)

    def result(self) -> dict:
        lengths = sorted(self.lengths) if self.lengths else sorted(self.chars)
        unit = "tokens" if self.lengths else "characters"

        def pct(q: float):
            return lengths[min(len(lengths) - 1, int(q * len(lengths)))] if lengths else None

        return {
            "records": self.total,
            "kinds": self.kinds,
            "invalid": self.invalid,
            "invalid_share": self.invalid / max(1, self.total),
            "problems": self.counts,
            "invalid_ids": self.ids,
            "length_unit": unit,
            "lengths": {
                "min": lengths[0] if lengths else None,
                "p50": pct(0.5),
                "p90": pct(0.9),
                "p99": pct(0.99),
                "max": lengths[-1] if lengths else None,
                "mean": sum(lengths) / len(lengths) if lengths else None,
            },
            "max_length": self.max_length,
            "truncated": self.truncated if self.lengths and self.max_length else None,
            "truncated_share": self.truncated / max(1, self.truncatable)
            if self.lengths and self.max_length and self.truncatable
            else None,
            "truncated_ids": self.truncated_ids,
            "histogram": histogram(lengths),
        }


def histogram(sorted_values, bins: int = 20) -> dict:
    if not sorted_values:
        return {"edges": [], "counts": []}
    lo, hi = sorted_values[0], sorted_values[-1]
    width = max(1, -(-(hi - lo + 1) // bins))
    edges = [lo + i * width for i in range(bins + 1)]
    counts = [0] * bins
    for v in sorted_values:
        counts[min(bins - 1, (v - lo) // width)] += 1
    while counts and counts[-1] == 0:
        counts.pop()
        edges.pop()
    return {"edges": edges, "counts": counts}
