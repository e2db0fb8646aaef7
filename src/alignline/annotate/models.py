"""The annotation database's tables (SQLAlchemy 2 declarative). The migrations in `migrations/versions/`
create exactly this schema (tested with alembic's `compare_metadata` on SQLite and PostgreSQL).

Times are float seconds since the epoch: the same on every backend, no time-zone conversions.
Responses are stored in the order annotators see them (shuffled per item); `Item.meta["order"]` maps
each shown position back to the original one, and labels are stored in ORIGINAL indices, so exports
do not depend on the shuffle. Model names and extra record fields live in `meta`, which no annotator sees.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

KINDS = ("pairwise", "ranking", "best_worst", "rating")
ROLES = ("annotator", "admin")


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)  # argon2id, PHC string
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    # a disabled account cannot sign in and its sessions are gone; its labels stay (agreement, export)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())


class Session(Base):
    """A login. Only the SHA-256 of the token is kept: a leaked database does not log anyone in."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    csrf: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False)


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    # (name, client, at): the per-name throttle; (client, at): the per-client one, across all names
    __table_args__ = (
        Index("ix_login_attempts_name_client_at", "name", "client", "at"),
        Index("ix_login_attempts_client_at", "client", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    client: Mapped[str] = mapped_column(String(200), nullable=False)
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)
    at: Mapped[float] = mapped_column(Float, nullable=False)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    rubric: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    min_annotations: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("project_id", "user_id", name="uq_assignments_project_user"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (Index("ix_items_project_position", "project_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)  # the serving order (gold mixed in)
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    prompt: Mapped[object] = mapped_column(JSON, nullable=False)  # a string or a message list
    responses: Mapped[list] = mapped_column(JSON, nullable=False)  # in the order shown
    meta: Mapped[dict] = mapped_column(JSON, nullable=False)  # order, models, extra fields, review lineage
    is_gold: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    gold: Mapped[object | None] = mapped_column(JSON, nullable=True)  # the known answer, original indices
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class Label(Base):
    """One annotator's answer on one item; the unique constraint is what makes concurrent submits safe."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("item_id", "user_id", name="uq_labels_item_user"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), nullable=False, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    choice: Mapped[object | None] = mapped_column(JSON, nullable=True)  # original indices
    scores: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # {criterion: [score per original response]}
    rationale: Mapped[str | None] = mapped_column(Text, nullable=True)
    edit: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class Skip(Base):
    """An annotator put this item off: it goes to the back of their queue (oldest skip first) until the rest are
    done. One row per (item, user); `count` says how often, `at` when last."""

    __tablename__ = "skips"
    __table_args__ = (UniqueConstraint("item_id", "user_id", name="uq_skips_item_user"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    at: Mapped[float] = mapped_column(Float, nullable=False)


class Adjudication(Base):
    __tablename__ = "adjudications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True, nullable=False)
    admin_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    choice: Mapped[object | None] = mapped_column(JSON, nullable=True)  # original indices
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class ReviewEntry(Base):
    """An answer `alignline serve` routed to humans; it is also an item (a one-response rating) in its project."""

    __tablename__ = "review_queue"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), unique=True, nullable=False)
    meta: Mapped[dict] = mapped_column(JSON, nullable=False)  # the request's lineage (request id, model, score)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
