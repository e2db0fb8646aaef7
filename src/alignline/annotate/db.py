"""Opening the annotation database: the URL, the engine, and the migrations run on open.

SQLite (the default, a file in the working directory) gets WAL mode (readers never wait for the writer),
a 30 s busy timeout and foreign keys on; every write transaction starts with BEGIN IMMEDIATE, because a
deferred transaction that reads first and writes second fails at once (SQLITE_BUSY, no waiting) when
another writer got in between, which is exactly what 20 annotators submitting together do.
PostgreSQL through psycopg 3 (`postgresql+psycopg://...`; plain `postgresql://` is read that way).
"""

from __future__ import annotations

import os
from pathlib import Path

from alignline.errors import UserError

DEFAULT_FILE = "alignline-annotate.db"
MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
# A constant key for pg_advisory_xact_lock: two workers opening one database migrate one after the other.
MIGRATION_LOCK = 7_310_413


def add_db_flag(p) -> None:
    """The `--db URL` flag every `alignline annotate` subcommand takes (argparse only: nothing loads)."""
    p.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="database URL: sqlite:///path.db or postgresql+psycopg://user:pw@host/name "
        "(default: $ALIGNLINE_DB, else sqlite:///./alignline-annotate.db)",
    )


def resolve_db_url(url: str | None) -> str:
    """--db URL, else $ALIGNLINE_DB, else sqlite:///<cwd>/alignline-annotate.db; a bad URL -> UserError."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    raw = url or os.environ.get("ALIGNLINE_DB") or f"sqlite:///{Path.cwd() / DEFAULT_FILE}"
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise UserError(
            f"database URL {raw!r} is not a URL (sqlite:///path.db or "
            "postgresql+psycopg://user:password@host:5432/name)"
        ) from None
    scheme = parsed.drivername
    if scheme in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif scheme not in SCHEMES:
        raise UserError(
            f"database URL {shown(raw)}: scheme {scheme!r} is not supported "
            "(sqlite:///path.db or postgresql+psycopg://user:password@host/name)"
        )
    return parsed.render_as_string(hide_password=False)


def shown(url) -> str:
    """The URL with its password masked, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(str(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as given
        return str(url)


def make_engine(url: str):
    """An engine for `url`, with the SQLite settings above; nothing is connected yet."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import StaticPool

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # connect_timeout: a server that does not answer is an error in seconds, not a hang
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            pool_timeout=60,
            connect_args={"connect_timeout": 10},
        )
    memory = parsed.database in (None, "", ":memory:")
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, **({"poolclass": StaticPool} if memory else {})
    )

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own would be deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


def upgrade(engine) -> None:
    """Bring the schema to the newest migration (alembic, config built here: users need no alembic.ini)."""
    from alembic import command

    with engine.execution_options(write=True).begin() as conn:
        if conn.dialect.name == "postgresql":
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        command.upgrade(alembic_config(conn), "head")


def alembic_config(connection=None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def open_error(url: str, error: Exception) -> UserError:
    """One line for a database that cannot be opened (unreachable server, bad credentials, unwritable file)."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    reason = text[0] if text else type(error).__name__
    hint = ""
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        db = make_url(url).database or ""
        if db and db != ":memory:" and not Path(db).parent.is_dir():
            hint = f" (the directory {Path(db).parent} does not exist)"
        elif db and db != ":memory:":
            hint = f" (is {Path(db).parent} writable?)"
    return UserError(f"cannot open the annotation database {shown(url)}: {reason}{hint}")
