"""The database search backend's full-text index follows the tree in the same
transaction, through every kind of change, and is built for assets that existed before
the search migration (SQLite's search_fts, PostgreSQL's search_tsv)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from assetvault.search.query import parse_request
from assetvault.services import Services
from tests.factories import make_assets, migrate_down_and_up


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"search_backend": "database"}


async def hits(services: Services, words: str) -> list[str]:
    body: dict[str, Any] = {"query": [{"match": {"text": words}}], "limit": 50}
    result = await services.search.search(parse_request(body))
    return sorted(h["repositoryMetadata"]["repo:path"] for h in result["hits"]["results"])


async def index_matches_tree(services: Services) -> None:
    """On SQLite: one full-text row per asset, holding the asset's name (a missed delete
    would leave a row behind whose number a later asset reuses)."""
    if not services.db.is_sqlite:
        return
    async with services.db.read() as conn:
        rows = await conn.execute(
            text(
                "SELECT n.name, f.name FROM nodes n FULL OUTER JOIN search_fts f "
                "ON f.rowid = n.doc_id WHERE n.kind = 'asset' OR n.kind IS NULL"
            )
        )
        pairs = rows.all()
    assert pairs and all(a == b for a, b in pairs), pairs


async def test_every_change_reaches_the_index(services: Services) -> None:
    await services.tree.create_folder("/content/dam", "box", user="u")
    await make_assets(
        services, [("lamp.jpg", {"dc:title": "brass lamp"})], folder="/content/dam/box"
    )
    await make_assets(services, [("chair.jpg", {"dc:description": "oak chair"})])
    assert await hits(services, "brass") == ["/content/dam/box/lamp.jpg"]
    await index_matches_tree(services)

    await services.changes.copy(
        "/content/dam/box", "/content/dam/crate", overwrite=False, user="u", depth="infinity"
    )
    assert await hits(services, "brass") == [
        "/content/dam/box/lamp.jpg",
        "/content/dam/crate/lamp.jpg",
    ]
    await services.changes.set_properties(
        "/content/dam/crate/lamp.jpg", {"dc:title": "tin"}, user="u"
    )
    assert await hits(services, "tin") == ["/content/dam/crate/lamp.jpg"]
    # A folder's delete cascades to its assets, and their index rows go with them.
    await services.changes.delete("/content/dam/box", user="t")
    assert await hits(services, "brass") == []
    await index_matches_tree(services)
    await make_assets(services, [("desk.jpg", {"dc:title": "walnut"})])
    await services.changes.move(
        "/content/dam/desk.jpg",
        "/content/dam/crate/bureau.jpg",
        overwrite=False,
        user="u",
        depth="infinity",
    )
    assert await hits(services, "bureau walnut") == ["/content/dam/crate/bureau.jpg"]
    assert await hits(services, "desk") == []
    await index_matches_tree(services)


async def test_assets_from_before_the_search_migration_are_indexed(services: Services) -> None:
    await make_assets(services, [("old.jpg", {"dc:title": "heirloom"})])

    await migrate_down_and_up(services, "0004")
    assert await hits(services, "heirloom") == ["/content/dam/old.jpg"]
    await make_assets(services, [("new.jpg", {"dc:title": "heirloom too"})])
    assert await hits(services, "heirloom") == ["/content/dam/new.jpg", "/content/dam/old.jpg"]
    await index_matches_tree(services)
