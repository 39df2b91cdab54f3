"""A reset on PostgreSQL leaves the database as a freshly migrated one: every table's
rows (the root folder's id and times aside, which each fresh database makes anew) and
every sequence, with the tokens kept or not and the shared secrets always kept."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from assetvault.adapters.database.secrets import plain_dsn
from assetvault.services import Services
from tests.factories import make_assets
from tests.pg import TEMPLATE, with_database

VOLATILE = {"nodes": ("id", "created_at", "modified_at")}


async def contents(dsn: str, skip: set[str]) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        found: dict[str, Any] = {}
        for (table,) in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ):
            if table in skip:
                continue
            rows = []
            for row in await conn.fetch(f'SELECT * FROM "{table}"'):
                values = dict(row)
                for column in VOLATILE.get(table, ()):
                    values.pop(column)
                rows.append(sorted((k, repr(v)) for k, v in values.items()))
            found[table] = sorted(rows)
        for name, last in await conn.fetch(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()"
        ):
            found[f"sequence {name}"] = last  # None: never used, as on a fresh database
        return found
    finally:
        await conn.close()


async def fill(services: Services) -> None:
    """Rows in as many tables as a short use makes: assets (outbox, jobs, versions),
    a folder, an event registration, a token."""
    await services.tree.create_folder("/content/dam", "rocks", user="writer")
    await make_assets(services, [("granite.jpg", {}), ("basalt.jpg", {})])
    await make_assets(services, [("slate.jpg", {})], folder="/content/dam/rocks")
    await services.auth.create_token("someone", "write")
    _ = services.settings.secret_key  # the shared secret made


@pytest.mark.parametrize("keep_tokens", [True, False])
async def test_a_reset_database_equals_a_freshly_migrated_one(
    services: Services, postgres_admin_url: str, keep_tokens: bool
) -> None:
    if services.db.is_sqlite:
        pytest.skip("a reset on SQLite loads a freshly migrated file (tests/e2e)")
    fresh = with_database(postgres_admin_url, TEMPLATE)
    live = plain_dsn(services.db.url)
    before = await contents(fresh, {"api_tokens", "shared_secrets"})
    await fill(services)
    tokens = (await contents(live, set()))["api_tokens"]
    secrets = (await contents(live, set()))["shared_secrets"]
    assert secrets and tokens
    assert await contents(live, {"api_tokens", "shared_secrets"}) != before

    await services.snapshots.reset(keep_tokens=keep_tokens)

    after = await contents(live, set())
    assert after.pop("shared_secrets") == secrets  # other machines hold them too
    assert after.pop("api_tokens") == (tokens if keep_tokens else [])
    assert after == before
    assert len(after["nodes"]) == 1  # the root folder
