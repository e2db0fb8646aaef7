"""The annotation store on SQLite: users, sessions, projects, blinding, next_item, labels, access, review queue."""

from __future__ import annotations

import pytest

from alignline.annotate.store import FAST_KDF, AccessDenied, InvalidLabel, Store
from alignline.errors import DataError, UserError

SQL = "'); DROP TABLE labels;--"


def items(n: int = 4, k: int = 2) -> list[dict]:
    return [{"id": f"q{i}", "prompt": f"question {i}", "responses": [f"answer {i}.{j}" for j in range(k)],
             "models": [f"model{j}" for j in range(k)], "topic": "maths"} for i in range(n)]


@pytest.fixture
def store(tmp_path):
    st = Store(f"sqlite:///{tmp_path / 'a.db'}", kdf=FAST_KDF)
    yield st
    st.close()


@pytest.fixture
def people(store):
    return {"ann": store.add_user("ann", "annotator", "ann-password"),
            "bob": store.add_user("bob", "annotator", "bob-password"),
            "eve": store.add_user("eve", "annotator", "eve-password"),
            "root": store.add_user("root", "admin", "root-password")}


def test_users_and_passwords(store, people):
    assert store.authenticate("ann", "ann-password") == people["ann"]
    assert store.authenticate("ann", "wrong") is None and store.authenticate("nobody", "ann-password") is None
    assert store.user("root")["role"] == "admin" and store.user("nobody") is None
    with store.tx() as s:
        from alignline.annotate.models import User

        assert s.get(User, people["ann"]["id"]).password_hash.startswith("$argon2id$")
    with pytest.raises(UserError, match="already exists"):
        store.add_user("ann", "annotator", "another-password")
    with pytest.raises(UserError, match="role"):
        store.add_user("zed", "owner", "zed-password")


def test_sessions_are_stored_hashed_and_expire(store, people):
    token, csrf = store.create_session(people["ann"]["id"])
    assert store.session(token) == {"user": people["ann"], "csrf": csrf, "expires_at": pytest.approx(
        store.session(token)["expires_at"])}
    with store.tx() as s:
        from alignline.annotate.models import Session

        assert [r.token_hash for r in s.query(Session)] != [token]  # only the digest is kept
    short, _ = store.create_session(people["bob"]["id"], ttl_s=-1)
    assert store.session(short) is None and store.session("made-up") is None
    store.end_session(token)
    assert store.session(token) is None


def test_login_failures_count_in_window_and_reset_on_success(store):
    for _ in range(3):
        store.record_login("ann", "10.0.0.1", False)
    store.record_login("ann", "10.0.0.2", False)
    assert store.login_failures("ann", "10.0.0.1", 60) == 3
    assert store.login_failures("ann", None, 60) == 4 and store.login_failures(None, "10.0.0.2", 60) == 1
    store.record_login("ann", "10.0.0.1", True)
    assert store.login_failures("ann", "10.0.0.1", 60) == 0


def test_blinding_shuffles_and_labels_map_back_to_the_original_order(store, people):
    store.create_project("p", items(12), assign=["ann"])
    seen_swapped = False
    while (it := store.next_item("p", people["ann"])) is not None:
        assert set(it) == {"id", "project", "kind", "rubric", "prompt", "responses", "label"}
        i = int(it["prompt"].split()[-1])
        shown = it["responses"].index(f"answer {i}.0")  # prefer the first original response, wherever it is
        seen_swapped |= shown == 1
        store.add_label(it["id"], people["ann"], shown)
    assert seen_swapped  # 12 items, a fair shuffle: some are shown swapped
    with store.tx() as s:
        from alignline.annotate.models import Label

        assert {lab.choice for lab in s.query(Label)} == {0}  # stored in original indices


def test_next_item_fewest_labels_first_and_none_when_done(store, people):
    store.create_project("p", items(3), assign=["ann", "bob"], min_annotations=2)
    first = store.next_item("p", people["ann"])
    store.add_label(first["id"], people["ann"], 0)
    # bob gets the same item first? No: items with fewer labels come first, so bob starts with another one.
    assert store.next_item("p", people["bob"])["id"] != first["id"]
    for _ in range(2):
        store.add_label(store.next_item("p", people["ann"])["id"], people["ann"], "tie")
    assert store.next_item("p", people["ann"]) is None
    progress = store.projects_for(people["ann"])[0]
    assert (progress["items"], progress["mine"], progress["remaining"], progress["labels"]) == (3, 3, 0, 3)


def test_gold_items_are_mixed_in_silently(store, people):
    gold = [{"prompt": "2+2?", "responses": ["4", "5"], "answer": 0, "note": "easy"}]
    store.create_project("p", items(5), assign=["ann"], gold=gold)
    served = []
    while (it := store.next_item("p", people["ann"])) is not None:
        served.append(it)
        assert "gold" not in str(sorted(it)) and "answer" not in it and "models" not in it
        store.add_label(it["id"], people["ann"], 0)
    assert len(served) == 6 and any(it["prompt"] == "2+2?" for it in served)


def test_duplicate_label_and_bad_choices(store, people):
    store.create_project("p", items(1), assign=["ann"])
    it = store.next_item("p", people["ann"])
    for bad in (2, -1, True, "left", [0, 1], None):
        with pytest.raises(InvalidLabel):
            store.add_label(it["id"], people["ann"], bad)
    store.add_label(it["id"], people["ann"], 1)
    with pytest.raises(InvalidLabel, match="already labelled"):
        store.add_label(it["id"], people["ann"], 0)


