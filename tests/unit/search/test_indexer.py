"""The embedded (Tantivy) index and its indexer, on each database backend: a replay
changes nothing, a missing index is rebuilt, an API process without an index answers
503, a rebuild swaps in while the old index serves, and a search sees every change
committed before it."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from assetvault.adapters.database.tables import search_index_state
from assetvault.errors import Unavailable
from assetvault.search import indexer as indexer_module
from assetvault.search.indexer import (
    PUBLISHED,
    STATE,
    EmbeddedSearch,
    Indexer,
    outbox_head,
    published_position,
    read_state,
)
from assetvault.search.query import parse_request
from assetvault.services import Services, build_services
from assetvault.tree.repository import outbox_floor
from tests.factories import make_assets, make_settings
from tests.pg import create_test_database, drop_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    url = await create_test_database(admin_url)
    yield url
    await drop_database(admin_url, url)


def embedded(data_dir: Path, database_url: str | None, **overrides: Any) -> Services:
    settings = make_settings(
        data_dir, database_url=database_url, search_backend="tantivy", **overrides
    )
    return build_services(settings)


@pytest.fixture
async def writer(tmp_path: Path, database_url: str | None) -> AsyncIterator[Services]:
    """Services that index in their own process (as a lone process does)."""
    svc = embedded(tmp_path / "data", database_url)
    await svc.db.migrate()
    yield svc
    await svc.close()


def index_of(svc: Services) -> EmbeddedSearch:
    assert svc.embedded_search is not None
    return svc.embedded_search


async def titles(svc: Services, text: str) -> list[str]:
    body = {"query": [{"match": {"text": text}}], "limit": 50}
    result = await svc.search.search(parse_request(body))
    return sorted(h["assetMetadata"]["dc:title"] for h in result["hits"]["results"])


async def asset_count(svc: Services) -> int:
    async with svc.db.reader() as r:
        row = await r.fetch_one("SELECT count(*) FROM nodes WHERE kind = 'asset'")
    assert row is not None
    return int(row[0])


async def test_searches_run_on_the_embedded_index(writer: Services) -> None:
    await make_assets(writer, [("a.jpg", {"dc:title": "quartz"}), ("b.jpg", {"dc:title": "mica"})])
    assert await titles(writer, "quartz") == ["quartz"]
    index = index_of(writer)
    assert index.index is not None and index.index.count() == 2
    assert index.directory is not None
    assert (writer.settings.data_dir / "search" / index.directory).is_dir()
    async with writer.db.reader() as r:
        state = await read_state(r)
        head = await outbox_head(r)
    assert state is not None and state.position == head > 0


async def test_a_replay_from_an_earlier_position_changes_nothing(writer: Services) -> None:
    nodes = await make_assets(
        writer, [(f"r{i}.jpg", {"dc:title": f"opal w{i}"}) for i in range(30)]
    )
    await writer.changes.set_properties(nodes[0].path, {"dc:title": "garnet"}, user="u")
    await writer.changes.delete(nodes[1].path, user="u")
    before = await titles(writer, "opal")
    assert len(before) == 28
    # As after a crash between the index's commit and the position's record.
    async with writer.db.write() as conn:
        await conn.execute(
            update(search_index_state).where(search_index_state.c.name == STATE).values(position=0)
        )
    index = index_of(writer)
    assert index.indexer is not None
    await index.indexer.catch_up()
    index.position = -1  # reload from the recorded position
    assert await titles(writer, "opal") == before
    assert await titles(writer, "garnet") == ["garnet"]
    assert index.index is not None and index.index.count() == await asset_count(writer) == 29


async def test_the_indexer_opens_its_index_afresh_every_so_many_commits(
    writer: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tantivy's directory remembers every file its Index object ever opened, and every
    # commit writes new ones: the indexer takes a new Index object (and writer) now and
    # then, without a change lost or applied twice.
    monkeypatch.setattr(indexer_module, "RENEW_AFTER_COMMITS", 2)
    indexer = index_of(writer).indexer
    assert indexer is not None
    await indexer.catch_up()
    opened = []
    for i in range(5):
        await make_assets(writer, [(f"f{i}.jpg", {"dc:title": f"flint {i}"})])
        await indexer.catch_up()
        if not opened or indexer.index is not opened[-1]:
            opened.append(indexer.index)
        assert indexer.commits <= 2
    assert len(opened) >= 3
    assert len(await titles(writer, "flint")) == 5
    assert index_of(writer).index is not None
    assert index_of(writer).index.count() == await asset_count(writer) == 5  # type: ignore[union-attr]


async def test_a_missing_index_is_rebuilt(writer: Services) -> None:
    await make_assets(writer, [("m.jpg", {"dc:title": "basalt"})])
    assert await titles(writer, "basalt") == ["basalt"]
    index = index_of(writer)
    assert index.directory is not None
    await writer.embedded_search.close()  # type: ignore[union-attr]
    shutil.rmtree(writer.settings.data_dir / "search" / index.directory)

    fresh = embedded(writer.settings.data_dir, writer.settings.database_url)
    try:
        await make_assets(fresh, [("n.jpg", {"dc:title": "basalt slab"})])
        assert await titles(fresh, "basalt") == ["basalt", "basalt slab"]
        assert index_of(fresh).directory != index.directory
    finally:
        await fresh.close()


async def test_an_api_process_without_an_index_answers_503(
    tmp_path: Path, database_url: str | None
) -> None:
    import httpx

    from assetvault.app import create_app

    reader = embedded(
        tmp_path / "data", database_url, search_index_here=False, search_first_wait_seconds=0.3
    )
    await reader.db.migrate()
    try:
        began = time.monotonic()
        with pytest.raises(Unavailable):
            await reader.search.search(parse_request({"query": [{"match": {"text": "x"}}]}))
        assert time.monotonic() - began >= 0.3  # it waited for a first index first
        token = await reader.auth.create_token("r", "read")
        app = create_app(services=reader)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://assetvault.test"
        ) as client:
            response = await client.post(
                "/adobe/assets/search?allowUnsafeSearch=true",
                json={"query": [{"match": {"text": "x"}}]},
                headers={"Authorization": f"Bearer {token}", "X-Api-Key": "k"},
            )
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "being built" in response.json()["detail"]
    finally:
        await reader.close()


async def test_a_search_waits_for_the_first_index_another_process_builds(
    writer: Services,
) -> None:
    # As right after serve is ready: the API process has no index until the background
    # role's indexer has built it, and a search made meanwhile answers once it has.
    await make_assets(writer, [("w.jpg", {"dc:title": "feldspar"})])
    reader = embedded(
        writer.settings.data_dir,
        writer.settings.database_url,
        search_index_here=False,
        search_first_wait_seconds=60,
        wake_safety_seconds=60,
    )
    try:
        waiting = asyncio.create_task(titles(reader, "feldspar"))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        indexer = index_of(writer).indexer
        assert indexer is not None
        built = time.monotonic()
        await indexer.catch_up()
        # Woken by the build itself, not by the safety net's poll a minute later.
        assert await asyncio.wait_for(waiting, 20) == ["feldspar"]
        assert time.monotonic() - built < 10
    finally:
        await reader.close()


async def test_a_rebuild_swaps_in_while_the_old_index_serves(writer: Services) -> None:
    await make_assets(writer, [(f"s{i}.jpg", {"dc:title": f"slate {i}"}) for i in range(200)])
    assert len(await titles(writer, "slate")) == 50
    old = index_of(writer).directory
    reader = embedded(
        writer.settings.data_dir, writer.settings.database_url, search_index_here=False
    )
    try:
        seen: list[int] = []
        builder = index_of(writer).new_indexer()
        rebuild = asyncio.create_task(builder.rebuild())
        while not rebuild.done():  # searches keep answering, from either index
            body = {"query": [{"match": {"text": "slate"}}], "limit": 1}
            result = await reader.search.search(parse_request(body))
            seen.append(result["search_metadata"]["totalCount"]["total"])
            await asyncio.sleep(0)
        await rebuild
        assert seen and set(seen) == {200}
        await make_assets(writer, [("t.jpg", {"dc:title": "slate new"})])
        assert await titles(writer, "new") == ["slate new"]  # the writer reopened the new one
        result = await reader.search.search(
            parse_request({"query": [{"match": {"text": "slate"}}], "limit": 1})
        )
        assert result["search_metadata"]["totalCount"]["total"] == 201
        assert index_of(reader).directory == index_of(writer).directory != old
        assert not (writer.settings.data_dir / "search" / str(old)).exists()
    finally:
        await reader.close()


async def test_a_search_sees_every_change_committed_before_it(
    tmp_path: Path, database_url: str | None
) -> None:
    """With the indexer in another task (as under serve, another process), a search
    right after a commit waits for the index to apply it: no stale answer, no sleep."""
    data_dir = tmp_path / "data"
    indexing = embedded(data_dir, database_url)
    await indexing.db.migrate()
    api = embedded(data_dir, database_url, search_index_here=False, search_wait_seconds=5.0)
    stop = asyncio.Event()
    task = asyncio.create_task(index_of(indexing).new_indexer().run(stop))
    try:
        for _ in range(500):  # the indexer builds the (empty) index first
            async with api.db.reader() as r:
                if await read_state(r) is not None:
                    break
            await asyncio.sleep(0.01)
        waits = []
        for i in range(20):
            await make_assets(api, [(f"f{i}.jpg", {"dc:title": f"fresh{i}"})])
            started = time.monotonic()
            assert await titles(api, f"fresh{i}") == [f"fresh{i}"]
            waits.append(time.monotonic() - started)
        await api.changes.set_properties("/content/dam/f0.jpg", {"dc:title": "moved on"}, user="u")
        assert await titles(api, "fresh0") == []
        assert max(waits) < 5.0
    finally:
        stop.set()
        await task
        await api.close()
        await indexing.close()


async def test_sorted_pages_through_ties_and_shared_prefixes(writer: Services) -> None:
    """The fast sorts (a date, a size, a name, dc:title) page exactly as the reference
    orders, through many ties and titles sharing their first bytes, in both directions."""
    import functools
    import itertools
    import json
    import random

    def value_of(n: Any, field: str) -> Any:
        return {
            "repositoryMetadata.repo:name": n.name,
            "repositoryMetadata.repo:size": n.size,
            "repositoryMetadata.repo:createDate": n.created_at,
        }.get(field, n.asset_metadata.get(field.split(".", 1)[1]))

    def rank(value: Any) -> tuple[int, Any]:
        # As docs/search.md orders: numbers (booleans as 0, 1) before strings (arrays by
        # their JSON text) ascending; a missing value is handled apart.
        if isinstance(value, bool | int | float):
            return (0, int(value) if isinstance(value, bool) else value)
        if isinstance(value, str):
            return (1, value)
        if isinstance(value, list):
            return (1, json.dumps(value, separators=(",", ":")))
        return (0, value)  # a date

    def reference_order(nodes: list[Any], sort: list[dict[str, str]]) -> list[str]:
        def compare(a: Any, b: Any) -> int:
            for key in sort:
                va, vb = value_of(a, key["field"]), value_of(b, key["field"])
                if (va is None) != (vb is None):
                    return 1 if va is None else -1  # missing last, either way
                if va is None:
                    continue
                ra, rb = rank(va), rank(vb)
                if ra != rb:
                    return (-1 if key.get("order") == "DESC" else 1) * (-1 if ra < rb else 1)
            return -1 if a.id < b.id else (a.id > b.id)

        return [n.id for n in sorted(nodes, key=functools.cmp_to_key(compare))]

    rng = random.Random(3)
    titles: list[Any] = ["longprefix-a", "longprefix-b", "longprefix", "LONGPREFIX", "é", 3, 2.5]
    titles += [True, ["x"], [], "longprefix-a"]
    items = []
    for i in range(120):
        meta: dict[str, Any] = {}
        if rng.random() < 0.85:
            meta["dc:title"] = rng.choice(titles)
        items.append((f"{['same', 'samename', 'x'][i % 3]}-{i % 60:02}.jpg", meta))
    await writer.tree.create_folder("/content/dam", "sub", user="u")
    # Three transactions (three creation dates); names repeat across the two folders.
    await make_assets(writer, items[:40])
    await make_assets(writer, items[40:60])
    await make_assets(writer, items[60:], folder="/content/dam/sub")
    async with writer.db.reader() as r:
        rows = await r.fetch_all("SELECT id FROM nodes WHERE kind = 'asset'")
    corpus = [n for n in [await writer.tree.find_by_id(row[0]) for row in rows] if n]
    for field in (
        "assetMetadata.dc:title",
        "repositoryMetadata.repo:name",
        "repositoryMetadata.repo:size",
        "repositoryMetadata.repo:createDate",
    ):
        for order, then in itertools.product(("ASC", "DESC"), ([], ["assetMetadata.dc:title"])):
            sort = [{"field": field, "order": order}, *({"field": f} for f in then)]
            want = reference_order(corpus, sort)
            got: list[str] = []
            cursor = None
            for _ in range(100):
                body: dict[str, Any] = {
                    "query": [{"match": {"text": "*"}}],
                    "sort": sort,
                    "limit": 7,
                }
                if cursor:
                    body["cursor"] = cursor
                page = await writer.search.search(parse_request(body))
                got += [h["assetId"].rsplit(":", 1)[1] for h in page["hits"]["results"]]
                cursor = page.get("cursor")
                if cursor is None:
                    break
            assert got == want, sort


async def test_readers_reload_on_the_published_position_before_it_is_recorded(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database record of the position waits for the write lock (which the tree's
    writers hold through their fsyncs); readers go by the position the indexer publishes
    in the index's directory right after its commit, and the record follows."""
    data_dir = tmp_path / "data"
    indexing = embedded(data_dir, database_url)
    await indexing.db.migrate()
    api = embedded(data_dir, database_url, search_index_here=False, search_wait_seconds=5.0)
    indexer = index_of(indexing).new_indexer()
    try:
        await make_assets(api, [("a.jpg", {"dc:title": "first"})])
        await indexer.catch_up()
        assert await titles(api, "first") == ["first"]
        # The next record is held, as behind another process's write transaction.
        held = asyncio.Event()
        record = Indexer._record

        async def held_record(self: Indexer, position: int) -> bool:
            await held.wait()
            return await record(self, position)

        monkeypatch.setattr(Indexer, "_record", held_record)
        await make_assets(api, [("b.jpg", {"dc:title": "second"})])
        catching_up = asyncio.create_task(indexer.catch_up())
        async with api.db.reader() as r:
            head = await outbox_head(r)
            state = await read_state(r)
        assert state is not None and state.position < head
        directory = data_dir / "search" / state.directory
        for _ in range(500):
            if (directory / PUBLISHED).exists() and int(
                (directory / PUBLISHED).read_text()
            ) == head:
                break
            await asyncio.sleep(0.01)
        started = time.monotonic()
        assert await titles(api, "second") == ["second"]  # before the record
        assert time.monotonic() - started < 2.0
        async with api.db.reader() as r:
            lagging = await read_state(r)
        assert lagging is not None and lagging.position < head
        held.set()
        assert await catching_up == head
        async with api.db.reader() as r:
            recorded = await read_state(r)
        assert recorded is not None and recorded.position == head
    finally:
        await indexer.close()
        await api.close()
        await indexing.close()


