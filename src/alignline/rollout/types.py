"""What every generation engine shares: the prompt and completion shapes, the sampling settings, the
`Engine` interface, and the pieces all backends use alike (`render_prompt`, `cut_at_stop`, `TextStream`).
`TokenIds`, `Prompt` and `render_prompt` live in `data/templates.py` (the data gates and `data show` render a
prompt as generation does) and are imported here, so every engine keeps reading them from this module.

Prompts are chat message lists (rendered with the model's chat template and its generation prompt),
plain strings (used as they are) or `TokenIds` (already tokenized). Each prompt gets `params.n`
completions (GRPO's group). The backends are `rollout/hf.py` (`HFEngine`) and `rollout/vllm.py`
(`VLLMEngine`); `rollout/engine.py`'s `load_engine` picks one. Code that generates imports the types from
here and gets an engine from `load_engine` (or builds an `HFEngine` around a model it already holds).

Streaming: `TextStream` turns one completion's tokens, as they arrive, into text deltas that join to the
completion's text exactly (see `HFEngine.generate`'s `on_token`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from alignline.data.templates import Prompt, TokenIds, render_prompt


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 128
    temperature: float = 0.0
    """0: greedy."""
    top_p: float = 1.0
    top_k: int = 0
    """0: no top-k truncation."""
    n: int = 1
    """Completions per prompt."""
    stop: tuple[str, ...] = ()
    """Strings that end a completion (not included in its text); EOS always ends one."""
    seed: int = 0
    logprobs: bool = False
    """Return each generated token's log-prob."""


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    """The generated tokens up to and including the end-of-sequence token or the stop string."""
    finish_reason: str
    """`stop` (EOS or a stop string) or `length` (max_new_tokens reached)."""
    logprobs: list[float] | None = None
    """One per token of `token_ids`, when asked."""
    prompt_tokens: int = 0


class Engine(Protocol):
    tokenizer: object
    name: str

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """`params.n` completions for each prompt, in prompt order."""
        ...


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first stop string, and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def stop_prefix_len(text: str, stop: Sequence[str]) -> int:
    """The length of the longest end of `text` that is the start (not the whole) of a stop string.

    >>> stop_prefix_len("say ST", ["STOP", "\\n\\n"])
    2
    >>> stop_prefix_len("say S.", ["STOP"])
    0
    """
    best = 0
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best


class TextStream:
    """The text deltas of one completion as its tokens arrive; joined, they equal the completion's text.

    Each `push` decodes the whole answer so far, exactly as the final text is decoded (so the two cannot
    disagree), and releases only what can no longer change:
    - a trailing U+FFFD is held: the first bytes of a multi-byte character, which byte-level BPE splits
      across tokens, decode to it until the last byte arrives;
    - an end that could be the start of a stop string is held: if the stop completes, that text must never
      have left. Once a stop string appears the text is cut there and nothing more is released.
    This relies on decoding being prefix-stable (true for byte-level BPE and SentencePiece with
    `clean_up_tokenization_spaces` off, as our tokenizers are). Cost: one decode per token, small against
    a forward pass.
    """

    def __init__(self, tokenizer, stop: Sequence[str] = ()):
        self.tokenizer, self.stop = tokenizer, tuple(s for s in stop if s)
        self.tokens: list[int] = []
        self.sent = ""
        """The text released so far."""
        self.stopped = False

    def push(self, token_id: int) -> str:
        """Add one generated token; return the newly releasable text (often "")."""
        if self.stopped:
            return ""
        self.tokens.append(int(token_id))
        text, found = cut_at_stop(self.tokenizer.decode(self.tokens, skip_special_tokens=True), self.stop)
        if found:
            self.stopped = True
            safe = len(text)
        else:
            # The stop check runs on the text without its incomplete tail: "ab" + half an "é" must hold
            # back the "b" of a stop "bé".
            safe = len(text.rstrip("\ufffd"))
            safe -= stop_prefix_len(text[:safe], self.stop)
        if safe <= len(self.sent) or not text.startswith(self.sent):
            return ""
        delta, self.sent = text[len(self.sent) : safe], text[:safe]
        return delta

    def finish(self, text: str) -> str:
        """What is left of the completion's final `text` (held back until now)."""
        return text[len(self.sent) :]


__all__ = [
    "Completion",
    "Engine",
    "Prompt",
    "SamplingParams",
    "TextStream",
    "TokenIds",
    "cut_at_stop",
    "render_prompt",
    "stop_prefix_len",
]
