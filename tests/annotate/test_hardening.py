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
    return [
        {"id": f"q{i}", "prompt": f"question {i}", "responses": [f"answer {i}.0", f"answer {i}.1"]} for i in range(n)
    ]


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
        answer = raw_request(
            base,
            "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000001\r\n\r\n",
        )
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
                yield big[i : i + 500]

        r = c.post(
            f"/api/items/{item['id']}/labels",
            content=chunks(),
            headers={"X-CSRF-Token": csrf, "content-type": "application/json"},
        )
        assert r.status_code == 413 and "larger than 2000 bytes" in r.json()["detail"]
        assert r.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.request.headers
        r = c.post(
            f"/api/items/{item['id']}/labels",
            content=big,
            headers={"X-CSRF-Token": csrf, "content-type": "application/json"},
        )
        assert r.status_code == 413
        r = c.post(
            "/login", content=b"username=" + b"a" * 3000, headers={"content-type": "application/x-www-form-urlencoded"}
        )
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


# --- the export rule: only settled items give training data ----------------------------------------------------
def label_as(store, user: dict, item_id: int, original: int | None, **extra) -> None:
    """A label naming the ORIGINAL response `original` (None: no choice, a rating)."""
    item = store.item(item_id, user)
    choice = None if original is None else item["responses"].index(store_text(store, item_id, original))
    store.add_label(item_id, user, choice, **extra)


def store_text(store, item_id: int, original: int) -> str:
    return next(it for p in store.project_names() for it in store.items(p) if it["id"] == item_id)["responses"][
        original
    ]


def ids(store, project: str) -> dict[str, int]:
    return {it["external_id"] or f"gold{it['position']}": it["id"] for it in store.items(project)}


@pytest.fixture
def people(store) -> dict[str, dict]:
    for name, role in (("ann", "annotator"), ("bob", "annotator"), ("root", "admin")):
        store.add_user(name, role, PASSWORD)
    return {name: store.user(name) for name in ("ann", "bob", "root")}


def test_an_edit_below_min_annotations_is_not_exported_until_a_second_label(store, people):
    store.create_project("p", two_items(1), assign=["ann", "bob"], min_annotations=2)
    q0 = ids(store, "p")["q0"]
    label_as(store, people["ann"], q0, 0, edit="ann's own answer")
    records, counts = store.export_with_counts("p")
    assert records == [] and counts == {"below_min_annotations": 1, "edits_left_out": 1}
    label_as(store, people["bob"], q0, 0)
    records, counts = store.export_with_counts("p")
    assert [r["kind"] for r in records] == ["sft", "preference"] and counts == {"sft": 1, "pairs": 1}
    assert records[0]["messages"][-1] == {"role": "assistant", "content": "ann's own answer"}
    assert records[0]["lineage"]["annotator"] == "ann"


def test_a_one_response_rating_follows_min_annotations(store, people):
    """A one-response item (the shape of serving's review queue) in a project wanting two labels: one
    annotator's correction is neither an SFT record nor a correction pair on its own."""
    store.create_project(
        "r",
        [{"id": "q0", "prompt": "hi", "responses": ["hello"]}],
        kind="rating",
        assign=["ann", "bob"],
        min_annotations=2,
    )
    q0 = ids(store, "r")["q0"]
    label_as(store, people["ann"], q0, None, scores={"quality": [2]}, edit="Hello! How can I help?")
    records, counts = store.export_with_counts("r")
    assert records == [] and counts == {"below_min_annotations": 1, "edits_left_out": 1}
    label_as(store, people["bob"], q0, None, scores={"quality": [3]})
    records, counts = store.export_with_counts("r")
    assert [(r["kind"], r.get("chosen")) for r in records] == [("sft", None), ("preference", "Hello! How can I help?")]
    assert records[1]["rejected"] == "hello" and counts == {"sft": 1, "corrections": 1}


def test_gold_items_give_no_edits_and_an_adjudication_settles_an_item(store, people):
    gold = [{"prompt": "2+2?", "responses": ["4", "5"], "answer": 0}]
    store.create_project("g", two_items(2), gold=gold, assign=["ann", "bob"], min_annotations=2)
    found = ids(store, "g")
    gold_id = next(v for k, v in found.items() if k.startswith("gold"))
    for who in ("ann", "bob"):  # two labels and an edit on the gold item: still not training data
        label_as(store, people[who], gold_id, 0, edit="four" if who == "ann" else None)
    label_as(store, people["ann"], found["q1"], 1, edit="a better answer 1")  # one label, then adjudicated
    records, counts = store.export_with_counts("g")
    assert records == [] and counts == {"gold": 1, "unlabelled": 1, "below_min_annotations": 1, "edits_left_out": 2}
    shown = store.item(found["q1"], people["root"])["responses"].index("answer 1.1")
    store.adjudicate(found["q1"], people["root"], shown)
    records, counts = store.export_with_counts("g")
    assert [r["kind"] for r in records] == ["sft", "preference"]
    assert records[0]["messages"][-1]["content"] == "a better answer 1"
    assert records[1]["chosen"] == "answer 1.1" and records[1]["lineage"]["adjudicated"] is True
    assert counts == {"gold": 1, "unlabelled": 1, "edits_left_out": 1, "sft": 1, "pairs": 1}


