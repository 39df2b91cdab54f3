"""SQLite's own full-text table (search_fts) is kept only while the database search
backend uses it (migration 0017): the embedded default, which searches the Tantivy index,
writes nothing to it on its changes and searches as before; the database backend fills it
at its first search and keeps it current from then on."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from assetvault.adapters.search.sql import SqlSearchIndex
from assetvault.services import Services, build_services
from tests.factories import make_assets, make_settings

SQLITE = pytest.mark.parametrize("services", ["sqlite"], indirect=True)


async def paths(services: Services, words: str) -> list[str]:
    from assetvault.search.query import parse_request

    body: dict[str, Any] = {"query": [{"match": {"text": words}}], "limit": 50}
    result = await services.search.search(parse_request(body))
    return sorted(h["repositoryMetadata"]["repo:path"] for h in result["hits"]["results"])


async def full_text(services: Services) -> tuple[int, int]:
    """(rows of search_fts, whether its triggers keep it)."""
    async with services.db.reader() as r:
        rows = await r.fetch_one("SELECT count(*) FROM search_fts")
        kept = await r.fetch_one("SELECT kept FROM search_fts_state")
    assert rows is not None and kept is not None
    return int(rows[0]), int(kept[0])


@SQLITE
async def test_the_embedded_default_leaves_the_full_text_table_alone(services: Services) -> None:
    assert services.embedded_search is not None  # the default on SQLite: Tantivy
    await make_assets(services, [("lamp.jpg", {"dc:title": "brass lamp"}), ("cup.jpg", {})])
    await services.changes.set_properties("/content/dam/lamp.jpg", {"dc:title": "tin"}, user="u")
    await services.changes.set_properties(
        "/content/dam/cup.jpg", {"dc:description": "copper cup"}, user="u"
    )
    await services.changes.delete("/content/dam/cup.jpg", user="u")
    # Nothing written to SQLite's table on any of those changes...
    assert await full_text(services) == (0, 0)
    # ... and the search (Tantivy's) follows every one of them.
    assert await paths(services, "tin") == ["/content/dam/lamp.jpg"]
    assert await paths(services, "brass") == []
    assert await paths(services, "copper") == []


@SQLITE
async def test_the_database_backend_fills_the_table_at_its_first_search_then_keeps_it(
    services: Services,
) -> None:
    # Changes made on the embedded default: the table is not kept meanwhile.
    await make_assets(services, [("lamp.jpg", {"dc:title": "brass lamp"}), ("cup.jpg", {})])
    await services.changes.set_properties("/content/dam/lamp.jpg", {"dc:title": "tin"}, user="u")
    assert await full_text(services) == (0, 0)

    on_database = build_services(
        make_settings(
            services.settings.data_dir,
            database_url=services.settings.database_url,
            search_backend="database",
        )
    )
    try:
        index = on_database.search.index
        assert isinstance(index, SqlSearchIndex) and index.keeper is not None
        # The first search fills it from the tree as it is now.
        assert await paths(on_database, "tin") == ["/content/dam/lamp.jpg"]
        assert await paths(on_database, "brass") == []
        assert await full_text(on_database) == (2, 1)
        # From then on the triggers keep it, in each change's own transaction.
        await on_database.changes.set_properties(
            "/content/dam/cup.jpg", {"dc:description": "copper cup"}, user="u"
        )
        async with on_database.db.reader() as r:
            row = await r.fetch_one("SELECT rowid FROM search_fts WHERE search_fts MATCH 'copper'")
        assert row is not None
        assert await paths(on_database, "copper") == ["/content/dam/cup.jpg"]
        await on_database.changes.delete("/content/dam/cup.jpg", user="u")
        assert await paths(on_database, "copper") == []
        assert await full_text(on_database) == (1, 1)
        assert index.keeper.fills == 1  # filled once, not at every search
    finally:
        await on_database.close()


@SQLITE
async def test_a_table_kept_once_is_found_kept_by_another_process(services: Services) -> None:
    """Two processes of the database backend: the second finds it filled and kept."""
    settings = make_settings(
        services.settings.data_dir,
        database_url=services.settings.database_url,
        search_backend="database",
    )
    await make_assets(services, [("lamp.jpg", {"dc:title": "brass lamp"})])
    first, second = build_services(settings), build_services(settings)
    try:
        assert await paths(first, "brass") == ["/content/dam/lamp.jpg"]
        assert await paths(second, "brass") == ["/content/dam/lamp.jpg"]
        fills = []
        for one in (first, second):
            index = one.search.index
            assert isinstance(index, SqlSearchIndex) and index.keeper is not None
            fills.append(index.keeper.fills)
        assert fills == [1, 0]
        async with services.db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT count(*) FROM search_fts"))).scalar()
        assert rows == 1
    finally:
        await first.close()
        await second.close()
