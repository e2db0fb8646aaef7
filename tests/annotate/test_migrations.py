"""The shipped alembic migrations build exactly the models' schema, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import pytest

from alignline.annotate.db import alembic_config, make_engine, upgrade
from alignline.annotate.models import Base
from alignline.annotate.store import FAST_KDF, Store
from alignline.testing import postgres_database


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
