"""Concurrent submissions lose no label: 20 clients x 25 labels each against a real uvicorn server on a loopback
port, and the export holds all 500. On SQLite and, when a server is available, on PostgreSQL.

Every client labels every one of the 25 items, so 20 writers contend for the same rows all the time (the worst
case for lost updates); they agree on each item, so every item is exported with all 20 annotators."""

from __future__ import annotations

import json
import threading

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

CLIENTS, ITEMS = 20, 25
PASSWORD = "pw-concurrency-0"


def hammer(store) -> dict:
    from alignline.annotate.web.app import create_app
    from alignline.annotate.web.serve import ThreadedServer

    names = [f"annotator{i:02d}" for i in range(CLIENTS)]
    for name in names:
        store.add_user(name, "annotator", PASSWORD)
    store.add_user("boss", "admin", PASSWORD)
    items = [
        {"id": f"q{i}", "prompt": f"question {i}", "responses": [f"answer {i} a", f"answer {i} b"]}
        for i in range(ITEMS)
    ]
    store.create_project("load", items, assign=names, min_annotations=CLIENTS)
    errors: list[str] = []
    done = {name: 0 for name in names}
    start = threading.Barrier(CLIENTS)

    def annotator(name: str, base: str) -> None:
        try:
            with httpx.Client(base_url=base, timeout=60) as c:
                r = c.post("/api/login", json={"username": name, "password": PASSWORD})
                r.raise_for_status()
                csrf = r.json()["csrf_token"]
                start.wait(timeout=60)  # all 20 submit at once
                while True:
                    r = c.get("/api/projects/load/next")
                    if r.status_code == 204:
                        return
                    r.raise_for_status()
                    item = r.json()
                    # everyone prefers the response whose text ends in "a": agreement, so every label exports
                    choice = 0 if item["responses"][0].endswith(" a") else 1
                    r = c.post(
                        f"/api/items/{item['id']}/labels", json={"choice": choice}, headers={"X-CSRF-Token": csrf}
                    )
                    if r.status_code != 201:
                        errors.append(f"{name}: {r.status_code} {r.text}")
                        return
                    done[name] += 1
        except Exception as error:  # noqa: BLE001 - collected, reported by the assertion below
            errors.append(f"{name}: {type(error).__name__}: {error}")

    with ThreadedServer(create_app(store)) as base:
        threads = [threading.Thread(target=annotator, args=(name, base)) for name in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        with httpx.Client(base_url=base, timeout=60) as c:
            c.post("/api/login", json={"username": "boss", "password": PASSWORD}).raise_for_status()
            exported = [json.loads(line) for line in c.get("/api/projects/load/export").text.splitlines()]
    assert not errors, errors[:5]
    return {"done": done, "exported": exported}


def check(result: dict) -> None:
    assert sum(result["done"].values()) == CLIENTS * ITEMS
    assert set(result["done"].values()) == {ITEMS}
    pairs = [r for r in result["exported"] if r.get("kind", "preference") == "preference"]
    assert len(pairs) == ITEMS
    annotators = [a for r in pairs for a in r["annotators"]]
    assert len(annotators) == CLIENTS * ITEMS  # all 500 labels, each annotator once per pair
    assert all(len(set(r["annotators"])) == CLIENTS for r in pairs)
    assert all(r["chosen"].endswith(" a") for r in pairs)


def test_twenty_clients_lose_no_label_on_sqlite(tmp_path):
    from alignline.annotate.store import FAST_KDF, Store

    check(hammer(Store(f"sqlite:///{tmp_path / 'load.db'}", kdf=FAST_KDF)))


def test_twenty_clients_lose_no_label_on_postgresql():
    from alignline.annotate.store import FAST_KDF, Store
    from support import postgres_database, postgres_url_or_skip

    postgres_url_or_skip()
    with postgres_database("alignline_web") as url:
        store = Store(url, kdf=FAST_KDF)
        try:
            check(hammer(store))
        finally:
            store.close()
