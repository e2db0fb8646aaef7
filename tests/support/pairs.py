"""Preference pairs as the tests read them: roles of a message list, and each side's full and trained text."""

from __future__ import annotations

from alignline.data.preference import pair_sample
from alignline.data.show import trained_text
from alignline.data.templates import tokenize_sample


def message_roles(messages) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in messages]


def pair_sides(tokenizer, pair) -> list[str]:
    """(full chosen text, chosen trained text, full rejected text, rejected trained text)."""
    out = []
    for answer in (pair.chosen, pair.rejected):
        ids, mask = tokenize_sample(tokenizer, pair_sample(pair.prompt, answer, pair.tools))
        out += [tokenizer.decode(ids), trained_text(tokenizer, ids, mask)]
    return out
