"""Alembic environment: runs on the connection handed over by hub.store (or the configured URL)."""
from __future__ import annotations

from alembic import context
from sqlalchemy import pool

from hub.models import EXTERNAL_TABLES, metadata
from hub.store import make_engine

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    engine.pool = pool.NullPool(engine.pool._creator)  # noqa: SLF001 - one-off connection for migrations
    with engine.begin() as conn:
        _run_on(conn)


def _run_on(connection) -> None:  # noqa: ANN001
    context.configure(connection=connection, target_metadata=metadata, compare_type=True,
                      render_as_batch=connection.dialect.name == "sqlite",
                      include_object=lambda obj, name, type_, *a: not (type_ == "table" and name in EXTERNAL_TABLES))
    context.run_migrations()


run()