# --- the per-label export ---------------------------------------------------------------------------------------
def test_export_labels_writes_one_row_per_label(store, people, tmp_path, capsys, monkeypatch):
    from alignline.cli import main

    store.create_project("p", two_items(2), assign=["ann", "bob"], min_annotations=2)
    found = ids(store, "p")
    label_as(store, people["ann"], found["q0"], 1, rationale="shorter", edit="mine")
    label_as(store, people["bob"], found["q0"], 0)
    label_as(store, people["bob"], found["q1"], 1, rationale="only bob")
    out = tmp_path / "out" / "labels.jsonl"
    monkeypatch.delenv("ALIGNLINE_DB", raising=False)
    assert main(["annotate", "export", "p", "--labels", "--out", str(out), "--db", store.url]) == 0
    assert "wrote 3 labels of 2 items" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["external_id"], r["annotator"], r["answer"], r["rationale"]) for r in rows] == [
        ("q0", "ann", 1, "shorter"),
        ("q0", "bob", 0, None),
        ("q1", "bob", 1, "only bob"),
    ]
    first = rows[0]
    assert first["responses"] == ["answer 0.0", "answer 0.1"] and first["prompt"] == "question 0"
    assert first["edit"] == "mine" and first["gold"] is False and first["adjudication"] is None
    assert first["item_id"] == found["q0"] and first["annotator_id"] == people["ann"]["id"]
    assert isinstance(first["time"], float) and first["kind"] == "pairwise"
    assert not list(out.parent.glob(".*")) and sorted(p.name for p in out.parent.iterdir()) == ["labels.jsonl"]
    # the majority view of the same labels has no pair: q0 is split one to one, q1 has one label of two wanted
    assert [r["lineage"]["external_id"] for r in store.export("p") if r["kind"] == "preference"] == []


# --- user names and the per-account login cap ------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, what",
    [
        ("al ice", "whitespace (U+0020)"),
        ("alice\t", "whitespace (U+0009)"),
        ("al\u200bice", "a control or invisible character (U+200B)"),
        ("ali\u00a0ce", "whitespace (U+0020)"),  # NFKC: a no-break space is one
        ("bell\x07", "a control or invisible character (U+0007)"),
        ("new\u2028line", "whitespace (U+2028)"),
    ],
)
def test_user_names_with_whitespace_or_control_characters_are_refused(store, name, what):
    import re

    with pytest.raises(UserError, match=r"^user name .*: contains " + re.escape(what) + "; use letters"):
        store.add_user(name, "annotator", PASSWORD)
    assert store.users() == []


def test_user_names_are_nfkc_normalized_and_stay_case_sensitive(store):
    store.add_user("ALICE", "annotator", PASSWORD)
    with pytest.raises(UserError, match=r"user 'ＡＬＩＣＥ' already exists \(as 'ALICE'\)"):
        store.add_user("ＡＬＩＣＥ", "annotator", PASSWORD)
    assert store.add_user("ﬁona", "annotator", PASSWORD)["name"] == "fiona"  # the ligature folds too
    assert store.add_user("alice", "annotator", PASSWORD)["name"] == "alice"  # case is kept, as it always was
    assert store.user("ＡＬＩＣＥ")["name"] == "ALICE"
    assert store.authenticate("ＡＬＩＣＥ", PASSWORD)["name"] == "ALICE"
    store.create_project("p", two_items(1), assign=["ｆｉｏｎａ"])
    assert store.project("p", store.user("fiona"))["name"] == "p"  # assigned under its full-width spelling
    assert [u["name"] for u in store.users()] == ["ALICE", "fiona", "alice"]


