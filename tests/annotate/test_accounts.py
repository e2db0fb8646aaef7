"""Account lifecycle and login bookkeeping: disable / enable / new password end sessions server-side, a disabled
user's login fails like a wrong password (store, API, pages), login attempts older than the throttle window are
purged, and the CLI's `user disable | enable | password | list` with their exit codes."""

from __future__ import annotations

import time

import pytest

from alignline.annotate.store import FAST_KDF, AccessDenied, Store
from alignline.cli import main
from alignline.errors import UserError

PASSWORD = "first-password-1"
NEW_PASSWORD = "second-password-2"


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'acc.db'}", kdf=FAST_KDF)
    s.add_user("admin", "admin", PASSWORD)
    s.add_user("alice", "annotator", PASSWORD)
    s.create_project("chat", [{"prompt": "2+2?", "responses": ["4", "5"]}], assign=["alice"])
    yield s
    s.close()


def signed_in(store, name: str = "alice") -> str:
    user = store.authenticate(name, PASSWORD)
    assert user is not None
    return store.create_session(user["id"])[0]


def test_disable_ends_sessions_and_refuses_login_until_enabled(store):
    alice = store.user("alice")
    tokens = [signed_in(store), signed_in(store)]
    admin_token = signed_in(store, "admin")
    assert store.disable_user("alice") == 2  # both of alice's sessions, deleted
    assert all(store.session(t) is None for t in tokens)
    assert store.session(admin_token) is not None  # nobody else's
    assert store.authenticate("alice", PASSWORD) is None  # the right password, refused like a wrong one
    with pytest.raises(AccessDenied):  # a user dict kept from before opens nothing either
        store.projects_for(alice)
    assert [u["disabled"] for u in store.users()] == [False, True]
    assert store.enable_user("alice") == 0
    assert store.authenticate("alice", PASSWORD)["name"] == "alice"
    assert all(store.session(t) is None for t in tokens)  # enabling does not revive old sessions
    assert [p["name"] for p in store.projects_for(alice)] == ["chat"]  # nor lose anything else


def test_a_session_made_in_a_race_with_disabling_is_refused(store):
    user = store.authenticate("alice", PASSWORD)  # the password checked out ...
    store.disable_user("alice")  # ... the account is disabled ...
    token, _ = store.create_session(user["id"])  # ... and only then the session row is written
    assert store.session(token) is None


def test_new_password_ends_sessions_and_replaces_the_old_one(store):
    token = signed_in(store)
    assert store.set_password("alice", NEW_PASSWORD) == 1
    assert store.session(token) is None
    assert store.authenticate("alice", PASSWORD) is None
    assert store.authenticate("alice", NEW_PASSWORD)["name"] == "alice"
    with pytest.raises(UserError, match="shorter than 8"):
        store.set_password("alice", "short")
    with pytest.raises(UserError, match="no user named"):
        store.set_password("nobody", NEW_PASSWORD)
    with pytest.raises(UserError, match="no user named"):
        store.disable_user("nobody")


def test_a_rehash_on_login_keeps_the_other_sessions(store):
    from alignline.annotate.models import User

    def stored_hash() -> str:
        with store.tx() as s:
            return s.query(User).filter_by(name="alice").one().password_hash

    token, before = signed_in(store), stored_hash()
    stronger = Store(store.url, kdf={"time_cost": 2, "memory_cost": 2048, "parallelism": 1})
    try:
        assert stronger.authenticate("alice", PASSWORD) is not None  # rehashed upward, same password
        assert stored_hash() != before and "t=2" in stored_hash()
        assert store.session(token) is not None  # not a password change: nobody is signed out
    finally:
        stronger.close()


def test_old_login_attempts_are_purged_every_nth_record(store):
    from alignline.annotate.models import LoginAttempt

    now = time.time()
    with store.tx(write=True) as s:
        s.add_all(
            [
                LoginAttempt(name="x", client="c", ok=False, at=now - 7200),  # older than the default keep
                LoginAttempt(name="x", client="c", ok=False, at=now - 400),  # older than a 300 s window only
                LoginAttempt(name="x", client="c", ok=False, at=now - 10),
            ]
        )

    def count() -> int:
        with store.tx() as s:
            return s.query(LoginAttempt).count()

    store.purge_every = 1
    store.record_login("y", "c", False)  # the default keep (1 h): the 2 h old row goes
    assert count() == 3
    store.record_login("y", "c", False, keep_s=300)  # the web app's window: the 400 s old row goes too
    assert count() == 3  # 3 left: the 10 s old one and the two just recorded
    assert store.login_failures("x", "c", 300) == 1
    store.purge_every = 10**9  # and not on every record: between purges old rows may wait
    with store.tx(write=True) as s:
        s.add(LoginAttempt(name="x", client="c", ok=False, at=now - 7200))
    store.record_login("y", "c", False)
    assert count() == 5
    assert store.purge_logins(300) == 1


