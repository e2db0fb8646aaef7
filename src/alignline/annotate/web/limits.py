"""The request body limit of the annotation app: 413 before any body is parsed.

The largest thing a client legitimately sends is one label with an edited answer (`MAX_TEXT` characters, at most
4 bytes each) or a login form; 10 MB (the default) leaves room for both and keeps one client from making the
server buffer gigabytes into JSON or form parsing. Set it with `alignline annotate serve --max-body-mb N` or
$ALIGNLINE_ANNOTATE_MAX_BODY_MB.

Checked twice, as pure ASGI (no buffering): a declared Content-Length over the limit is refused before a byte
of the body is read; a chunked body (no length declared) or one that sends more than it declared is counted as
it streams and refused as soon as the count passes the limit, before the app has the whole of it.
"""

from __future__ import annotations

import json
import os

from starlette.exceptions import HTTPException

from alignline.errors import UserError

DEFAULT_MAX_BODY_MB = 10.0
MAX_BODY_ENV = "ALIGNLINE_ANNOTATE_MAX_BODY_MB"


def max_body_bytes(mb: float | str | None = None) -> int:
    """The limit in bytes: `mb` if given, else $ALIGNLINE_ANNOTATE_MAX_BODY_MB, else 10 MB (1 MB = 10**6 bytes)."""
    source = "--max-body-mb"
    if mb is None:
        mb, source = os.environ.get(MAX_BODY_ENV) or DEFAULT_MAX_BODY_MB, f"${MAX_BODY_ENV}"
    try:
        value = float(mb)
    except (TypeError, ValueError):
        raise UserError(f"{source} {mb!r}: expected a number of megabytes, e.g. 10") from None
    if not value > 0 or value == float("inf"):
        raise UserError(f"{source} {mb!r}: the body limit is a positive number of megabytes")
    return max(1, int(value * 1_000_000))


class BodyTooLarge(HTTPException):
    """Raised from inside `receive`: a starlette HTTPException, so FastAPI's body parsing re-raises it (any other
    error there becomes a 400) and the app's own handler answers 413 in the API's or the pages' shape."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes, this server's limit")


class BodyLimit:
    """ASGI middleware: bodies over `limit` bytes answer 413 (see the module docstring)."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = declared_length(scope)
        if declared is not None and declared > self.limit:
            return await refuse(scope, send, self.limit)
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if started:  # nothing sensible left to say: the connection ends
                raise
            await refuse(scope, send, self.limit)


def declared_length(scope) -> int | None:
    for key, value in scope.get("headers") or []:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server's HTTP parser refuses these before the app sees them
    return None


async def refuse(scope, send, limit: int) -> None:
    detail = str(BodyTooLarge(limit).detail)
    api = scope.get("path", "").startswith("/api/")
    body = (json.dumps({"detail": detail}) if api else detail + "\n").encode("utf-8")
    kind = b"application/json" if api else b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
