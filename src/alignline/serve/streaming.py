"""Server-sent events for `stream: true`: live, token by token, wherever the answer goes out whatever its
confidence says; buffered where it may be held.

Live (`live_streaming`): no routing on this server, or routing that can only flag (`--on-low flag`, and a
policy whose action is flag). The engine worker decodes each row's tokens into text deltas (`TextStream`, fed
through `on_token` by `HFEngine`'s decoding loop, or by `serve/vllm_backend.py` as vLLM's engine steps) and
hands them to the request's sink, which puts them on the response's queue as they come; a streamed request is
still batched with others, each row's deltas going to its own client. The confidence, `routed`, `reasons` and
`review_id` come in each choice's finish chunk and in the last one's `alignline` object, after all of the
text: the score needs the whole answer, and the review is queued (in the worker) once it is complete, just
before those chunks leave.

Buffered: `--on-low hold` (or a policy that holds) with routing active. The confidence and the policy rules
need the whole answer before any of it may leave, since a held answer cannot be unsent; once decided, the
answer (or the holding message) goes out in word-sized chunks. Buffered too: engines without
`streams_tokens` (a `VLLMEngine` used as it is, which returns finished outputs only, and scripted test engines).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future

from alignline.rollout.types import Completion, TextStream
from alignline.serve.protocol import Answer, ChatRequest, summary, usage


def live_streaming(engine, router) -> bool:
    """Whether a streamed answer may leave token by token: the engine streams and nothing may be held."""
    return bool(getattr(engine, "streams_tokens", False)) and not router.may_hold


def queue_sink(loop: asyncio.AbstractEventLoop, deltas: asyncio.Queue):
    """A request's sink: (choice, text) from the worker thread onto the response's queue, in order."""

    def sink(choice: int, text: str) -> None:
        try:
            loop.call_soon_threadsafe(deltas.put_nowait, (choice, text))
        except RuntimeError:  # the event loop has closed (shutdown): nobody is reading; the batch goes on
            pass

    return sink


class LiveRows:
    """The engine's `on_token` for one engine call: each live request's rows (prompt k, choice j -> row
    k * n + j) decoded by their own `TextStream`, deltas sent to that request's sink as (choice, text).
    A row whose request was cancelled (its client left) answers True: the engine drops it."""

    def __init__(self, tokenizer, requests: list[ChatRequest], n: int, stop: tuple[str, ...]):
        self.n = n
        self.rows = {
            k * n + j: (r, j, TextStream(tokenizer, stop)) for k, r in enumerate(requests) if r.sink for j in range(n)
        }

    def push(self, row: int, token_id: int) -> bool:
        entry = self.rows.get(row)
        if entry is None:
            return False
        request, choice, text = entry
        if request.cancelled:
            return True
        delta = text.push(token_id)
        if delta:
            request.streamed = True
            request.sink(choice, delta)
        return False

    def flush(self, results: list[list[Completion]]) -> None:
        """Send what each row held back (a possible stop start that was not one, a trailing U+FFFD)."""
        for row, (request, choice, text) in self.rows.items():
            rest = text.finish(results[row // self.n][choice].text)
            if rest and not request.cancelled:
                request.sink(choice, rest)


def sse(request: ChatRequest, choices: list, **extra) -> str:
    body = {
        "id": request.id,
        "object": "chat.completion.chunk",
        "created": request.created,
        "model": request.model,
        "system_fingerprint": None,
        "choices": choices,
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def pieces(text: str) -> list[str]:
    """Word-sized chunks of a finished answer, whitespace kept, so they join back to the text."""
    return re.findall(r"\s*\S+|\s+", text) or [""]


def role_chunk(request: ChatRequest, i: int) -> str:
    return sse(
        request, [{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]
    )


def content_chunk(request: ChatRequest, i: int, text: str) -> str:
    return sse(request, [{"index": i, "delta": {"content": text}, "logprobs": None, "finish_reason": None}])


def finish_chunk(request: ChatRequest, answers: list[Answer], i: int) -> str:
    """Choice i's finish chunk with its confidence and meta; the last one carries the request's summary."""
    a = answers[i]
    return sse(
        request,
        [
            {
                "index": i,
                "delta": {},
                "logprobs": None,
                "finish_reason": a.finish_reason,
                "confidence": round(a.confidence, 6),
                "alignline": a.meta(),
            }
        ],
        **({"alignline": summary(answers, request)} if i == len(answers) - 1 else {}),
    )


def tail(request: ChatRequest, answers: list[Answer]) -> Iterator[str]:
    if request.include_usage:
        yield sse(request, [], usage=usage(answers))
    yield "data: [DONE]\n\n"


def buffered_events(request: ChatRequest, answers: list[Answer]) -> Iterator[str]:
    """A finished answer: per choice a role chunk, word-sized content chunks, a finish chunk; usage (if
    asked); `[DONE]`."""
    for i, a in enumerate(answers):
        yield role_chunk(request, i)
        for piece in pieces(a.text):
            yield content_chunk(request, i, piece)
        yield finish_chunk(request, answers, i)
    yield from tail(request, answers)


async def live_events(request: ChatRequest, deltas: asyncio.Queue, future: Future) -> AsyncIterator[str]:
    """Role chunks, then (choice, text) deltas as the worker sends them, until `None` (the job is done);
    then the finish chunks, usage, `[DONE]`. An engine failure mid-answer is an `error` event (the status
    line has gone already), which the official client raises as an APIError."""
    try:
        for i in range(request.params.n):
            yield role_chunk(request, i)
        while (item := await deltas.get()) is not None:
            yield content_chunk(request, *item)
    finally:  # the client left (the response's task was cancelled, or the generator closed): free its rows
        if not future.done():
            request.cancelled = True
    try:
        answers = future.result()
    except Exception as e:  # noqa: BLE001 - any engine failure becomes an error event on the stream
        error = {
            "message": f"generation failed: {type(e).__name__}: {e}",
            "type": "server_error",
            "param": None,
            "code": "engine_error",
        }
        yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"
        return
    for i in range(len(answers)):
        yield finish_chunk(request, answers, i)
    for line in tail(request, answers):
        yield line
