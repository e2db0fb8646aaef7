"""The annotation store on SQLite: users, sessions, projects, blinding, next_item, labels, access, review queue."""

from __future__ import annotations

import pytest

from alignline.annotate.store import FAST_KDF, AccessDenied, InvalidLabel, Store
from alignline.errors import DataError, UserError

SQL = "'); DROP TABLE labels;--"


def items(n: int = 4, k: int = 2) -> list[dict]:
    return [
        {
            "id": f"q{i}",
            "prompt": f"question {i}",
            "responses": [f"answer {i}.{j}" for j in range(k)],
            "models": [f"model{j}" for j in range(k)],
            "topic": "maths",
        }
        for i in range(n)
    ]


@pytest.fixture
def store(tmp_path):
    st = Store(f"sqlite:///{tmp_path / 'a.db'}", kdf=FAST_KDF)
    yield st
    st.close()


@pytest.fixture
def people(store):
    return {
        "ann": store.add_user("ann", "annotator", "ann-password"),
        "bob": store.add_user("bob", "annotator", "bob-password"),
        "eve": store.add_user("eve", "annotator", "eve-password"),
        "root": store.add_user("root", "admin", "root-password"),
    }


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
    assert store.session(token) == {
        "user": people["ann"],
        "csrf": csrf,
        "expires_at": pytest.approx(store.session(token)["expires_at"]),
    }
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
    rubric = {
        "criteria": [{"name": "helpful", "scale": [1, 5]}, {"name": "harmless", "scale": [1, 3]}],
        "instructions": "be fair",
    }
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
        store.create_project(
            "p", items(1), gold=[{"prompt": "x", "responses": ["a", "b"], "answer": 7}], gold_source="g.jsonl"
        )
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


# --- agreement, adjudication, export, import ------------------------------------------------------------
def label_original(store, user, item, orig, **kw):
    """Label `item` with a choice given in ORIGINAL indices (the responses are 'answer i.j', j original)."""
    texts = item["responses"]
    i = item["prompt"].split()[-1]
    pos = {j: texts.index(f"answer {i}.{j}") for j in range(len(texts))}
    if isinstance(orig, list):
        choice = [pos[o] for o in orig]
    elif isinstance(orig, dict):
        choice = {k: pos[v] for k, v in orig.items()}
    else:
        choice = orig if orig == "tie" else pos[orig]
    return store.add_label(item["id"], user, choice, **kw)


def label_all(store, project, user, choices: dict) -> None:
    """choices: {item number: original-index choice}; labels them in the order next_item serves."""
    done = set()
    while (it := store.next_item(project, user)) is not None:
        i = int(it["prompt"].split()[-1])
        label_original(store, user, it, choices[i])
        done.add(i)
    assert done == set(choices)


def test_agreement_numbers_by_hand(store, people):
    """ann [0,0,1,1], bob [0,1,1,1] on four pairwise items.
    Cohen: p_o = 3/4; p_e = (2*1 + 2*3)/16 = 1/2; kappa = (3/4 - 1/2)/(1/2) = 1/2.
    Fleiss (m=2, n=4): P_i = 1,0,1,1 -> P = 3/4; shares 3/8, 5/8 -> P_e = 34/64; (3/4 - 34/64)/(30/64) = 7/15.
    Krippendorff (nominal): coincidences n0 = 3, n1 = 5, n = 8, disagreeing 2; expected 2*3*5/7 = 30/7;
    alpha = 1 - 2/(30/7) = 8/15."""
    store.create_project("p", items(4), assign=["ann", "bob"], min_annotations=2)
    label_all(store, "p", people["ann"], {0: 0, 1: 0, 2: 1, 3: 1})
    label_all(store, "p", people["bob"], {0: 0, 1: 1, 2: 1, 3: 1})
    a = store.agreement("p")
    assert a["cohen"] == pytest.approx(0.5) and a["fleiss"] == pytest.approx(7 / 15)
    assert a["krippendorff"] == pytest.approx(8 / 15) and a["fleiss_items"] == 4
    assert a["labels"] == 8 and a["complete"] == 4 and a["disagreements"] == 1
    ann = next(x for x in a["annotators"] if x["name"] == "ann")
    assert ann["cohen"] == pytest.approx(0.5) and ann["labels"] == 4 and ann["agrees_with_majority"] == 0.75


