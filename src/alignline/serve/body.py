"""Reading a request body without letting it hurt the server: JSON parsed with its depth and its strings
checked, message content reduced to text or refused.

Why each check: Python's `json` raises RecursionError on deeply nested input (100k `[` is 200 kB), which
would otherwise be a 500; a lone surrogate (`"\\ud800"` is valid JSON) cannot be encoded to UTF-8, so the
tokenizer, the review file and the response itself would fail on it, and in a batch it would fail the
other requests too. Both are the client's error: 400, before the request joins a batch.
"""

from __future__ import annotations

import json

from alignline.serve.errors import RequestError

MAX_DEPTH = 32
"""Nesting a chat request needs is about 5 (body / messages / message / content parts / part)."""


def parse_json_body(raw: bytes):
    """The body as JSON, refused (400) when malformed, nested deeper than MAX_DEPTH or holding a string
    that is not valid Unicode (a lone surrogate)."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise RequestError(400, f"the request body is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError(400, "the request body is not valid JSON") from None
    check_json_value(body)
    return body


def check_json_value(value) -> None:
    """Walk a parsed JSON value without recursion: depth at most MAX_DEPTH, every string encodable."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RequestError(400, f"the request body is nested too deeply (at most {MAX_DEPTH} levels)")
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, dict):
            for key, v in item.items():
                check_text(key)
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(
            400, "the request holds a string that is not valid Unicode (a lone surrogate such as \\ud800)"
        ) from None


def content_text(content, where: str) -> str:
    """A message's content as text: a string, None (""), or a list of text parts `{"type": "text", "text": str}`.
    Anything else (an image part, a number as text) is refused naming the part: answering without it would
    answer a different question than the one asked."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestError(400, f"{where} must be a string or a list of content parts", where)
    texts = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise RequestError(
                400, f'{at}: this server takes text parts only ({{"type": "text", "text": ...}}), got {kind!r}', at
            )
        if not isinstance(part.get("text"), str):
            raise RequestError(400, f"{at}.text must be a string", f"{at}.text")
        texts.append(part["text"])
    return "".join(texts)
