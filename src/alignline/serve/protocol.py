"""The OpenAI chat-completions shapes as `alignline serve` speaks them: a parsed request (`ChatRequest`),
one decided answer (`Answer`), and the response bodies built from them (`completion_body`, with its
`usage` and top-level `alignline` `summary`).

The server (`app.py`) parses requests into these and answers with these; the stream (`streaming.py`)
sends the same `summary` and `usage` in its last chunks. Both import them from here, so neither needs
the other for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from alignline.rollout.types import SamplingParams, TokenIds


@dataclass
class ChatRequest:
    id: str
    model: str
    """The id as the client sent it."""
    engine_model: str
    """The adapter name the engine uses (`base`: the base alone)."""
    messages: list[dict]
    params: SamplingParams
    stream: bool = False
    include_usage: bool = False
    seeded: bool = False
    """A `seed` was given: sampled, it runs alone and draws from that seed."""
    created: int = field(default_factory=lambda: int(time.time()))
    sink: Callable[[int, str], None] | None = None
    """Streamed live: gets (choice index, text delta) from the engine worker as tokens are decoded."""
    explicit_max_tokens: bool = False
    """The client set `max_tokens`: refused, not shortened, when it does not fit the context."""
    prompt: TokenIds | None = None
    """The prompt's token ids, encoded in the handler (None: engines without a tokenizer get `messages`)."""
    cancelled: bool = False
    """Its client left (a stream closed): the worker stops generating its rows and queues no review."""
    streamed: bool = False
    """Some text has gone to the client already (a live stream): it cannot be retried."""


@dataclass
class Answer:
    text: str
    """What the client gets (the holding message when held)."""
    model_text: str
    finish_reason: str
    confidence: float
    routed: bool = False
    action: str | None = None
    reasons: list[str] = field(default_factory=list)
    review_id: int | None = None
    completion_tokens: int = 0
    prompt_tokens: int = 0

    def meta(self) -> dict:
        return {
            "confidence": round(self.confidence, 6),
            "routed": self.routed,
            "action": self.action,
            "reasons": self.reasons,
            "review_id": self.review_id,
        }


def message_text(content) -> str:
    """A message's content as text: a string, or the text parts of a content-part list (lenient; requests
    go through `serve.body.content_text`, which refuses what is not text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


def summary(answers: list[Answer], request: ChatRequest) -> dict:
    """The response's top-level `alignline` object: one choice's meta when n = 1, else the weakest."""
    reasons = list(dict.fromkeys(r for a in answers for r in a.reasons))
    ids = [a.review_id for a in answers if a.review_id is not None]
    out = {
        "request_id": request.id,
        "confidence": round(min(a.confidence for a in answers), 6),
        "routed": any(a.routed for a in answers),
        "action": next(
            (a.action for a in answers if a.action == "hold"), next((a.action for a in answers if a.action), None)
        ),
        "reasons": reasons,
        "review_id": ids[0] if ids else None,
    }
    if len(answers) > 1:
        out["review_ids"] = ids
    return out


def usage(answers: list[Answer]) -> dict:
    prompt = answers[0].prompt_tokens if answers else 0
    completion = sum(a.completion_tokens for a in answers)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(request: ChatRequest, answers: list[Answer]) -> dict:
    return {
        "id": request.id,
        "object": "chat.completion",
        "created": request.created,
        "model": request.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": a.text},
                "logprobs": None,
                "finish_reason": a.finish_reason,
                "confidence": round(a.confidence, 6),
                "alignline": a.meta(),
            }
            for i, a in enumerate(answers)
        ],
        "usage": usage(answers),
        "alignline": summary(answers, request),
    }