def test_disagreement_adjudication_and_export(store, people):
    store.create_project("p", items(5), assign=["ann", "bob"], min_annotations=2)
    label_all(store, "p", people["ann"], {0: 0, 1: 0, 2: 1, 3: "tie", 4: 0})
    label_all(store, "p", people["bob"], {0: 0, 1: 1, 2: 1, 3: "tie", 4: "tie"})
    queue = store.disagreements("p")
    assert [int(d["prompt"].split()[-1]) for d in queue] == [1, 4] and queue[0]["share"] == 0.5
    assert {lab["user"] for lab in queue[0]["labels"]} == {"ann", "bob"}
    with pytest.raises(AccessDenied):
        store.adjudicate(queue[0]["id"], people["ann"], 0)
    # the admin decides item 1 for original response 1, given in shown positions like a label
    shown = queue[0]["responses"].index("answer 1.1")
    store.adjudicate(queue[0]["id"], people["root"], shown)
    assert [int(d["prompt"].split()[-1]) for d in store.disagreements("p")] == [4]
    records, counts = store.export_with_counts("p")
    prefs = {r["lineage"]["external_id"]: r for r in records if r["kind"] == "preference"}
    assert sorted(prefs) == ["q0", "q1", "q2"] and counts == {"pairs": 3, "tie": 2}
    assert prefs["q0"]["chosen"] == "answer 0.0" and prefs["q0"]["rejected"] == "answer 0.1"
    assert prefs["q0"]["confidence"] == 1.0 and prefs["q0"]["annotators"] == ["ann", "bob"]
    assert prefs["q1"]["chosen"] == "answer 1.1" and prefs["q1"]["confidence"] == 0.5
    assert prefs["q1"]["lineage"]["adjudicated"] is True
    assert prefs["q2"]["lineage"] == {
        "project": "p",
        "item_id": prefs["q2"]["lineage"]["item_id"],
        "external_id": "q2",
        "fields": {"topic": "maths"},
        "chosen_index": 1,
        "rejected_index": 0,
        "adjudicated": False,
        "models": {"chosen": "model1", "rejected": "model0"},
    }
    assert store.export("p") == records


def test_export_rankings_best_worst_scores_and_edits(store, people):
    """Rankings ann [0,1,2], bob [0,2,1], eve [1,0,2]: 0>1 by 2 of 3, 0>2 by 3 of 3, 1>2 by 2 of 3.
    Best-worst best 2, worst 0 over four: 2>0, 2>1, 2>3, 1>0, 3>0 (1 vs 3 unstated)."""
    rubric = {"criteria": [{"name": "helpful", "scale": [1, 5]}]}
    store.create_project(
        "r", items(1, 3), kind="ranking", rubric=rubric, assign=["ann", "bob", "eve"], min_annotations=3
    )
    for who, ranking, helpful in (
        ("ann", [0, 1, 2], [5, 3, 1]),
        ("bob", [0, 2, 1], [4, 1, 2]),
        ("eve", [1, 0, 2], [3, 4, 1]),
    ):
        it = store.next_item("r", people[who])
        pos = {j: it["responses"].index(f"answer 0.{j}") for j in range(3)}
        label_original(
            store,
            people[who],
            it,
            ranking,
            scores={"helpful": [helpful[o] for o in sorted(range(3), key=lambda o: pos[o])]},
            edit="a better answer" if who == "eve" else None,
        )
    records, counts = store.export_with_counts("r")
    pairs = {
        (r["lineage"]["chosen_index"], r["lineage"]["rejected_index"]): r for r in records if r["kind"] == "preference"
    }
    assert {k: v["confidence"] for k, v in pairs.items()} == {(0, 1): 0.6667, (0, 2): 1.0, (1, 2): 0.6667}
    assert pairs[(0, 1)]["scores"] == {"chosen": {"helpful": 4.0}, "rejected": {"helpful": 2.6667}}
    sft = [r for r in records if r["kind"] == "sft"]
    assert sft == [
        {
            "kind": "sft",
            "messages": [
                {"role": "user", "content": "question 0"},
                {"role": "assistant", "content": "a better answer"},
            ],
            "lineage": {**sft[0]["lineage"], "annotator": "eve", "project": "r", "external_id": "q0"},
        }
    ]
    assert counts == {"pairs": 3, "sft": 1}

    store.create_project("bw", items(1, 4), kind="best_worst", assign=["ann"])
    label_original(store, people["ann"], store.next_item("bw", people["ann"]), {"best": 2, "worst": 0})
    got = {(r["lineage"]["chosen_index"], r["lineage"]["rejected_index"]) for r in store.export("bw")}
    assert got == {(2, 0), (2, 1), (2, 3), (1, 0), (3, 0)}


