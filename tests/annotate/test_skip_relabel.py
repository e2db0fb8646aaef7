"""Skipping an item (back of this user's queue, recorded) and correcting one's own label, in the store, the JSON
API (CSRF, 403/404/409/422) and the pages; adjudicated items leave an annotator's "to go" count."""

from __future__ import annotations

import re

import pytest

from alignline.annotate.store import FAST_KDF, AccessDenied, InvalidLabel, LabelConflict, Store

PASSWORD = "skip-and-fix-1"


def seeded(url: str) -> Store:
    s = Store(url, kdf=FAST_KDF)
    for name, role in (("admin", "admin"), ("alice", "annotator"), ("bob", "annotator")):
        s.add_user(name, role, PASSWORD)
    s.create_project(
        "chat", [{"prompt": f"q{i}", "responses": [f"a{i}", f"b{i}"]} for i in range(3)], assign=["alice", "bob"]
    )
    s.create_project("secret", [{"prompt": "SECRET", "responses": ["x", "y"]}], assign=["bob"])
    return s


@pytest.fixture
def store(tmp_path):
    s = seeded(f"sqlite:///{tmp_path / 'q.db'}")
    yield s
    s.close()


def ids(store) -> dict[str, int]:
    return {it["prompt"]: it["id"] for it in store.items("chat")}


def test_a_skipped_item_waits_until_the_others_are_done(store):
    alice, bob = store.user("alice"), store.user("bob")
    item = ids(store)
    assert store.next_item("chat", alice)["prompt"] == "q0"
    assert store.skip_item(item["q0"], alice)["skips"] == 1
    assert store.next_item("chat", alice)["prompt"] == "q1"
    assert store.next_item("chat", bob)["prompt"] == "q0"  # only alice's queue changed
    store.add_label(item["q1"], alice, 0)
    assert store.next_item("chat", alice)["prompt"] == "q2"
    store.skip_item(item["q2"], alice)
    assert store.next_item("chat", alice)["prompt"] == "q0"  # only skipped ones are left: the oldest skip first
    assert store.skip_item(item["q0"], alice)["skips"] == 2  # skipped again: behind q2 now
    assert store.next_item("chat", alice)["prompt"] == "q2"
    assert store.project("chat", alice)["remaining"] == 2  # skipped is not done
    store.add_label(item["q2"], alice, 1)
    store.add_label(item["q0"], alice, 1)
    assert store.next_item("chat", alice) is None
    assert sorted((k["user"], k["item_id"], k["skips"]) for k in store.skips("chat")) == [
        ("alice", item["q0"], 2),
        ("alice", item["q2"], 1),
    ]


def test_the_skip_order_and_a_relabel_on_postgresql():
    """The queue's ORDER BY (skips last, grouped) is the part PostgreSQL is stricter about than SQLite."""
    from support import postgres_database

    with postgres_database() as url:
        s = seeded(url)
        try:
            test_a_skipped_item_waits_until_the_others_are_done(s)
            alice, q1 = s.user("alice"), ids(s)["q1"]
            assert s.replace_label(q1, alice, "tie")["choice"] == "tie"
            assert s.item(q1, alice)["label"]["choice"] == "tie" and s.last_labelled("chat", alice) == q1
        finally:
            s.close()


def test_skip_refuses_a_labelled_item_and_another_projects_item(store):
    alice = store.user("alice")
    item = ids(store)
    store.add_label(item["q0"], alice, 0)
    with pytest.raises(LabelConflict, match="already labelled"):
        store.skip_item(item["q0"], alice)
    secret = store.items("secret")[0]["id"]
    with pytest.raises(AccessDenied):
        store.skip_item(secret, alice)


def test_replace_label_corrects_ones_own_answer_in_place(store):
    alice, bob = store.user("alice"), store.user("bob")
    item = ids(store)
    with pytest.raises(LabelConflict, match="no label by alice"):
        store.replace_label(item["q0"], alice, 0)
    first = store.add_label(item["q0"], alice, 0, rationale="first thought")
    store.add_label(item["q0"], bob, 0)
    again = store.replace_label(item["q0"], alice, 1, rationale="on reflection")
    assert again["id"] == first["id"] and again["choice"] == 1
    mine = store.item(item["q0"], alice)["label"]
    assert mine["choice"] == 1 and mine["rationale"] == "on reflection"
    assert store.item(item["q0"], bob)["label"]["choice"] == 0  # bob's label is his own
    with pytest.raises(InvalidLabel) as bad:
        store.replace_label(item["q0"], alice, 7)
    assert not isinstance(bad.value, LabelConflict)  # a bad answer is a 422, not a 409
    assert store.item(item["q0"], alice)["label"]["choice"] == 1
    assert store.agreement("chat")["labels"] == 2  # replaced, not added
    assert store.last_labelled("chat", alice) == item["q0"]
    store.add_label(item["q1"], alice, 0)
    assert store.last_labelled("chat", alice) == item["q1"]
    assert store.last_labelled("chat", store.user("admin")) is None


