"""Each request's prompt, tokenized in the request handler before it may join a batch.

- User text stays text: content holding a special token's text (`<|im_start|>system`) is tokenized with
  `split_special_tokens=True`, so it cannot open a turn or play the system. The template is rendered with
  a random placeholder per message, the template's own text tokenized as usual (its control tokens are
  meant) and each message's content as plain text. Content without such text is tokenized as one string,
  exactly as before (and as training did). Non-special added tokens (Qwen's `<think>`) are read as the
  tokenizer reads them: they are not control tokens.
- A prompt longer than the model's context is refused (400, OpenAI's `context_length_exceeded`), as is a
  `max_tokens` that does not fit after it; the default `max_tokens` is cut to what fits.
- Anything the template or the tokenizer refuses (a template that demands alternating roles) is a 400 for
  that request alone.

Engines without a tokenizer (scripted test engines) get the messages as before.
"""

from __future__ import annotations

import copy
import re
import uuid

from alignline.rollout.types import TokenIds, render_prompt
from alignline.serve.errors import RequestError


def context_length(engine) -> int | None:
    """The most tokens (prompt and answer) the engine's model takes; None when it cannot be told."""
    model = getattr(engine, "model", None)
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    try:  # vLLM
        return int(engine.llm.llm_engine.model_config.max_model_len)
    except Exception:  # noqa: BLE001 - not vLLM, or a vLLM without this attribute path: ask the tokenizer
        pass
    limit = getattr(getattr(engine, "tokenizer", None), "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10**8 else None  # huge: "no limit" sentinel


class PromptEncoder:
    """Chat messages -> token ids, with the context check. Owns a copy of the engine's tokenizer: the
    engine thread decodes with its own, and a Rust tokenizer used from two threads at once can fail."""

    def __init__(self, engine):
        tok = getattr(engine, "tokenizer", None)
        try:
            self.tokenizer = copy.deepcopy(tok)
        except Exception:  # noqa: BLE001 - a tokenizer that cannot be copied is shared (one encoding thread still)
            self.tokenizer = tok
        self.context = context_length(engine) if tok is not None else None
        self.control = self.control_texts() if tok is not None else []

    @property
    def active(self) -> bool:
        return self.tokenizer is not None

    def control_texts(self) -> list[str]:
        tok = self.tokenizer
        texts = set(getattr(tok, "all_special_tokens", []) or [])
        for added in (getattr(tok, "added_tokens_decoder", None) or {}).values():
            if getattr(added, "special", False):
                texts.add(str(added.content))
        return sorted(t for t in texts if t)

    def encode(self, messages: list[dict]) -> TokenIds:
        try:
            if any(c in m["content"] for m in messages for c in self.control):
                ids = self.encode_guarded(messages)
            else:
                ids = self.tokenizer(render_prompt(self.tokenizer, messages), add_special_tokens=False).input_ids
        except RequestError:
            raise
        except Exception as e:  # noqa: BLE001 - a template's raise_exception, a tokenizer that refuses the text
            raise RequestError(
                400,
                f"the messages cannot be rendered with this model's chat template: {type(e).__name__}: {e}",
                "messages",
            ) from None
        return TokenIds(ids)

    def encode_guarded(self, messages: list[dict]) -> list[int]:
        """The template's text with its control tokens, each content as text (see the module docstring)."""
        tok = self.tokenizer
        nonce = uuid.uuid4().hex
        marks = [f"@@{nonce}:{i}@@" for i in range(len(messages))]
        rendered = render_prompt(tok, [{**m, "content": mark} for m, mark in zip(messages, marks)])
        ids: list[int] = []
        for k, piece in enumerate(re.split(f"@@{nonce}:(\\d+)@@", rendered)):
            if k % 2:  # a placeholder's index: that message's content, as text
                text, split = messages[int(piece)]["content"], True
            else:
                text, split = piece, False
            if text:
                ids += tok(text, add_special_tokens=False, split_special_tokens=split).input_ids
        return ids

    def fit(self, prompt_ids: list[int], max_tokens: int, explicit: bool) -> int:
        """The answer's token budget: `max_tokens`, or (when the client did not set it) what fits; a prompt
        or an explicit budget past the context is refused as OpenAI does."""
        if self.context is None:
            return max_tokens
        n = len(prompt_ids)
        if n >= self.context:
            raise RequestError(
                400,
                f"This model's maximum context length is {self.context} tokens. However, your "
                f"messages resulted in {n} tokens. Please reduce the length of the messages.",
                "messages",
                "context_length_exceeded",
            )
        if n + max_tokens > self.context:
            if not explicit:
                return self.context - n
            raise RequestError(
                400,
                f"This model's maximum context length is {self.context} tokens. However, you "
                f"requested {n + max_tokens} tokens ({n} in the messages, {max_tokens} in the "
                f"completion). Please reduce the length of the messages or completion.",
                "messages",
                "context_length_exceeded",
            )
        return max_tokens
