"""The annotation app's JSON API and pages against the real Store (SQLite; one flow on PostgreSQL): the contract,
401/403/404/204/409/422/429, CSRF, cross-project isolation through the API and the pages, inert free text,
harmless SQL-looking input, security headers."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("fastapi")
from alignline.annotate.web.pages import FormError, criteria, label_from_form

PASSWORD = "correct horse battery staple"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
SQLI = "x'); DROP TABLE labels; --"
RUBRIC = {"criteria": [{"name": "helpfulness", "description": "answers the question"}]}


def seed(store) -> None:
    """admin, alice and bob; `chat` (alice, bob; 3 items, one with an XSS payload) and `secret` (bob only)."""
    for name, role in (("admin", "admin"), ("alice", "annotator"), ("bob", "annotator")):
        store.add_user(name, role, PASSWORD)
    store.create_project(
        "chat",
        [
            {"prompt": f"Say hi {XSS}", "responses": [f"hi {XSS}", "hello"]},
            {"prompt": "2+2?", "responses": ["4", "5"]},
            {"prompt": "Capital of France?", "responses": ["Paris", "Lyon"]},
        ],
        rubric=RUBRIC,
        assign=["alice", "bob"],
        min_annotations=2,
    )
    store.create_project("secret", [{"prompt": "TOP SECRET PROMPT", "responses": ["s1", "s2"]}], assign=["bob"])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One migrated, seeded SQLite file per module; each test works on a copy (migrating and seeding per
    test cost most of this module's time)."""
    from alignline.annotate.store import FAST_KDF, Store

    path = tmp_path_factory.mktemp("seeded") / "a.db"
    s = Store(f"sqlite:///{path}", kdf=FAST_KDF)
    seed(s)
    s.close()
    return path


@pytest.fixture
def store(seeded, tmp_path):
    import shutil

    from alignline.annotate.store import FAST_KDF, Store

    shutil.copy(seeded, tmp_path / "a.db")
    s = Store(f"sqlite:///{tmp_path / 'a.db'}", migrate=False, kdf=FAST_KDF)
    yield s
    s.close()


@pytest.fixture
def app(store):
    from alignline.annotate.web.app import create_app

    return create_app(store)


def client(app):
    from fastapi.testclient import TestClient

    return TestClient(app)


