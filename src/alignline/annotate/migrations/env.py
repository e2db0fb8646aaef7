"""Alembic environment for the annotation database. `alignline.annotate.db.upgrade` passes an open
connection in `config.attributes["connection"]`; `sqlalchemy.url` is a fallback for `alembic` run by hand."""

from alembic import context

from alignline.annotate.db import make_engine
from alignline.annotate.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url"))
        with engine.execution_options(write=True).connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    # SQLite alters tables by copying them (batch mode); PostgreSQL alters them in place.
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=connection.dialect.name == "sqlite"
    )
    with context.begin_transaction():
        context.run_migrations()


run()