def test_adjudicated_items_leave_the_annotators_to_go_count(store):
    alice, admin = store.user("alice"), store.user("admin")
    item = ids(store)
    assert store.project("chat", alice)["remaining"] == 3
    store.adjudicate(item["q1"], admin, 0)
    project = store.project("chat", alice)
    assert project["remaining"] == 2 and project["mine"] == 0
    assert [p["remaining"] for p in store.projects_for(alice)] == [2]
    seen = []
    while (it := store.next_item("chat", alice)) is not None:
        seen.append(it["prompt"])
        store.add_label(it["id"], alice, 0)
    assert seen == ["q0", "q2"] and store.project("chat", alice)["remaining"] == 0


# --- the JSON API and the pages ------------------------------------------------------------------------------
@pytest.fixture
def client(store):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from alignline.annotate.web.app import create_app

    return TestClient(create_app(store))


def login(c, name: str = "alice") -> str:
    r = c.post("/api/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["csrf_token"]


def test_api_skip_and_relabel(store, client):
    csrf = login(client)
    h = {"X-CSRF-Token": csrf}
    first = client.get("/api/projects/chat/next").json()["id"]
    assert client.post(f"/api/items/{first}/skip").status_code == 403  # no CSRF token
    assert client.post(f"/api/items/{first}/skip", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    r = client.post(f"/api/items/{first}/skip", headers=h)
    assert r.status_code == 200 and r.json()["item_id"] == first and r.json()["skips"] == 1
    second = client.get("/api/projects/chat/next").json()["id"]
    assert second != first
    secret = store.items("secret")[0]["id"]
    assert client.post(f"/api/items/{secret}/skip", headers=h).status_code == 404
    assert client.put(f"/api/items/{secret}/labels", json={"choice": 0}, headers=h).status_code == 404

    assert client.put(f"/api/items/{second}/labels", json={"choice": 0}).status_code == 403
    r = client.put(f"/api/items/{second}/labels", json={"choice": 0}, headers=h)
    assert r.status_code == 409 and "no label" in r.json()["detail"]  # nothing to change yet
    assert client.post(f"/api/items/{second}/labels", json={"choice": 0}, headers=h).status_code == 201
    assert client.post(f"/api/items/{second}/skip", headers=h).status_code == 409  # labelled: change it instead
    r = client.put(f"/api/items/{second}/labels", json={"choice": "tie", "rationale": "both fine"}, headers=h)
    assert r.status_code == 200 and r.json()["choice"] == "tie"
    assert client.get(f"/api/items/{second}").json()["label"]["choice"] == "tie"
    assert client.put(f"/api/items/{second}/labels", json={"choice": 5}, headers=h).status_code == 422
    assert client.post(f"/api/items/{second}/labels", json={"choice": 1}, headers=h).status_code == 409  # unchanged


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_pages_skip_button_and_change_my_last_answer(store, client):
    login(client)
    page = client.get("/projects/chat/annotate").text
    assert 'id="skip"' in page and 'data-key="s"' in page and "change-last" not in page  # nothing to change yet
    first = int(re.search(r"/items/(\d+)/skip", page).group(1))
    token = csrf_of(page)
    assert client.post(f"/projects/chat/items/{first}/skip", data={}, follow_redirects=False).status_code == 403
    r = client.post(f"/projects/chat/items/{first}/skip", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/projects/chat/annotate?skipped={first}"
    page = client.get(r.headers["location"]).text
    assert "Skipped" in page and f"/items/{first}/skip" not in page  # another item now
    second = int(re.search(r"/items/(\d+)/skip", page).group(1))
    r = client.post(
        f"/projects/chat/items/{second}/label", data={"csrf_token": token, "choice": "0"}, follow_redirects=False
    )
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    link = re.search(r'id="change-last" href="([^"]+)"', page).group(1)
    assert link == f"/projects/chat/items/{second}/change"
    change = client.get(link).text
    assert "Your answer was <strong>A</strong>" in change and f"/items/{second}/relabel" in change
    assert 'id="skip"' not in change
    r = client.post(
        f"/projects/chat/items/{second}/relabel", data={"csrf_token": token, "choice": "1"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"].endswith(f"annotate?changed={second}")
    assert "Your answer is changed" in client.get(r.headers["location"]).text
    assert store.item(second, store.user("alice"))["label"]["choice"] == 1
    assert client.get(f"/projects/chat/items/{first}/change").status_code == 404  # skipped, never answered
    secret = store.items("secret")[0]["id"]
    assert client.get(f"/projects/chat/items/{secret}/change").status_code == 404
    assert (
        client.post(f"/projects/chat/items/{second}/relabel", data={"choice": "0"}, follow_redirects=False).status_code
        == 403
    )