def login(c, name: str = "alice") -> str:
    r = c.post("/api/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["csrf_token"]


def item_id_of(store, project: str, prompt_part: str) -> int:
    admin = store.user("admin")
    for _ in range(10):
        item = store.next_item(project, admin)
        if item is None:
            break
        if prompt_part in json.dumps(item["prompt"]):
            return item["id"]
        store.add_label(item["id"], admin, 0)
    raise AssertionError(f"no item with {prompt_part!r}")


def test_login_contract_and_cookie_flags(app, store):
    from alignline.annotate.web.app import create_app

    c = client(app)
    r = c.post("/api/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"csrf_token", "user"} and body["user"]["name"] == "alice"
    assert body["user"]["role"] == "annotator" and "password" not in json.dumps(body)
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie and "secure" not in cookie
    r = client(create_app(store, secure_cookies=True)).post(
        "/api/login", json={"username": "bob", "password": PASSWORD}
    )
    assert "secure" in r.headers["set-cookie"].lower()
    assert c.get("/api/me").json()["user"]["name"] == "alice"


def test_unauthenticated_is_401(app):
    c = client(app)
    assert c.get("/api/projects").status_code == 401
    assert c.get("/api/projects/chat/next").status_code == 401
    assert c.post("/api/items/1/labels", json={"choice": 0}, headers={"X-CSRF-Token": "x"}).status_code == 401
    assert c.get("/api/projects/chat/export").status_code == 401
    assert c.get("/projects", follow_redirects=False).headers["location"] == "/login"


def test_login_is_rate_limited_per_name_and_client(app):
    c = client(app)
    for _ in range(5):
        assert c.post("/api/login", json={"username": "alice", "password": "wrong"}).status_code == 401
    r = c.post("/api/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # even the right password, until it clears
    assert c.post("/api/login", json={"username": "bob", "password": PASSWORD}).status_code == 200
    # a cross-site form cannot post JSON: a text/plain login is refused (login CSRF)
    r = c.post(
        "/api/login",
        content=json.dumps({"username": "bob", "password": PASSWORD}),
        headers={"content-type": "text/plain"},
    )
    assert r.status_code in (415, 422)


def test_projects_show_only_what_the_user_may_see(app):
    c = client(app)
    login(c, "alice")
    assert [p["name"] for p in c.get("/api/projects").json()] == ["chat"]
    c2 = client(app)
    login(c2, "admin")
    assert sorted(p["name"] for p in c2.get("/api/projects").json()) == ["chat", "secret"]


def test_next_label_csrf_and_204(app):
    c = client(app)
    csrf = login(c, "alice")
    item = c.get("/api/projects/chat/next").json()
    assert {"id", "prompt", "responses"} <= set(item) and "gold" not in item and "meta" not in item
    url = f"/api/items/{item['id']}/labels"
    assert c.post(url, json={"choice": 0}).status_code == 403
    assert c.post(url, json={"choice": 0}, headers={"X-CSRF-Token": csrf + "x"}).status_code == 403
    r = c.post(
        url,
        json={"choice": 0, "rationale": "clearer", "scores": {"helpfulness": [4, 2]}},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 201, r.text
    assert c.post(url, json={"choice": 1}, headers={"X-CSRF-Token": csrf}).status_code == 409  # one label each
    for _ in range(2):
        nxt = c.get("/api/projects/chat/next").json()
        assert nxt["id"] != item["id"]
        assert (
            c.post(f"/api/items/{nxt['id']}/labels", json={"choice": "tie"}, headers={"X-CSRF-Token": csrf}).status_code
            == 201
        )
    r = c.get("/api/projects/chat/next")
    assert r.status_code == 204 and r.content == b""


@pytest.mark.parametrize(
    "body",
    [{"choice": 7}, {"choice": "maybe"}, {}, {"choice": 0, "scores": {"nope": [1, 2]}}, {"choice": 0, "rationale": 5}],
)
def test_invalid_label_is_422_with_a_message(app, body):
    c = client(app)
    csrf = login(c, "alice")
    item = c.get("/api/projects/chat/next").json()
    r = c.post(f"/api/items/{item['id']}/labels", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]


def test_another_projects_item_is_404_through_the_api(app, store):
    secret = item_id_of(store, "secret", "TOP SECRET")
    c = client(app)
    csrf = login(c, "alice")
    for url in (f"/api/items/{secret}", "/api/projects/secret", "/api/projects/secret/next", "/api/items/999999"):
        r = c.get(url)
        assert r.status_code == 404 and "TOP SECRET" not in r.text, url
    r = c.post(f"/api/items/{secret}/labels", json={"choice": 0}, headers={"X-CSRF-Token": csrf})
    assert r.status_code in (403, 404)
    assert "TOP SECRET" not in c.get("/api/projects").text


def test_another_projects_item_is_404_through_the_pages(app, store):
    secret = item_id_of(store, "secret", "TOP SECRET")
    c = client(app)
    csrf = login(c, "alice")
    assert "secret" not in c.get("/projects").text.split("<main>")[1]
    for url in ("/projects/secret/annotate", "/projects/secret/dashboard", "/projects/secret/adjudicate"):
        r = c.get(url)
        assert r.status_code in (403, 404) and "TOP SECRET" not in r.text, url
    r = c.post(f"/projects/chat/items/{secret}/label", data={"choice": "0", "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 404 and "TOP SECRET" not in r.text


def test_admin_endpoints_refuse_annotators_and_serve_admins(app, store):
    c = client(app)
    csrf = login(c, "alice")
    for url in ("/api/projects/chat/agreement", "/api/projects/chat/disagreements", "/api/projects/chat/export"):
        assert c.get(url).status_code == 403, url
    assert c.post("/api/items/1/adjudicate", json={"choice": 0}, headers={"X-CSRF-Token": csrf}).status_code == 403
    assert c.get("/projects/chat/dashboard").status_code == 403
    a = client(app)
    login(a, "admin")
    agreement = a.get("/api/projects/chat/agreement").json()
    assert {"cohen", "fleiss", "krippendorff"} <= set(agreement)
    assert a.get("/api/projects/nosuch/agreement").status_code == 404


def test_disagreement_adjudication_and_export(app, store):
    item = item_id_of(store, "chat", "2+2")
    store.add_label(item, store.user("alice"), 0)
    store.add_label(item, store.user("bob"), 1)
    a = client(app)
    csrf = login(a, "admin")
    queue = a.get("/api/projects/chat/disagreements").json()
    assert [d["id"] for d in queue] == [item]
    assert a.post(f"/api/items/{item}/adjudicate", json={"choice": 0}).status_code == 403
    r = a.post(f"/api/items/{item}/adjudicate", json={"choice": 0}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert a.get("/api/projects/chat/disagreements").json() == []
    r = a.get("/api/projects/chat/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="chat.jsonl"' in r.headers["content-disposition"]
    records = [json.loads(line) for line in r.text.splitlines()]
    assert records and all("prompt" in rec for rec in records)
    assert any("2+2" in json.dumps(rec["prompt"]) for rec in records)


def test_sql_looking_input_is_harmless(app, store):
    c = client(app)
    assert c.post("/api/login", json={"username": "admin' OR '1'='1", "password": "' OR '1'='1"}).status_code == 401
    assert c.post("/api/login", json={"username": "admin'--", "password": "x"}).status_code == 401
    csrf = login(c, "alice")
    assert c.get("/api/projects/chat'%20OR%20'1'='1/next").status_code == 404
    assert c.get("/api/projects/secret'--/next").status_code == 404
    item = c.get("/api/projects/chat/next").json()
    r = c.post(
        f"/api/items/{item['id']}/labels",
        json={"choice": 1, "rationale": SQLI, "edit": SQLI},
        headers={"X-CSRF-Token": csrf},
    )
    assert r.status_code == 201
    # a second annotator's label: `chat` wants two, and an item short of them exports nothing (issue 17)
    store.add_label(item["id"], store.user("bob"), 0)
    exported = json.dumps(store.export("chat"))
    assert SQLI.replace("'", "") in exported.replace("'", "")  # stored verbatim; the labels table is still there
    assert len(c.get("/api/projects").json()) == 1


def test_security_headers_and_no_inline_script(app, store):
    item_id_of(store, "chat", "2+2")  # labels by admin so the adjudicate page has something to render
    c = client(app)
    r = c.get("/login")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    js = c.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    login(c, "admin")
    for url in (
        "/login",
        "/projects",
        "/projects/chat/annotate",
        "/projects/chat/dashboard",
        "/projects/chat/adjudicate",
        "/projects/nosuch/annotate",
    ):
        page = c.get(url).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), url  # every script is a file
        assert not re.search(r"\son[a-z]+=", page.replace("onerror=", "")), url  # no handler attributes
    assert c.get("/api/projects").headers["cache-control"] == "no-store"


def test_free_text_is_escaped_in_pages(app, store):
    item = item_id_of(store, "chat", "2+2")  # skips past nothing: the XSS item may come first or later
    store.add_label(item, store.user("alice"), 0, rationale=XSS)
    store.add_label(item, store.user("bob"), 1, rationale="no")
    c = client(app)
    login(c, "admin")
    pages = [c.get("/projects/chat/adjudicate").text]
    a = client(app)
    login(a, "alice")
    for _ in range(3):  # the annotate page, whichever item comes up, until the XSS one shows
        page = a.get("/projects/chat/annotate").text
        pages.append(page)
        if "Say hi" in page:
            break
        found = re.search(r"/items/(\d+)/label", page)
        store.add_label(int(found.group(1)), store.user("alice"), 0)
    joined = "\n".join(pages)
    assert "Say hi" in joined
    assert "<script>window.__xss" not in joined and "<img src=x" not in joined
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in joined and "&lt;img src=x onerror=" in joined


def test_page_forms_check_csrf(app, store):
    c = client(app)
    r = c.get("/login")
    assert r.status_code == 200
    r = c.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "forged"}, follow_redirects=False
    )
    assert r.status_code == 403 and "alignline_session" not in r.headers.get("set-cookie", "")
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/projects"
    page = c.get("/projects/chat/annotate").text
    action = re.search(r'action="(/projects/chat/items/\d+/label)"', page).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert c.post(action, data={"choice": "0"}, follow_redirects=False).status_code == 403
    assert c.post(action, data={"choice": "0", "csrf_token": "x"}, follow_redirects=False).status_code == 403
    r = c.post(
        action,
        data={
            "choice": "1",
            "csrf_token": csrf,
            "score_helpfulness_0": "2",
            "score_helpfulness_1": "5",
            "rationale": "B explains",
            "edit": "",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and "saved=" in r.headers["location"]
    assert "Saved" in c.get(r.headers["location"]).text
    r = c.post(action, data={"choice": "9", "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code in (409, 422)  # labelled already, or a bad choice: either way refused with a page
    assert c.post("/logout", data={"csrf_token": "x"}, follow_redirects=False).status_code == 403
    assert c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert c.get("/api/projects").status_code == 401


def test_logout_ends_the_session(app):
    c = client(app)
    csrf = login(c, "alice")
    assert c.post("/api/logout").status_code == 403
    assert c.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert c.get("/api/projects").status_code == 401


def test_label_from_form_per_kind():
    """ranking: ranks A=2, B=1, C=3 mean the order B, A, C = [1, 0, 2]."""
    assert label_from_form("pairwise", {"choice": "tie"}, 2)["choice"] == "tie"
    assert label_from_form("pairwise", {"choice": "1"}, 2)["choice"] == 1
    assert label_from_form("ranking", {"rank_0": "2", "rank_1": "1", "rank_2": "3"}, 3)["choice"] == [1, 0, 2]
    assert label_from_form("best_worst", {"best": "2", "worst": "0"}, 3)["choice"] == {"best": 2, "worst": 0}
    rated = label_from_form("rating", {"score_helpfulness_0": "4", "rationale": "  "}, 1, RUBRIC)
    assert rated == {"choice": None, "scores": {"helpfulness": [4]}, "rationale": None, "edit": None}
    for kind, form, n in (
        ("pairwise", {"choice": "2"}, 2),
        ("ranking", {"rank_0": "1", "rank_1": "1"}, 2),
        ("best_worst", {"best": "1", "worst": "1"}, 2),
        ("pairwise", {}, 2),
    ):
        with pytest.raises(FormError):
            label_from_form(kind, form, n)
    with pytest.raises(FormError):
        label_from_form("pairwise", {"choice": "0", "score_helpfulness_0": "3"}, 2, RUBRIC)  # B left blank
    assert criteria({"helpfulness": "useful", "harmless": {"scale": [1, 7]}})[1]["high"] == 7


def test_serve_with_a_bad_db_url_is_a_user_error():
    import argparse

    from alignline.annotate.web.cli import register
    from alignline.errors import UserError

    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)
    args = sub.choices["serve"].parse_args(["--db", "nosuchdb://x/y", "--port", "0"])
    with pytest.raises(UserError, match="nosuchdb"):
        args.func(args)


def test_serve_command_with_a_bad_db_url_is_one_line_exit_2(capsys):
    from alignline.cli import main

    assert main(["annotate", "serve", "--db", "nosuchdb://x/y"]) == 2  # in-process: the CLI's own error path
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "nosuchdb" in err and "Traceback" not in err


def test_the_flow_on_postgresql(tmp_path):
    from alignline.annotate.store import FAST_KDF, Store
    from alignline.annotate.web.app import create_app
    from support import postgres_database, postgres_url_or_skip

    postgres_url_or_skip()
    with postgres_database("alignline_web") as url:
        store = Store(url, kdf=FAST_KDF)
        seed(store)
        c = client(create_app(store))
        csrf = login(c, "alice")
        item = c.get("/api/projects/chat/next").json()
        assert (
            c.post(
                f"/api/items/{item['id']}/labels", json={"choice": 0, "rationale": SQLI}, headers={"X-CSRF-Token": csrf}
            ).status_code
            == 201
        )
        assert c.get(f"/api/items/{item_id_of(store, 'secret', 'TOP SECRET')}").status_code == 404
        assert c.get("/projects/chat/annotate").status_code == 200
        store.close()


def test_serve_refuses_a_port_in_use_in_one_line():
    import socket

    from alignline.annotate.web.serve import check_port
    from alignline.errors import UserError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(UserError, match="cannot listen"):
            check_port("127.0.0.1", taken.getsockname()[1])
    with pytest.raises(UserError, match="0 to 65535"):
        check_port("127.0.0.1", 70000)


@pytest.mark.parametrize("kind", ["ranking", "best_worst", "rating"])
def test_each_kind_has_an_annotate_page_whose_form_makes_a_label(store, app, kind):
    """ranking: ranks 2, 1, 3 for A, B, C mean the order B > A > C = [1, 0, 2] in shown positions."""
    responses = ["first answer", "second answer", "third answer"] if kind != "rating" else ["the answer"]
    store.create_project(
        f"k_{kind}",
        [{"prompt": f"a {kind} question", "responses": responses}],
        kind=kind,
        rubric=RUBRIC,
        assign=["alice"],
    )
    c = client(app)
    login(c, "alice")
    page = c.get(f"/projects/k_{kind}/annotate").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    action = re.search(r'action="(/projects/k_[a-z_]+/items/(\d+)/label)"', page)
    form = {"csrf_token": csrf, "edit": "a better answer"}
    if kind == "ranking":
        assert page.count('name="rank_') == 3
        form.update(rank_0="2", rank_1="1", rank_2="3")
    elif kind == "best_worst":
        assert 'name="best"' in page and 'name="worst"' in page
        form.update(best="2", worst="0")
    else:
        assert 'name="score_helpfulness_0"' in page
        form.update(score_helpfulness_0="4")
    r = c.post(action.group(1), data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    label = store.item(int(action.group(2)), store.user("alice"))["label"]
    expected = {"ranking": [1, 0, 2], "best_worst": {"best": 2, "worst": 0}, "rating": None}[kind]
    assert label["choice"] == expected and label["edit"] == "a better answer"
    if kind == "rating":
        assert label["scores"] == {"helpfulness": [4]}
    assert "All done" in c.get(f"/projects/k_{kind}/annotate").text


def test_concurrent_wrong_passwords_get_no_more_than_the_limit(store):
    """Review: the throttle was checked before the attempt was recorded, so a burst of parallel guesses all
    passed the check (5 allowed per window; 16 in parallel got 16 answers). Each attempt is now counted first."""
    import threading

    from alignline.annotate.web.auth import LOGIN_MAX_FAILURES, LoginThrottled, log_in

    answered, barrier = [], threading.Barrier(16)

    def guess(k: int) -> None:
        barrier.wait()
        try:
            answered.append(log_in(store, "alice", f"guess-{k}", "10.9.9.9"))
        except LoginThrottled:
            pass

    threads = [threading.Thread(target=guess, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answered == [None] * len(answered) and len(answered) <= LOGIN_MAX_FAILURES


def test_one_client_spraying_many_names_is_throttled(app):
    """Review: the limit was per name and client only, so one client trying one password on many names
    (password spraying) was never slowed; a client's failures across all names are capped too, and signing
    in to an account of one's own does not reset that cap."""
    from alignline.annotate.web.auth import LOGIN_MAX_CLIENT_FAILURES

    c = client(app)
    for k in range(LOGIN_MAX_CLIENT_FAILURES):
        r = c.post("/api/login", json={"username": f"user{k}", "password": "Winter2026!"})
        assert r.status_code == 401
        if k == 3:
            login(c, "bob")  # the attacker's own account
    r = c.post("/api/login", json={"username": "alice", "password": "Winter2026!"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def hostile_requests_answer_4xx(store) -> None:
    """Review: an item id past 64 bits was a 500 on both databases; a NUL character (valid JSON, "\\u0000") in
    a login name, a project name or a rationale was a 500 on PostgreSQL, whose text columns refuse it."""
    from fastapi.testclient import TestClient

    from alignline.annotate.web.app import create_app

    c = TestClient(create_app(store), raise_server_exceptions=False)
    assert c.post("/api/login", json={"username": "al\u0000ice", "password": "x"}).status_code == 401
    csrf = login(c, "alice")
    huge = 2**70
    assert c.get(f"/api/items/{huge}").status_code == 404
    assert c.get(f"/api/items/{2**40}").status_code == 404  # past PostgreSQL's 32-bit integer
    assert c.post(f"/api/items/{huge}/labels", json={"choice": 0}, headers={"X-CSRF-Token": csrf}).status_code == 404
    assert c.get(f"/projects/chat/items/{huge}/label").status_code in (404, 405)
    assert c.get("/api/projects/ch%00at").status_code == 404
    assert c.get("/api/projects/ch%00at/next").status_code == 404
    item = c.get("/api/projects/chat/next").json()
    r = c.post(
        f"/api/items/{item['id']}/labels", json={"choice": 0, "rationale": "a\u0000b"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    r = c.post(
        f"/api/items/{item['id']}/labels", json={"choice": 0, "edit": "a\u0000b"}, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 422
    assert (
        c.post(f"/api/items/{item['id']}/labels", json={"choice": 0}, headers={"X-CSRF-Token": csrf}).status_code == 201
    )


def test_hostile_ids_and_nul_characters_are_4xx_on_sqlite(store):
    hostile_requests_answer_4xx(store)


def test_hostile_ids_and_nul_characters_are_4xx_on_postgresql():
    from alignline.annotate.store import FAST_KDF, Store
    from support import postgres_database, postgres_url_or_skip

    postgres_url_or_skip()
    with postgres_database("alignline_web") as url:
        store = Store(url, kdf=FAST_KDF)
        seed(store)
        try:
            hostile_requests_answer_4xx(store)
        finally:
            store.close()


def test_a_spoofed_x_forwarded_for_does_not_reset_the_login_throttle(store):
    """Review: uvicorn trusts X-Forwarded-For from loopback by default, and `serve` binds loopback, so any
    client there (an SSH tunnel, a TCP proxy) could name a new address per guess and never be throttled.
    Proxy headers are now trusted only from the addresses given (`--forwarded-allow-ips`)."""
    import httpx

    from alignline.annotate.web.app import create_app
    from alignline.annotate.web.serve import ThreadedServer

    with ThreadedServer(create_app(store)) as base, httpx.Client(base_url=base) as c:
        codes = [
            c.post(
                "/api/login",
                json={"username": "alice", "password": "wrong"},
                headers={"X-Forwarded-For": f"203.0.113.{k}"},
            ).status_code
            for k in range(6)
        ]
    assert codes == [401] * 5 + [429]
    with ThreadedServer(create_app(store), forwarded_allow_ips="127.0.0.1") as base, httpx.Client(base_url=base) as c:
        r = c.post(
            "/api/login", json={"username": "alice", "password": PASSWORD}, headers={"X-Forwarded-For": "198.51.100.7"}
        )
    assert r.status_code == 200  # behind a trusted proxy the forwarded address is the client


def test_project_names_with_url_characters_work_in_the_pages_and_a_slash_is_refused(store, app):
    """Review: a project named "a/b" could be made but never reached (the route's {name} stops at '/', and
    the templates' urlencode keeps '/'); other URL characters must survive the links."""
    from alignline.errors import UserError

    for bad in ("a/b", ".", ".."):
        with pytest.raises(UserError, match="project name"):
            store.create_project(bad, [{"prompt": "p", "responses": ["x", "y"]}])
    name = "q? & #1 50% é"
    store.create_project(name, [{"prompt": "odd name", "responses": ["x", "y"]}], assign=["alice"])
    c = client(app)
    login(c, "alice")
    href = re.search(
        r'href="(/projects/[^"]*/annotate)"[^>]*>Annotate',
        c.get("/projects").text.replace("/projects/chat/annotate", ""),
    ).group(1)
    page = c.get(href.replace("&amp;", "&"))
    assert page.status_code == 200 and "odd name" in page.text


def test_an_annotator_does_not_learn_who_else_is_assigned(app):
    """Review: GET /api/projects/{name} listed every assigned annotator's name to annotators too (Label Studio
    and Argilla show a project's team to its managers only); admins still see it."""
    c = client(app)
    login(c, "alice")
    body = c.get("/api/projects/chat").json()
    assert "bob" not in json.dumps(body) and "assigned" not in body
    login(c, "admin")
    assert c.get("/api/projects/chat").json()["assigned"] == ["alice", "bob"]


def test_a_form_with_superscript_digits_is_a_form_error_not_a_500():
    """Review: the form parser tested str.isdigit, which is true for "²" that int() refuses: a forged form
    field (a rank, a choice, a score) was a ValueError and a 500."""
    for kind, form, n, rubric in (
        ("pairwise", {"choice": "²"}, 2, None),
        ("ranking", {"rank_0": "²", "rank_1": "1"}, 2, None),
        ("best_worst", {"best": "¹", "worst": "0"}, 2, None),
        ("rating", {"score_helpfulness_0": "²"}, 1, RUBRIC),
        ("rating", {"score_helpfulness_0": "1.²"}, 1, RUBRIC),
        ("rating", {"score_helpfulness_0": "--1"}, 1, RUBRIC),
    ):
        with pytest.raises(FormError):
            label_from_form(kind, form, n, rubric)