def test_user_add_refuses_a_name_with_a_space_in_one_line(tmp_path, capsys, monkeypatch):
    from alignline.cli import main

    monkeypatch.setenv("ALIGNLINE_FAST_KDF", "1")
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    code = main(
        [
            "annotate",
            "user",
            "add",
            "ann smith",
            "--role",
            "annotator",
            "--password-file",
            str(pw),
            "--db",
            f"sqlite:///{tmp_path / 'a.db'}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "contains whitespace" in err


def test_an_account_is_locked_after_its_failures_from_many_addresses(store):
    from alignline.annotate.web.app import create_app
    from alignline.annotate.web.auth import LOGIN_MAX_ACCOUNT_FAILURES, LOGIN_MAX_FAILURES
    from alignline.annotate.web.serve import ThreadedServer

    assert LOGIN_MAX_ACCOUNT_FAILURES > LOGIN_MAX_FAILURES
    store.add_user("ALICE", "annotator", PASSWORD)
    store.add_user("bob", "annotator", PASSWORD)
    # X-Forwarded-For believed from loopback: each guess comes from an address of its own, under every
    # per-address cap, and spelled full-width half of the time (the same account)
    with (
        ThreadedServer(create_app(store), forwarded_allow_ips="127.0.0.1") as base,
        httpx.Client(base_url=base, timeout=30) as c,
    ):

        def login(name: str, password: str, address: str) -> int:
            return c.post(
                "/api/login", json={"username": name, "password": password}, headers={"X-Forwarded-For": address}
            ).status_code

        for k in range(LOGIN_MAX_ACCOUNT_FAILURES):
            assert login("ＡＬＩＣＥ" if k % 2 else "ALICE", "wrong-password", f"10.0.0.{k + 1}") == 401
        # the right password, from an address never seen: the account is locked for the window
        r = c.post(
            "/api/login", json={"username": "ALICE", "password": PASSWORD}, headers={"X-Forwarded-For": "10.9.9.9"}
        )
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert login("ＡＬＩＣＥ", PASSWORD, "10.9.9.8") == 429
        assert login("bob", PASSWORD, "10.0.0.1") == 200  # other accounts, the same addresses: unaffected
    assert store.login_failures("ALICE", None, 300, reset_on_success=False) == LOGIN_MAX_ACCOUNT_FAILURES


# --- the dashboard's agreement, cached on the project's revision ------------------------------------------------
def counting(monkeypatch, name: str) -> list:
    """Count the calls the store makes to results.`name` (the store imports it by name)."""
    import alignline.annotate.store as store_module

    calls, real = [], getattr(store_module, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, name, counted)
    return calls


def test_dashboard_agreement_is_not_recomputed_while_nothing_changes(store, people, monkeypatch):
    store.create_project("p", two_items(3), assign=["ann", "bob"], min_annotations=2)
    found = ids(store, "p")
    label_as(store, people["ann"], found["q0"], 0)
    label_as(store, people["bob"], found["q0"], 1)
    agreement, queue = counting(monkeypatch, "agreement_report"), counting(monkeypatch, "disagreements")
    with serve(store) as base, httpx.Client(base_url=base, timeout=30) as c:
        signed_in(c, "root")
        for _ in range(3):  # the dashboard page and its 5-second refresh, three times over
            assert c.get("/projects/p/dashboard").status_code == 200
            r = c.get("/api/projects/p/agreement")
            assert r.status_code == 200 and r.json()["labels"] == 2 and r.json()["disagreements"] == 1
        assert (len(agreement), len(queue)) == (1, 0)  # the page counts the queue from the report
        label_as(store, people["ann"], found["q1"], 0)  # a new label: one recomputation
        assert c.get("/api/projects/p/agreement").json()["labels"] == 3 and len(agreement) == 2
        assert c.get("/api/projects/p/agreement").status_code == 200 and len(agreement) == 2
        # a corrected label (same id, same count) is a change too
        item = store.item(found["q1"], people["bob"])
        store.replace_label(found["q1"], people["ann"], item["responses"].index("answer 1.1"), rationale="second look")
        assert c.get("/api/projects/p/agreement").status_code == 200 and len(agreement) == 3
        # an adjudication, and a second one replacing it in place
        assert c.get("/api/projects/p/disagreements").json()[0]["id"] == found["q0"] and len(queue) == 1
        assert c.get("/api/projects/p/disagreements").status_code == 200 and len(queue) == 1
        for original in (0, 1):
            shown = store.item(found["q0"], people["root"])["responses"].index(f"answer 0.{original}")
            store.adjudicate(found["q0"], people["root"], shown)
            a = c.get("/api/projects/p/agreement").json()
            assert a["adjudicated"] == 1 and a["disagreements"] == 0
        assert len(agreement) == 5
        store.add_items("p", [{"prompt": "question 9", "responses": ["a", "b"]}])
        assert c.get("/api/projects/p/agreement").json()["items"] == 4 and len(agreement) == 6


def test_the_cached_agreement_equals_a_fresh_one(store, people):
    """Another process (a second Store on the same file) labels: this store's cache sees the change."""
    from alignline.annotate.results import agreement_report
    from alignline.annotate.store import FAST_KDF, Store

    store.create_project("p", two_items(2), assign=["ann", "bob"], min_annotations=2)
    first = store.agreement("p")
    other = Store(store.url, kdf=FAST_KDF)
    try:
        label_as(other, other.user("ann"), ids(other, "p")["q0"], 0)
    finally:
        other.close()
    cached = store.agreement("p")
    assert cached is not first and cached["labels"] == 1
    assert store.agreement("p") is cached
    with store.tx() as s:
        p = store.project_row(s, "p")
        assert agreement_report(p, *store.labelled(s, p)) == cached


def test_a_slow_report_is_recomputed_at_most_once_per_backoff(store, people, monkeypatch):
    import alignline.annotate.report_cache as cache_module

    store.create_project("p", two_items(2), assign=["ann", "bob"])
    calls = counting(monkeypatch, "agreement_report")
    monkeypatch.setattr(cache_module, "REPORT_SLOW_S", 0.0)  # every report counts as slow
    monkeypatch.setattr(cache_module, "REPORT_BACKOFF", 1e9)
    assert store.agreement("p")["labels"] == 0
    label_as(store, people["ann"], ids(store, "p")["q0"], 0)
    assert store.agreement("p")["labels"] == 0 and len(calls) == 1  # changed, but backing off: the last report
    monkeypatch.setattr(cache_module, "REPORT_BACKOFF", 0)
    assert store.agreement("p")["labels"] == 1 and len(calls) == 2


def test_concurrent_requests_for_one_report_compute_it_once():
    import threading
    import time

    from alignline.annotate.report_cache import ReportCache

    cache, calls, results = ReportCache(), [], []

    def compute():
        calls.append(1)
        time.sleep(0.2)  # the others arrive while this runs
        return {"computed": len(calls)}

    threads = [
        threading.Thread(target=lambda: results.append(cache.get(("agreement", "p"), 1, compute))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1 and len(results) == 4 and all(r is results[0] for r in results)
    assert cache.get(("agreement", "p"), 2, compute) == {"computed": 2}  # a new revision: computed again


def test_names_export_rule_and_cached_agreement_on_postgres(monkeypatch):
    """The same on PostgreSQL: NFKC look-ups, the settled-items rule, the revision query, the per-account count."""
    from alignline.annotate.store import FAST_KDF, Store
    from support import postgres_database

    with postgres_database() as url:
        st = Store(url, kdf=FAST_KDF)
        try:
            st.add_user("ALICE", "annotator", PASSWORD)
            st.add_user("bob", "annotator", PASSWORD)
            with pytest.raises(UserError, match="already exists"):
                st.add_user("ＡＬＩＣＥ", "annotator", PASSWORD)
            assert st.authenticate("ＡＬＩＣＥ", PASSWORD)["name"] == "ALICE"
            st.create_project("p", two_items(1), assign=["ＡＬＩＣＥ", "bob"], min_annotations=2)
            q0 = ids(st, "p")["q0"]
            label_as(st, st.user("ALICE"), q0, 0, edit="alice's answer")
            assert st.export_with_counts("p") == ([], {"below_min_annotations": 1, "edits_left_out": 1})
            calls = counting(monkeypatch, "agreement_report")
            assert st.agreement("p")["labels"] == 1 and st.agreement("p")["labels"] == 1 and len(calls) == 1
            label_as(st, st.user("bob"), q0, 0)
            assert st.agreement("p")["labels"] == 2 and len(calls) == 2
            assert [r["kind"] for r in st.export("p")] == ["sft", "preference"]
            for k in range(3):
                st.record_login("ＡＬＩＣＥ" if k else "ALICE", f"10.0.0.{k}", False)
            assert st.login_failures("ALICE", None, 60, reset_on_success=False) == 3
        finally:
            st.close()


def test_serve_refuses_a_bad_body_limit_in_one_line(tmp_path, capsys, monkeypatch):
    from alignline.cli import main

    monkeypatch.delenv("ALIGNLINE_ANNOTATE_MAX_BODY_MB", raising=False)
    code = main(["annotate", "serve", "--max-body-mb", "0", "--port", "0", "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        "alignline: error: --max-body-mb 0.0: the body limit is a positive number of megabytes"
    ]
    assert not (tmp_path / "a.db").exists()  # refused before the database was opened
    monkeypatch.setenv("ALIGNLINE_ANNOTATE_MAX_BODY_MB", "ten")
    assert main(["annotate", "serve", "--port", "0", "--db", f"sqlite:///{tmp_path / 'a.db'}"]) == 2
    assert "$ALIGNLINE_ANNOTATE_MAX_BODY_MB 'ten'" in capsys.readouterr().err