def test_gold_accuracy_per_annotator_and_gold_left_out_of_export(store, people):
    gold = [{"prompt": "question 9", "responses": ["answer 9.0", "answer 9.1"], "answer": 0}]
    store.create_project("p", items(1), gold=gold, assign=["ann", "bob"])
    label_all(store, "p", people["ann"], {0: 0, 9: 0})
    label_all(store, "p", people["bob"], {0: 0, 9: 1})
    a = store.agreement("p")
    acc = {x["name"]: (x["gold_items"], x["gold_accuracy"]) for x in a["annotators"]}
    assert acc == {"ann": (1, 1.0), "bob": (1, 0.0)} and a["gold_accuracy"] == 0.5 and a["gold_items"] == 1
    records, counts = store.export_with_counts("p")
    assert [r["lineage"]["external_id"] for r in records] == ["q0"] and counts["gold"] == 1
    assert store.disagreements("p") == []  # gold disagreement is an annotator's error, not the item's


def test_review_corrections_export_as_sft_and_pairs(store, people):
    item = store.enqueue_review("review", "hi", "hello", {"request_id": "r1", "confidence": 0.2})
    store.add_label(item, people["root"], None, scores={"quality": 2}, edit="Hello! How can I help?")
    records = store.export("review")
    assert [r["kind"] for r in records] == ["sft", "preference"]
    assert records[1]["chosen"] == "Hello! How can I help?" and records[1]["rejected"] == "hello"
    assert records[0]["lineage"]["review"] == {"request_id": "r1", "confidence": 0.2}
    assert records[1]["lineage"]["correction"] is True


def test_import_pairs_blinded_as_pairwise_items(store, people):
    pairs = [
        {"prompt": "question 0", "chosen": "answer 0.0", "rejected": "answer 0.1", "source": "old"},
        {
            "prompt": [{"role": "user", "content": "question 1"}],
            "chosen": [{"role": "assistant", "content": "answer 1.0"}],
            "rejected": [{"role": "assistant", "content": "answer 1.1"}],
        },
        {"id": "r", "prompt": "question 2", "ranking": ["answer 2.0", "answer 2.1", "answer 2.2"]},
    ]
    assert store.import_pairs("imported", pairs) == 5
    assert store.import_pairs("imported", pairs[:1]) == 1  # appends
    got = store.project("imported", people["root"])
    assert (got["kind"], got["items"]) == ("pairwise", 6)
    it = store.next_item("imported", people["root"])
    assert sorted(it["responses"]) == ["answer 0.0", "answer 0.1"] and it["prompt"] == "question 0"
    with pytest.raises(DataError, match=r"p.jsonl, record 1, field 'rejected'"):
        store.import_pairs("imported", [{"prompt": "x", "chosen": "y"}], source="p.jsonl")
    store.create_project("ranked", items(1, 3), kind="ranking")
    with pytest.raises(UserError, match="not pairwise"):
        store.import_pairs("ranked", pairs[:1])


