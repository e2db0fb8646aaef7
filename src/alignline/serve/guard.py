"""What every request passes before it reaches a route (a plain ASGI middleware, so streaming and
disconnects pass through it untouched).

- `--api-key KEY` (or `ALIGNLINE_API_KEY`): without `Authorization: Bearer KEY` every route answers 401
  in OpenAI's error shape (`invalid_api_key`); the key is compared in constant time.
- A request with a body must say `Content-Type: application/json` (else 415). A web page may send a
  cross-site `text/plain` or form POST (or one with no type) to a server on loopback without asking the
  browser's permission; with this rule such a post never reaches the engine or the review queue.
- `allowed_hosts` (the command sets it when it listens on loopback without a key): the `Host` header must
  name one of them (else 403). A page that rebinds its own DNS name to 127.0.0.1 talks to the server as
  its own origin, JSON included; its requests still say `Host: its-name`.
"""

from __future__ import annotations

import hmac
import json

from alignline.serve.errors import error_body

BODY_METHODS = {b"POST", b"PUT", b"PATCH"}


async def send_error(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def bearer_matches(authorization: bytes | None, key: bytes) -> bool:
    """Whether an `Authorization` header carries `Bearer <key>` (constant-time compare of the key)."""
    if not authorization or not authorization[:7].lower() == b"bearer ":
        return False
    return hmac.compare_digest(authorization[7:].strip(), key)


def host_name(host: bytes | None) -> str:
    """`Host` without its port: `127.0.0.1:8000` -> `127.0.0.1`, `[::1]:8000` -> `::1`."""
    text = (host or b"").decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def is_json(content_type: bytes | None) -> bool:
    return bool(content_type) and content_type.split(b";")[0].strip().lower() == b"application/json"


class Guard:
    """ASGI middleware: the API key (when set), then the content type of requests with a body."""

    def __init__(self, app, api_key: str | None = None, allowed_hosts: list[str] | None = None):
        self.app, self.key = app, api_key.encode() if api_key else None
        self.hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        host = host_name(headers.get(b"host"))
        if self.hosts is not None and host not in self.hosts:
            return await send_error(
                send,
                403,
                error_body(
                    f"Host {host!r} is not served here (allowed: {', '.join(sorted(self.hosts))}; "
                    "`alignline serve --allowed-host NAME` adds one)",
                    "invalid_request_error",
                    None,
                    "host_not_allowed",
                ),
            )
        if self.key is not None and not bearer_matches(headers.get(b"authorization"), self.key):
            return await send_error(
                send,
                401,
                error_body(
                    "Incorrect or missing API key: send the header 'Authorization: Bearer <key>' with the key the "
                    "server was started with (--api-key or ALIGNLINE_API_KEY).",
                    "invalid_request_error",
                    None,
                    "invalid_api_key",
                ),
                [(b"www-authenticate", b"Bearer")],
            )
        if scope.get("method", "").encode() in BODY_METHODS and not is_json(headers.get(b"content-type")):
            return await send_error(
                send,
                415,
                error_body(
                    "Content-Type must be application/json", "invalid_request_error", None, "unsupported_media_type"
                ),
            )
        return await self.app(scope, receive, send)
