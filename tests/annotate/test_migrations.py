"""The shipped alembic migrations build exactly the models' schema, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import pytest

from alignline.annotate.db import alembic_config, make_engine, upgrade
from alignline.annotate.models import Base
from alignline.annotate.store import FAST_KDF, Store
from support import postgres_database


def schema_diff(url: str) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()


def revision(url: str) -> tuple[str | None, str]:
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return current, ScriptDirectory.from_config(alembic_config()).get_current_head()


def check_fresh_database(url: str) -> None:
    assert revision(url)[0] is None
    Store(url, kdf=FAST_KDF).close()  # opening migrates
    current, head = revision(url)
    assert current == head == "0002"
    assert schema_diff(url) == []
    Store(url, kdf=FAST_KDF).close()  # and opening again is a no-op
    assert revision(url)[0] == head


def test_sqlite_fresh_database_migrates_to_head_matching_the_models(tmp_path):
    check_fresh_database(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_postgres_fresh_database_migrates_to_head_matching_the_models():
    with postgres_database() as url:
        check_fresh_database(url)


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_upgrade_and_downgrade_round_trip(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'd.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.execution_options(write=True).begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table' AND name='labels'").all() == []
    upgrade(engine)
    engine.dispose()
    assert schema_diff(url) == []


def test_two_stores_opening_at_once_migrate_once(tmp_path, n=3):
    import threading

    url = f"sqlite:///{tmp_path / 'race.db'}"
    errors = []

    def open_one():
        try:
            Store(url, kdf=FAST_KDF).close()
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and revision(url)[0] == "0002"


def test_a_schema_from_a_newer_version_is_one_clear_error(tmp_path):
    from alignline.errors import UserError

    url = f"sqlite:///{tmp_path / 'newer.db'}"
    Store(url, kdf=FAST_KDF).close()
    engine = make_engine(url)
    with engine.execution_options(write=True).begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(UserError, match="has a schema this alignline does not know"):
        Store(url, kdf=FAST_KDF)


def check_upgrade_from_0001_keeps_data(url: str) -> None:
    """A database made by the first release (0001, with a user, a project, an item and a label in it) opens
    under this one: migrated to head in place, nothing lost, the user enabled, the new features working."""
    from alembic import command
    from sqlalchemy import text

    engine = make_engine(url)
    with engine.execution_options(write=True).begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        from argon2 import PasswordHasher

        seed_hash = PasswordHasher(**FAST_KDF).hash("old-password-1")  # a real hash: the old user logs in after
        conn.execute(
            text(
                "INSERT INTO users (id, name, role, password_hash, created_at) VALUES (1, 'old', 'annotator', :h, 1.0)"
            ),
            {"h": seed_hash},
        )
        conn.execute(
            text(
                "INSERT INTO projects (id, name, kind, min_annotations, created_at) "
                "VALUES (1, 'legacy', 'pairwise', 1, 1.0)"
            )
        )
        conn.execute(text("INSERT INTO assignments (project_id, user_id) VALUES (1, 1)"))
        for i in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO items (id, project_id, position, prompt, responses, meta, is_gold, "
                    "created_at) VALUES (:i, 1, :p, :prompt, :resp, :meta, false, 1.0)"
                ),
                {
                    "i": i,
                    "p": i - 1,
                    "prompt": f'"q{i}"',
                    "resp": '["a", "b"]',
                    "meta": '{"order": [0, 1], "models": null, "fields": {}}',
                },
            )
        conn.execute(text("INSERT INTO labels (item_id, user_id, choice, created_at) VALUES (1, 1, '0', 1.0)"))
        conn.execute(text("INSERT INTO login_attempts (name, client, ok, at) VALUES ('old', 'c', true, 1.0)"))
    engine.dispose()
    assert revision(url)[0] == "0001"

    store = Store(url, kdf=FAST_KDF)  # opening migrates 0001 -> head
    try:
        assert revision(url)[0] == "0002" and schema_diff(url) == []
        assert store.users() == [{"id": 1, "name": "old", "role": "annotator", "disabled": False}]
        old = store.authenticate("old", "old-password-1")
        assert old is not None and store.item(1, old)["label"]["choice"] == 0
        assert store.project("legacy", old)["remaining"] == 1 and store.agreement("legacy")["labels"] == 1
        store.skip_item(2, old)  # the new table works on old data
        assert store.next_item("legacy", old)["id"] == 2
        assert store.disable_user("old") == 0 and store.authenticate("old", "old-password-1") is None
    finally:
        store.close()


def test_sqlite_upgrade_from_0001_keeps_data(tmp_path):
    check_upgrade_from_0001_keeps_data(f"sqlite:///{tmp_path / 'old.db'}")


def test_postgres_upgrade_from_0001_keeps_data():
    with postgres_database() as url:
        check_upgrade_from_0001_keeps_data(url)
