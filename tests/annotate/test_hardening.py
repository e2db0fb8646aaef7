"""Issue 17 for `alignline annotate`: the body limit (413 before parsing, declared and chunked), the export rule
(nothing from an item that is not settled: below min_annotations, gold), the per-label export, user names
normalized (NFKC, no spaces or control characters), the per-account login cap, the agreement cache.

HTTP behaviour is tested against a real uvicorn server on a loopback port (`ThreadedServer`), with httpx."""

from __future__ import annotations

import json
import socket

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from alignline.errors import UserError  # noqa: E402

PASSWORD = "pw-hardening-0"


@pytest.fixture
def store(tmp_path):
    from alignline.annotate.store import FAST_KDF, Store

    s = Store(f"sqlite:///{tmp_path / 'a.db'}", kdf=FAST_KDF)
    yield s
    s.close()


def two_items(n: int = 2) -> list[dict]:
    return [{"id": f"q{i}", "prompt": f"question {i}", "responses": [f"answer {i}.0", f"answer {i}.1"]}
            for i in range(n)]


def serve(store, **options):
    from alignline.annotate.web.app import create_app
    from alignline.annotate.web.serve import ThreadedServer

    return ThreadedServer(create_app(store, **options))


def signed_in(c, name: str) -> str:
    r = c.post("/api/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["csrf_token"]


# --- the body limit -------------------------------------------------------------------------------------------
def raw_request(base: str, head: str) -> bytes:
    """Send only a request head (no body) and read the answer: a 413 here was decided before any body byte."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("ascii"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_declared_body_over_the_default_limit_is_413_before_reading(store):
    with serve(store) as base:
        answer = raw_request(base, "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 10000001\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body) == {"detail": "the request body is larger than 10000000 bytes, this server's limit"}
    assert b"x-frame-options: DENY" in head  # the security headers wrap the limit's own answers too


def test_body_limit_counts_streamed_chunks_and_is_configurable(store, monkeypatch):
    store.add_user("alice", "annotator", PASSWORD)
    store.create_project("p", two_items(), assign=["alice"])
    monkeypatch.setenv("ALIGNLINE_ANNOTATE_MAX_BODY_MB", "0.002")  # 2000 bytes
    with serve(store) as base, httpx.Client(base_url=base, timeout=30) as c:
        csrf = signed_in(c, "alice")  # a small body passes
        item = c.get("/api/projects/p/next").json()
        big = json.dumps({"choice": 0, "rationale": "x" * 5000}).encode()

        def chunks():  # no Content-Length: transfer-encoding chunked, counted as it streams
            for i in range(0, len(big), 500):
                yield big[i:i + 500]

        r = c.post(f"/api/items/{item['id']}/labels", content=chunks(),
                   headers={"X-CSRF-Token": csrf, "content-type": "application/json"})
        assert r.status_code == 413 and "larger than 2000 bytes" in r.json()["detail"]
        assert r.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.request.headers
        r = c.post(f"/api/items/{item['id']}/labels", content=big,
                   headers={"X-CSRF-Token": csrf, "content-type": "application/json"})
        assert r.status_code == 413
        r = c.post("/login", content=b"username=" + b"a" * 3000, headers={"content-type":
                                                                           "application/x-www-form-urlencoded"})
        assert r.status_code == 413 and "larger than 2000 bytes" in r.text  # the pages too
        r = c.post(f"/api/items/{item['id']}/labels", json={"choice": 0}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text  # nothing was stored by the refused ones
    assert store.agreement("p")["labels"] == 1


def test_body_limit_values():
    from alignline.annotate.web.limits import max_body_bytes

    assert max_body_bytes(1) == 1_000_000 and max_body_bytes("0.5") == 500_000
    for bad in (0, -1, "lots", float("nan")):
        with pytest.raises(UserError, match="--max-body-mb"):
            max_body_bytes(bad)