async def test_an_index_the_outbox_was_pruned_past_is_rebuilt_and_misses_nothing(
    writer: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """The deployment searched on the database backend for a while (the embedded index
    not counted as a consumer), the sweep pruned what its index never applied; back on
    the embedded backend, the index is rebuilt instead of missing those changes."""
    nodes = await make_assets(
        writer, [("k.jpg", {"dc:title": "jasper"}), ("l.jpg", {"dc:title": "jasper too"})]
    )
    assert await titles(writer, "jasper") == ["jasper", "jasper too"]
    async with writer.db.reader() as r:
        indexed_at = await read_state(r)
    assert indexed_at is not None
    # Meanwhile, on the database backend: changes, dispatched and pruned.
    meanwhile = build_services(
        make_settings(
            writer.settings.data_dir,
            database_url=writer.settings.database_url,
            search_backend="database",
            outbox_retention_seconds=0,
        )
    )
    try:
        await make_assets(meanwhile, [("m.jpg", {"dc:title": "jasper new"})])
        await meanwhile.changes.set_properties(nodes[0].path, {"dc:title": "onyx"}, user="u")
        await meanwhile.changes.delete(nodes[1].path, user="u")
        dispatcher = meanwhile.dispatcher()
        while await dispatcher.materialize():
            pass
        assert await meanwhile.maintenance.prune_outbox(0) > 0
        async with meanwhile.db.reader() as r:
            assert await outbox_floor(r) > indexed_at.position
    finally:
        await meanwhile.close()

    with caplog.at_level("WARNING", logger="assetvault.search.indexer"):
        assert await titles(writer, "jasper") == ["jasper new"]
    assert "rebuilding it from the database" in caplog.text
    assert await titles(writer, "onyx") == ["onyx"]
    index = index_of(writer)
    assert index.index is not None and index.index.count() == await asset_count(writer) == 2
    async with writer.db.reader() as r:
        state = await read_state(r)
        pruned_to = await outbox_floor(r)
    assert state is not None and state.directory != indexed_at.directory
    assert state.position >= pruned_to  # built as of the floor at least: no rebuild loop


async def test_the_indexer_sleeps_until_a_commit_wakes_it(
    tmp_path: Path, database_url: str | None
) -> None:
    """Idle, the indexer does not look at the outbox (it used to every 20 ms); a commit
    wakes it at once, with the safety net far away, so only the wake-up explains it."""
    data_dir = tmp_path / "data"
    indexing = embedded(data_dir, database_url, wake_safety_seconds=60.0)
    await indexing.db.migrate()
    api = embedded(data_dir, database_url, search_index_here=False, wake_safety_seconds=60.0)
    indexer = index_of(indexing).new_indexer()
    stop = asyncio.Event()
    task = asyncio.create_task(indexer.run(stop))
    try:
        for _ in range(500):  # the indexer builds the (empty) index first
            async with api.db.reader() as r:
                if await read_state(r) is not None:
                    break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        looks = index_of(indexing).own_db.transactions
        await asyncio.sleep(2.0)
        assert index_of(indexing).own_db.transactions - looks <= 2

        for i in range(3):
            await make_assets(api, [(f"w{i}.jpg", {"dc:title": f"woken{i}"})])
            async with api.db.reader() as r:
                head = await outbox_head(r)
            started = time.monotonic()
            while indexer.directory is None or applied(indexing, indexer) < head:
                assert time.monotonic() - started < 1.0, "not woken by the commit"
                await asyncio.sleep(0.005)
    finally:
        stop.set()
        await task
        await api.close()
        await indexing.close()


def applied(svc: Services, indexer: Indexer) -> int:
    assert indexer.directory is not None
    return published_position(svc.settings.data_dir / "search" / indexer.directory)


async def test_a_waiting_search_sleeps_until_the_indexer_publishes(
    tmp_path: Path, database_url: str | None
) -> None:
    """A search waiting for its own write does not look at the index's position every
    few milliseconds: it sleeps until the indexer publishes one, then answers."""
    data_dir = tmp_path / "data"
    indexing = embedded(data_dir, database_url, wake_safety_seconds=60.0)
    await indexing.db.migrate()
    api = embedded(
        data_dir,
        database_url,
        search_index_here=False,
        search_wait_seconds=30.0,
        wake_safety_seconds=60.0,
    )
    indexer = index_of(indexing).new_indexer()
    try:
        await indexer.catch_up()  # the (empty) index
        await make_assets(api, [("late.jpg", {"dc:title": "late"})])
        searching = asyncio.create_task(titles(api, "late"))
        await asyncio.sleep(0.3)
        looks = index_of(api).own_db.transactions
        await asyncio.sleep(1.0)
        assert not searching.done()  # the index has not applied it: the search waits
        assert index_of(api).own_db.transactions - looks <= 2
        published = time.monotonic()
        await indexer.catch_up()
        assert await asyncio.wait_for(searching, 10.0) == ["late"]
        assert time.monotonic() - published < 2.0
    finally:
        await indexer.close()
        await api.close()
        await indexing.close()


async def test_prefix_matches_on_the_embedded_index(writer: Services) -> None:
    """startsWith on the Tantivy index, over either database (the differential suite runs
    it over SQLite): every word matches from its start; matches wants whole words."""
    await make_assets(
        writer,
        [
            ("a.jpg", {"dc:title": "Spring launch"}),
            ("b.jpg", {"dc:title": "Springfield"}),
            ("c.jpg", {"dc:title": "Crème brûlée"}),
        ],
    )

    async def found(text: str, operator: str) -> list[str]:
        body = {"query": [{"match": {"text": text, "operator": operator}}], "limit": 50}
        result = await writer.search.search(parse_request(body))
        return sorted(h["assetMetadata"]["dc:title"] for h in result["hits"]["results"])

    assert await found("sprin", "startsWith") == ["Spring launch", "Springfield"]
    assert await found("sprin", "matches") == []
    assert await found("spring LAU", "startsWith") == ["Spring launch"]
    assert await found("CREM bru", "startsWith") == ["Crème brûlée"]
