"""What a request costs the database: the hot routes each run in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from assetvault.services import Services
from tests.api.adobe.conftest import adobe
from tests.conftest import Tokens
from tests.factories import bearer, make_assets, make_folder


@contextmanager
def hop_counter() -> Iterator[list[int]]:
    """Counts thread hops back into the loop: every thread (``to_thread``, aiosqlite's,
    an executor's) hands its result over with ``call_soon_threadsafe``."""
    loop = asyncio.get_running_loop()
    original = loop.call_soon_threadsafe
    count = [0]

    def counting(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return original(*args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    try:
        yield count
    finally:
        del loop.call_soon_threadsafe  # type: ignore[method-assign]


async def hops(request: Awaitable[httpx.Response]) -> int:
    with hop_counter() as count:
        response = await request
    assert response.status_code == 200, response.text
    return count[0]


async def transactions(services: Services, request: object) -> int:
    before = services.db.transactions
    response = await request  # type: ignore[misc]
    assert response.status_code == 200, response.text
    return services.db.transactions - before


async def test_hot_routes_run_in_one_transaction(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    await make_folder(client, tokens.write, "lib")
    assets = await make_assets(
        services,
        [(f"a{i:02}.jpg", {"dc:title": f"t{i}"}) for i in range(20)],
        folder="/content/dam/lib",
    )
    asset = assets[0]
    read, write = adobe(tokens.read), adobe(tokens.write)
    metadata = f"/adobe/assets/{asset.urn}/metadata"
    # A token is checked against the database once, then remembered for a few seconds.
    await client.get(metadata, headers=read)
    await client.get("/api/assets/lib.json", headers=bearer(tokens.write))

    assert await transactions(services, client.get(metadata, headers=read)) == 1
    assert await transactions(services, client.head(metadata, headers=read)) == 1
    listing = client.get("/api/assets/lib.json", headers=bearer(tokens.read))
    assert await transactions(services, listing) == 1
    one = client.get("/api/assets/lib/a00.jpg.json", headers=bearer(tokens.read))
    assert await transactions(services, one) == 1
    search = client.post(
        "/adobe/assets/search?allowUnsafeSearch=true",
        json={
            "query": [{"match": {"text": "*"}}],
            "sort": [{"field": "repositoryMetadata.repo:name"}],
        },
        headers=read,
    )
    assert await transactions(services, search) == 1
    patch = client.patch(
        metadata,
        json=[{"op": "add", "path": "/dc:title", "value": "new"}],
        headers={**write, "Content-Type": "application/json-patch+json", "If-Match": "*"},
    )
    assert await transactions(services, patch) == 1


async def test_a_point_read_takes_no_thread_hop_and_a_write_one_at_most(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    """On SQLite a point read runs in the loop and a write transaction hops once, for its
    commit (its fsync must not stall the loop); on PostgreSQL nothing hops at all."""
    await make_folder(client, tokens.write, "lib")
    (asset,) = await make_assets(
        services, [("a.jpg", {"dc:title": "t"})], folder="/content/dam/lib"
    )
    read, write = adobe(tokens.read), adobe(tokens.write)
    metadata = f"/adobe/assets/{asset.urn}/metadata"
    await client.get(metadata, headers=read)  # the tokens, checked once and remembered
    await client.get(metadata, headers=write)
    commits = 1 if services.db.is_sqlite else 0

    assert await hops(client.get(metadata, headers=read)) == 0
    assert await hops(client.get("/api/assets/lib.json", headers=bearer(tokens.read))) == 0
    before = services.db.write_hops
    patch = client.patch(
        metadata,
        json=[{"op": "add", "path": "/dc:title", "value": "new"}],
        headers={**write, "Content-Type": "application/json-patch+json", "If-Match": "*"},
    )
    assert await hops(patch) == commits
    assert services.db.write_hops - before == commits


async def test_a_patch_on_postgresql_is_six_statements(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    """On PostgreSQL each statement of a write is a round trip to the server, taken while
    the asset's row is locked. A PATCH reads the asset (locking it), writes it and gets
    its new row back in one UPDATE ... RETURNING, reads the ids of its folders, takes the
    outbox's lock, appends its event and notifies the outbox's consumers."""
    if services.db.is_sqlite:
        pytest.skip("on SQLite the statements run in the process; the commit's hop is counted")
    await make_folder(client, tokens.write, "lib")
    (asset,) = await make_assets(
        services, [("a.jpg", {"dc:title": "t"})], folder="/content/dam/lib"
    )
    write = adobe(tokens.write)
    metadata = f"/adobe/assets/{asset.urn}/metadata"
    await client.get(metadata, headers=write)  # the token, checked once and remembered
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        patch = await client.patch(
            metadata,
            json=[{"op": "add", "path": "/dc:title", "value": "new"}],
            headers={**write, "Content-Type": "application/json-patch+json", "If-Match": "*"},
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert patch.status_code == 200, patch.text
    assert len(statements) == 6, statements
