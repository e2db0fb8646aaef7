"""Account lifecycle and skips: `users.disabled`, an index for the per-client login throttle, and the `skips`
table (an annotator's put-off items).

Existing users stay enabled (the server default fills the new column); nothing else is rewritten.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, never batch mode: SQLite's batch copies `users` and drops the old table, and with
    # foreign keys on, that drop CASCADEs into sessions, assignments and labels (every label deleted; the
    # upgrade-from-0001 test caught it). SQLite adds a NOT NULL column with a constant default in place.
    op.add_column("users", sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_login_attempts_client_at", "login_attempts", ["client", "at"])
    op.create_table(
        "skips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "user_id", name="uq_skips_item_user"),
    )
    op.create_index("ix_skips_user_id", "skips", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_skips_user_id", table_name="skips")
    op.drop_table("skips")
    op.drop_index("ix_login_attempts_client_at", table_name="login_attempts")
    op.drop_column("users", "disabled")  # in place too (SQLite >= 3.35), for the same reason
