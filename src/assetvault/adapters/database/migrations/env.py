"""Alembic environment. Called from Database.migrate() with an open connection, or from
the alembic CLI with ``sqlalchemy.url`` set (sync drivers are derived from async URLs)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from assetvault.adapters.database.tables import is_declared, metadata

config = context.config


def _sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_sync_url(config.get_main_option("sqlalchemy.url") or ""))
    with engine.connect() as conn:
        _run(conn)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copy
        compare_type=True,
        include_name=lambda name, type_, _parents: is_declared(name, type_),
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