# --- concurrency and PostgreSQL -------------------------------------------------------------------------
def concurrent_labels(url: str, users: int = 20, per_user: int = 25) -> None:
    """20 annotators x 25 labels each, all at once through one shared Store: every label lands, once."""
    import threading

    st = Store(url, kdf=FAST_KDF)
    try:
        people = [st.add_user(f"u{i}", "annotator", f"password-{i}") for i in range(users)]
        st.create_project("c", items(per_user), assign=[p["name"] for p in people], min_annotations=users)
        errors = []

        def annotate(person):
            try:
                while (it := st.next_item("c", person)) is not None:
                    st.add_label(it["id"], person, 0, rationale=f"{person['name']} {SQL}")
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(e))

        threads = [threading.Thread(target=annotate, args=(p,)) for p in people]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        a = st.agreement("c")
        assert a["labels"] == users * per_user and a["complete"] == per_user
        records, counts = st.export_with_counts("c")
        assert counts == {"pairs": per_user} and all(len(r["annotators"]) == users for r in records)
        with pytest.raises(InvalidLabel, match="already labelled"):
            st.add_label(records[0]["lineage"]["item_id"], people[0], 1)
        # one user submitting the same item from ten tabs at once: one label lands, nine are told why not
        st.create_project("race", items(1), assign=[people[0]["name"]])
        item = st.next_item("race", people[0])["id"]
        results = []
        barrier = threading.Barrier(10)

        def submit():
            barrier.wait()
            try:
                st.add_label(item, people[0], 0)
                results.append("ok")
            except InvalidLabel as e:
                results.append(str(e))

        threads = [threading.Thread(target=submit) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 10 and results.count("ok") == 1
        assert all("already labelled" in r for r in results if r != "ok")
    finally:
        st.close()


def test_concurrent_labels_sqlite(tmp_path):
    concurrent_labels(f"sqlite:///{tmp_path / 'c.db'}")


def test_concurrent_labels_postgres():
    from support import postgres_database

    with postgres_database() as url:
        concurrent_labels(url)


def test_round_trip_postgres():
    """The same API on PostgreSQL: users, sessions, a project, blinded labels, agreement, export, access."""
    from support import postgres_database

    with postgres_database() as url:
        st = Store(url, kdf=FAST_KDF)
        try:
            ann = st.add_user("ann", "annotator", "ann-password")
            st.add_user("bob", "annotator", "bob-password")
            assert st.authenticate("ann", "ann-password") == ann and st.authenticate("ann", "nope") is None
            token, csrf = st.create_session(ann["id"])
            assert st.session(token)["csrf"] == csrf
            st.record_login("ann", "c", False)
            assert st.login_failures("ann", "c", 60) == 1
            st.create_project("p", items(2) + [{"prompt": SQL, "responses": [SQL, "b"]}], assign=["ann"])
            st.create_project("q", items(1), assign=["bob"])
            with pytest.raises(AccessDenied):
                st.next_item("q", ann)
            while (it := st.next_item("p", ann)) is not None:
                if it["prompt"] == SQL:
                    st.add_label(it["id"], ann, it["responses"].index(SQL), rationale=SQL)
                else:
                    label_original(st, ann, it, int(it["prompt"].split()[-1]))
            records = st.export("p")
            assert sorted(r["chosen"] for r in records) == sorted(["answer 0.0", "answer 1.1", SQL])
            assert st.project("p", ann)["labels"] == 3 and st.agreement("p")["labels"] == 3
            assert st.enqueue_review("rq", "hi", "yo", {"request_id": 1}) > 0
        finally:
            st.close()


def test_items_unblinded_for_admin_tools_and_reorder(store, people):
    store.create_project("p", items(4), assign=["ann"])
    listed = store.items("p")
    assert [it["external_id"] for it in listed] == ["q0", "q1", "q2", "q3"]
    assert listed[2]["responses"] == ["answer 2.0", "answer 2.1"] and listed[2]["models"] == ["model0", "model1"]
    store.reorder("p", [listed[3]["id"], listed[1]["id"]])
    served = []
    while (it := store.next_item("p", people["ann"])) is not None:
        served.append(it["prompt"])
        store.add_label(it["id"], people["ann"], 0)
    assert served == ["question 3", "question 1", "question 0", "question 2"]
    with pytest.raises(UserError, match="not in project"):
        store.reorder("p", [10_000])


def test_rating_items_with_several_responses_export_by_total_score(store, people):
    """Totals per response: ann [7, 4, 4], bob [6, 6, 2] (helpful + harmless).
    (0,1): ann 0>1, bob even -> 0>1 holds 1 of 2, no strict majority, and ties hold half: left out as a tie.
    (0,2): both 0>2 -> confidence 1. (1,2): ann even, bob 1>2 -> likewise a tie."""
    rubric = {"criteria": [{"name": "helpful"}, {"name": "harmless"}]}
    store.create_project("rate", items(1, 3), kind="rating", rubric=rubric, assign=["ann", "bob"], min_annotations=2)
    for who, helpful, harmless in (("ann", [4, 2, 3], [3, 2, 1]), ("bob", [3, 3, 1], [3, 3, 1])):
        it = store.next_item("rate", people[who])
        pos = [int(t.rsplit(".", 1)[1]) for t in it["responses"]]  # original index at each shown position
        store.add_label(
            it["id"],
            people[who],
            None,
            scores={"helpful": [helpful[o] for o in pos], "harmless": [harmless[o] for o in pos]},
        )
    records, counts = store.export_with_counts("rate")
    assert [(r["chosen"], r["rejected"], r["confidence"]) for r in records] == [("answer 0.0", "answer 0.2", 1.0)]
    assert counts == {"pairs": 1, "tie": 2}
    assert records[0]["scores"]["chosen"] == {"helpful": 3.5, "harmless": 3.0}
    with pytest.raises(InvalidLabel):
        store.adjudicate(records[0]["lineage"]["item_id"], people["root"], None)


def test_names_and_ids_with_nul_are_refused_in_one_line(store):
    """Review: PostgreSQL text columns refuse NUL; a user, project or item id holding one was a driver error."""
    with pytest.raises(UserError, match="NUL"):
        store.add_user("a\x00b", "annotator", "a-password")
    with pytest.raises(UserError, match="NUL"):
        store.create_project("p\x00", items())
    with pytest.raises(DataError, match="NUL"):
        store.create_project("p", [{"id": "q\x00", "prompt": "x", "responses": ["a", "b"]}])
    assert store.user("a\x00b") is None and store.authenticate("a\x00b", "a-password") is None


def test_admins_adjudicating_one_item_at_once_postgres():
    """Review: adjudicate read "no adjudication yet" and inserted; two admins resolving the same item at the
    same moment on PostgreSQL (read committed) both inserted, and the loser got a unique-constraint 500.
    The later one now replaces the earlier, as a second adjudication always did."""
    import threading

    from support import postgres_database, postgres_url_or_skip

    postgres_url_or_skip()
    with postgres_database() as url:
        st = Store(url, kdf=FAST_KDF)
        try:
            admins = [st.add_user(f"root{k}", "admin", "root-password") for k in range(8)]
            st.create_project("adj", items(1))
            item = st.next_item("adj", admins[0])["id"]
            errors, barrier = [], threading.Barrier(len(admins))

            def resolve(admin):
                barrier.wait()
                try:
                    st.adjudicate(item, admin, 0)
                except Exception as e:  # noqa: BLE001 - any error is the failure under test
                    errors.append(repr(e))

            threads = [threading.Thread(target=resolve, args=(a,)) for a in admins]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            assert st.agreement("adj")["adjudicated"] == 1
        finally:
            st.close()


def test_a_cheaper_kdf_never_rehashes_a_stronger_hash_down(tmp_path):
    """Review: a successful login rehashed whenever the stored parameters differed from the store's, so a
    server started with ALIGNLINE_FAST_KDF=1 (the tests' setting) quietly weakened every hash it verified.
    Rehashing now only ever goes up."""
    from argon2 import extract_parameters

    from alignline.annotate.models import User

    url = f"sqlite:///{tmp_path / 'k.db'}"
    strong = Store(url, kdf={"time_cost": 2, "memory_cost": 2048, "parallelism": 1})
    strong.add_user("ann", "annotator", "ann-password")
    strong.close()
    weak = Store(url, kdf=FAST_KDF)
    assert weak.authenticate("ann", "ann-password")["name"] == "ann"
    with weak.tx() as s:
        params = extract_parameters(s.scalar(select_user(User, "ann")).password_hash)
    weak.close()
    assert (params.time_cost, params.memory_cost) == (2, 2048)
    again = Store(url, kdf={"time_cost": 3, "memory_cost": 4096, "parallelism": 1})
    assert again.authenticate("ann", "ann-password")["name"] == "ann"  # a stronger setting still upgrades
    with again.tx() as s:
        assert extract_parameters(s.scalar(select_user(User, "ann")).password_hash).memory_cost == 4096
    again.close()


def select_user(User, name):
    from sqlalchemy import select

    return select(User).where(User.name == name)


def test_the_blinding_cannot_be_recomputed_from_what_an_annotator_knows(tmp_path):
    """Review: the shuffle was seeded by the project's name and the item's position, and the gold slots by the
    name alone; both are shown to annotators (the code is open source), so one could recompute which items
    are gold and, for imported pairs (the file's chosen answer is response 0), which answer the file chose.
    The same project built twice must now differ: 40 two-response items keep one order with p = 2^-40."""
    from alignline.annotate.models import Item

    gold = [{"prompt": f"gold {i}", "responses": ["right", "wrong"], "answer": 0} for i in range(5)]
    seen = []
    for k in range(2):
        st = Store(f"sqlite:///{tmp_path / f'b{k}.db'}", kdf=FAST_KDF)
        st.create_project("same", items(40), gold=gold)
        with st.tx() as s:
            rows = list(s.scalars(select_item(Item)))
            seen.append(([r.meta["order"] for r in rows], [r.position for r in rows if r.is_gold]))
        st.close()
    assert seen[0][0] != seen[1][0] and seen[0][1] != seen[1][1]


def select_item(Item):
    from sqlalchemy import select

    return select(Item).order_by(Item.position)