def test_sql_looking_text_is_stored_verbatim(store, people):
    store.create_project("p", [{"prompt": SQL, "responses": [SQL, "<script>alert(1)</script>"]}], assign=["ann"])
    it = store.next_item("p", people["ann"])
    assert it["prompt"] == SQL and SQL in it["responses"]
    store.add_label(it["id"], people["ann"], 0, rationale=SQL, edit=SQL)
    assert store.item(it["id"], people["ann"])["label"]["rationale"] == SQL
    assert store.item(it["id"], people["ann"])["label"]["edit"] == SQL
    assert store.user(SQL) is None and store.authenticate(SQL, SQL) is None


def test_an_annotator_cannot_touch_an_unassigned_project(store, people):
    store.create_project("mine", items(1), assign=["ann"])
    store.create_project("theirs", items(1), assign=["bob"])
    theirs = store.next_item("theirs", people["bob"])
    with pytest.raises(AccessDenied):
        store.next_item("theirs", people["ann"])
    with pytest.raises(AccessDenied):
        store.item(theirs["id"], people["ann"])
    with pytest.raises(AccessDenied):
        store.add_label(theirs["id"], people["ann"], 0)
    with pytest.raises(AccessDenied):
        store.project("theirs", people["ann"])
    with pytest.raises(AccessDenied):
        store.item(10_000, people["ann"])
    assert [p["name"] for p in store.projects_for(people["ann"])] == ["mine"]
    assert [p["name"] for p in store.projects_for(people["root"])] == ["mine", "theirs"]
    assert store.item(theirs["id"], people["root"])["id"] == theirs["id"]  # admins see everything


def test_kinds_ranking_best_worst_rating(store, people):
    rubric = {"criteria": [{"name": "helpful", "scale": [1, 5]}, {"name": "harmless", "scale": [1, 3]}],
              "instructions": "be fair"}
    store.create_project("rank", items(1, 3), kind="ranking", rubric=rubric, assign=["ann"])
    it = store.next_item("rank", people["ann"])
    with pytest.raises(InvalidLabel, match="permutation"):
        store.add_label(it["id"], people["ann"], [0, 1])
    with pytest.raises(InvalidLabel, match="from 1 to 3"):
        store.add_label(it["id"], people["ann"], [2, 0, 1], scores={"harmless": [1, 2, 4]})
    store.add_label(it["id"], people["ann"], [2, 0, 1], scores={"helpful": [5, 3, 1]})
    assert store.item(it["id"], people["ann"])["label"]["choice"] == [2, 0, 1]  # shown positions again
    assert store.item(it["id"], people["ann"])["label"]["scores"] == {"helpful": [5, 3, 1]}

    store.create_project("bw", items(1, 4), kind="best_worst", assign=["ann"])
    it = store.next_item("bw", people["ann"])
    with pytest.raises(InvalidLabel):
        store.add_label(it["id"], people["ann"], {"best": 1, "worst": 1})
    store.add_label(it["id"], people["ann"], {"best": 1, "worst": 3})

    store.create_project("rate", items(1, 1), kind="rating", rubric=rubric, assign=["ann"])
    it = store.next_item("rate", people["ann"])
    with pytest.raises(InvalidLabel, match="missing harmless"):
        store.add_label(it["id"], people["ann"], None, scores={"helpful": 4})
    store.add_label(it["id"], people["ann"], None, scores={"helpful": 4, "harmless": 3}, edit="better")


def test_bad_items_name_the_record_and_field(store):
    with pytest.raises(DataError, match=r"f.jsonl, record 2, field 'responses': a pairwise item needs exactly 2"):
        store.create_project("p", [items(1)[0], {"prompt": "x", "responses": ["only one"]}], source="f.jsonl")
    with pytest.raises(DataError, match=r"record 1, field 'prompt'"):
        store.create_project("p", [{"prompt": 3, "responses": ["a", "b"]}])
    with pytest.raises(DataError, match=r"g.jsonl, record 1, field 'answer'"):
        store.create_project("p", items(1), gold=[{"prompt": "x", "responses": ["a", "b"], "answer": 7}],
                             gold_source="g.jsonl")
    with pytest.raises(UserError, match="no such user"):
        store.create_project("p", items(1), assign=["ghost"])
    assert store.project_names() == []  # nothing half-made


def test_enqueue_review_makes_a_rating_item_with_lineage(store, people):
    a = store.enqueue_review("review", [{"role": "user", "content": "hi"}], "hello", {"request_id": "r1"})
    b = store.enqueue_review("review", "again", "there", {"request_id": "r2", "confidence": 0.2})
    assert b > a
    assert [r["meta"]["request_id"] for r in store.reviews("review")] == ["r1", "r2"]
    it = store.next_item("review", people["root"])
    assert it["id"] == a and it["kind"] == "rating" and it["responses"] == ["hello"]
    store.add_label(a, people["root"], None, scores={"quality": 2}, edit="Hello! How can I help?")
    assert store.reviews("review")[0]["labels"] == 1
    with pytest.raises(AccessDenied):
        store.next_item("review", people["ann"])  # not assigned
