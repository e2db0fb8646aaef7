"""The run registry's database: one `runs` table and a `registry_schema` row, SQLite or PostgreSQL.

Where it is: `--registry URL`, else `$ALIGNLINE_REGISTRY`, else `sqlite:///./runs/registry.db` (next to the run
directories the recipes write, in the working directory, as MLflow keeps `./mlflow.db` and `./mlruns` there).
`ALIGNLINE_REGISTRY=off` records nothing. PostgreSQL through psycopg 3: `postgresql://user:pw@host/name`.

Why no alembic (the annotation store has it): the registry is one append-mostly table whose searchable columns
are few and whose record is a JSON document (`body`). A new field goes into the document, not a migration; a
column change would bump `SCHEMA_VERSION`, and a database newer than this code is refused in one line rather than
written to wrongly. `create_all` is idempotent, so opening creates what is missing and nothing else.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from sqlalchemy import JSON, Column, Float, Integer, MetaData, String, Table, Text, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from alignline.errors import UserError

ENV = "ALIGNLINE_REGISTRY"
DEFAULT_PATH = Path("runs") / "registry.db"
OFF = ("off", "none", "0", "false")
SCHEMA_VERSION = 1

metadata = MetaData()
runs_table = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False, index=True),
    Column("name", Text),
    Column("status", String(16), nullable=False),
    Column("started", Float, index=True),
    Column("finished", Float),
    Column("run_dir", Text, index=True),
    Column("parent_model", Text),
    Column("parent_run", String(32)),
    Column("git_commit", String(64)),
    Column("started_by", Text),
    Column("body", JSON, nullable=False),
)
schema_table = Table("registry_schema", metadata, Column("version", Integer, primary_key=True))

COLUMNS = ("id", "kind", "name", "status", "started", "finished", "run_dir", "parent_model", "parent_run", "git_commit")


@dataclass
class RunEntry:
    """One recorded run. The columns are searchable; the rest is the JSON `body`."""

    id: str
    kind: str
    """train | eval | gate | pipeline"""
    status: str
    """completed | failed (running: recorded at the start by a caller that updates it later)"""
    started: float
    """Unix time."""
    finished: float | None = None
    name: str | None = None
    run_dir: str | None = None
    """The run's directory (train: output_dir; eval/gate: --out), absolute."""
    parent_model: str | None = None
    """The model it trained from or evaluated, as given."""
    parent_run: str | None = None
    """The registered run whose output `parent_model` is (lineage)."""
    git_commit: str | None = None
    """The commit of the working directory's repository, None outside one."""
    started_by: dict = field(default_factory=dict)
    """user (user@host), command (the command line), ci (the CI variables set, or None)."""
    config: dict = field(default_factory=dict)
    data: list = field(default_factory=list)
    """Each data file: path, sha256, role/counts as the run recorded them."""
    packages: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    gates: dict | None = None
    artifacts: list = field(default_factory=list)
    error: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunEntry:
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        entry = cls(**known)
        entry.extra.update(extra)
        return entry


def registry_url(url: str | None = None) -> str | None:
    """`url`, else $ALIGNLINE_REGISTRY, else the SQLite file `./runs/registry.db`; None when recording is off.
    A bad URL is a UserError (one line)."""
    raw = url or os.environ.get(ENV) or f"sqlite:///{Path.cwd() / DEFAULT_PATH}"
    if raw.strip().lower() in OFF:
        return None
    if "://" not in raw:  # a bare path: a SQLite file
        raw = f"sqlite:///{Path(raw).expanduser().resolve()}"
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise UserError(
            f"registry URL {raw!r} is not a URL (sqlite:///path.db or postgresql://user:pw@host/name)"
        ) from None
    scheme = parsed.drivername
    if scheme in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif scheme not in ("sqlite", "postgresql+psycopg"):
        raise UserError(f"registry URL {shown(raw)}: scheme {scheme!r} is not supported (sqlite or postgresql)")
    return parsed.render_as_string(hide_password=False)


def shown(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


class Registry:
    """The runs of one database. Each call is its own short transaction."""

    def __init__(self, url: str):
        self.url = url
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            db = parsed.database or ""
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url, connect_args={"timeout": 30})
        else:  # a server that does not answer is an error in seconds, not a hang
            self.engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
        try:
            self._prepare()
        except SQLAlchemyError as e:
            self.engine.dispose()
            raise UserError(f"cannot open the run registry {shown(url)}: {first_line(e)}") from None

    def _prepare(self) -> None:
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            found = conn.execute(select(schema_table.c.version)).scalars().all()
            if not found:
                conn.execute(schema_table.insert().values(version=SCHEMA_VERSION))
            elif max(found) > SCHEMA_VERSION:
                raise UserError(
                    f"the run registry {shown(self.url)} has schema version {max(found)}, newer than this "
                    f"alignline's {SCHEMA_VERSION}: upgrade alignline"
                )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def put(self, entry: RunEntry) -> None:
        """Insert the run, or replace it when its id is there (a run recorded at its start and again at its end)."""
        row = _row(entry)
        with self.engine.begin() as conn:
            exists = conn.execute(select(runs_table.c.id).where(runs_table.c.id == entry.id)).first()
            if exists:
                conn.execute(runs_table.update().where(runs_table.c.id == entry.id).values(**row))
            else:
                conn.execute(runs_table.insert().values(**row))

    def list(self, kind: str | None = None, limit: int | None = None) -> list[RunEntry]:
        """Newest first."""
        query = select(runs_table).order_by(runs_table.c.started.desc())
        if kind:
            query = query.where(runs_table.c.kind == kind)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(query).mappings()]

    def get(self, ref: str) -> RunEntry | None:
        """The run whose id is `ref` or starts with it (unique); None when none does. Several: UserError."""
        with self.engine.connect() as conn:
            rows = list(
                conn.execute(select(runs_table).where(runs_table.c.id.like(_escape_like(ref) + "%", escape="\\")))
                .mappings()
                .all()
            )
        exact = [r for r in rows if r["id"] == ref]
        if exact:
            return _entry(exact[0])
        if len(rows) > 1:
            raise UserError(f"run {ref!r} is ambiguous: {', '.join(sorted(r['id'][:12] for r in rows)[:5])} ...")
        return _entry(rows[0]) if rows else None

    def by_dir(self, run_dir: str | Path, kind: str | None = None) -> RunEntry | None:
        """The newest run recorded for a directory (absolute), completed ones first."""
        query = select(runs_table).where(runs_table.c.run_dir == str(Path(run_dir).resolve()))
        if kind:
            query = query.where(runs_table.c.kind == kind)
        with self.engine.connect() as conn:
            rows = [_entry(r) for r in conn.execute(query.order_by(runs_table.c.started.desc())).mappings()]
        done = [r for r in rows if r.status == "completed"]
        return (done or rows or [None])[0]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _row(entry: RunEntry) -> dict:
    data = entry.to_dict()
    row = {k: data.pop(k) for k in COLUMNS}
    by = data.get("started_by") or {}
    row["started_by"] = by.get("user")
    row["body"] = data
    return row


def _entry(row) -> RunEntry:
    body = dict(row["body"] or {})
    body.update({k: row[k] for k in COLUMNS})
    return RunEntry.from_dict(body)


def first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0] if text else type(error).__name__
