"""The Alembic migrations build exactly the schema the code declares, on both backends,
and can be undone."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from assetvault.adapters.database.tables import is_declared, metadata
from assetvault.services import Services
from tests.factories import migrate_down_and_up


def _diff(conn: Connection) -> list[object]:
    # SQLAlchemy cannot reflect SQLite's expression indexes (the title sort indexes, which
    # is_declared leaves out anyway) and says so once per index.
    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "include_name": lambda name, type_, _parents: is_declared(name, type_),
        },
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_tables(services: Services) -> None:
    async with services.db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []


async def test_downgrade_to_base_and_up_again(services: Services) -> None:
    await migrate_down_and_up(services, "base")
    async with services.db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
    assert (await services.tree.get("/content/dam")).kind == "folder"