def test_the_web_login_purges_with_its_own_window(store):
    from alignline.annotate.models import LoginAttempt
    from alignline.annotate.web import auth

    with store.tx(write=True) as s:
        s.add(LoginAttempt(name="alice", client="c", ok=False, at=time.time() - auth.LOGIN_WINDOW_S - 5))
    store.purge_every = 1
    assert auth.log_in(store, "alice", PASSWORD, "c") is not None
    with store.tx() as s:
        assert [a.at > time.time() - auth.LOGIN_WINDOW_S for a in s.query(LoginAttempt)] == [True]


def test_a_disabled_user_gets_the_wrong_password_answer_from_the_api_and_the_pages(store):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from alignline.annotate.web.app import create_app

    c = TestClient(create_app(store))
    r = c.post("/api/login", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    csrf = r.json()["csrf_token"]
    assert c.get("/api/projects").status_code == 200
    store.disable_user("alice")
    assert c.get("/api/projects").status_code == 401  # the cookie's session is gone server-side
    assert c.post("/api/items/1/labels", json={"choice": 0}, headers={"X-CSRF-Token": csrf}).status_code == 401
    wrong = c.post("/api/login", json={"username": "alice", "password": "not-her-password"})
    disabled = c.post("/api/login", json={"username": "alice", "password": PASSWORD})
    assert disabled.status_code == wrong.status_code == 401 and disabled.json() == wrong.json()
    page = TestClient(create_app(store))
    form = page.get("/login")
    token = page.cookies.get("alignline_login")
    r = page.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 401 and "wrong user name or password" in r.text and form.status_code == 200
    store.enable_user("alice")
    assert c.post("/api/login", json={"username": "alice", "password": PASSWORD}).status_code == 200


# --- the CLI ---------------------------------------------------------------------------------------------------
def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_user_lifecycle_and_exit_codes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ALIGNLINE_FAST_KDF", "1")
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    pw, new, short = tmp_path / "pw", tmp_path / "new", tmp_path / "short"
    pw.write_text(PASSWORD + "\n")
    new.write_text(NEW_PASSWORD + "\n")
    short.write_text("abc\n")
    assert (
        run(capsys, "annotate", "user", "add", "ann", "--role", "annotator", "--password-file", str(pw), "--db", db)[0]
        == 0
    )
    st = Store(db, kdf=FAST_KDF)
    token = st.create_session(st.user("ann")["id"])[0]

    code, out, _ = run(capsys, "annotate", "user", "disable", "ann", "--db", db)
    assert code == 0 and "1 session(s) ended" in out and st.session(token) is None
    code, out, _ = run(capsys, "annotate", "user", "list", "--db", db)
    assert code == 0 and out.strip().split("\t") == ["1", "ann", "annotator", "disabled"]
    assert run(capsys, "annotate", "user", "enable", "ann", "--db", db)[0] == 0
    assert run(capsys, "annotate", "user", "list", "--db", db)[1].strip().split("\t") == ["1", "ann", "annotator"]

    token = st.create_session(st.user("ann")["id"])[0]
    code, out, _ = run(capsys, "annotate", "user", "password", "ann", "--password-file", str(new), "--db", db)
    assert code == 0 and "1 session(s) ended" in out and st.session(token) is None
    assert st.authenticate("ann", NEW_PASSWORD) is not None and st.authenticate("ann", PASSWORD) is None

    # bad input: one line, exit 2, nothing changed
    code, _, err = run(capsys, "annotate", "user", "password", "ann", "--password-file", str(short), "--db", db)
    assert code == 2 and "shorter than 8" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(
        capsys, "annotate", "user", "password", "ann", "--password-file", str(tmp_path / "none"), "--db", db
    )
    assert code == 2 and "cannot read the password file" in err and "Traceback" not in err
    for verb in ("disable", "enable"):
        code, _, err = run(capsys, "annotate", "user", verb, "nobody", "--db", db)
        assert code == 2 and "no user named 'nobody'" in err
    assert st.authenticate("ann", NEW_PASSWORD) is not None
    st.close()
