"""The write path: one transaction per change, and its outbox rows with it."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from assetvault.adapters.database.tables import nodes, outbox
from assetvault.errors import PreconditionFailed
from assetvault.runtime.wake import INDEXED, JOBS, OUTBOX, SocketWakeups
from assetvault.services import Services
from assetvault.tree import events
from assetvault.tree import repository as repo
from assetvault.tree.models import Node
from tests.factories import backdate_outbox, make_asset, make_assets, outbox_events


class Boom(Exception):
    pass


async def count(services: Services, table: object) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_change_that_rolls_back_leaves_no_outbox_row(services: Services) -> None:
    nodes_before = await count(services, nodes)
    with pytest.raises(Boom):
        async with services.writes.change("writer") as ch:
            root = await repo.by_path(ch.reader, "/content/dam")
            assert root is not None
            await ch.create_folder(root, "gone")
            ch.downloaded(root, "original")
            raise Boom
    assert await count(services, outbox) == 0
    assert await count(services, nodes) == nodes_before
    # A failed precondition inside the service is a rollback too.
    asset = await make_asset(services, "a.txt", b"x", "text/plain")
    rows = await count(services, outbox)
    with pytest.raises(PreconditionFailed):
        await services.metadata.patch(
            asset.id, [{"op": "add", "path": "/x", "value": 1}], if_match='"nope"', user="w"
        )
    assert await count(services, outbox) == rows


async def test_events_carry_node_path_user_and_data(services: Services) -> None:
    folder = await services.tree.create_folder("/content/dam", "f", user="ann")
    (asset,) = await make_assets(services, [("a.jpg", {"dc:title": "A"})], folder=folder.path)
    await services.metadata.patch(
        asset.id,
        [
            {"op": "replace", "path": "/dc:title", "value": "B"},
            {"op": "add", "path": "/n", "value": 2},
        ],
        if_match="*",
        user="bob",
    )
    await services.changes.move(
        "/content/dam/f", "/content/dam/g", overwrite=False, user="cy", depth="infinity"
    )
    found = await outbox_events(services)
    assert [(e.type, e.path, e.user) for e in found] == [
        (events.FOLDER_CREATED, "/content/dam/f", "ann"),
        (events.ASSET_CREATED, "/content/dam/f/a.jpg", "writer"),
        ("asset.metadata_updated", "/content/dam/f/a.jpg", "bob"),
        ("folder.moved", "/content/dam/g", "cy"),
        ("asset.moved", "/content/dam/g/a.jpg", "cy"),
    ]
    assert found[1].node_id == asset.id and found[1].data["size"] == len(b"a.jpg")
    assert found[2].data["previous"] == {"dc:title": "A", "n": None}
    assert found[3].data == {"from": "/content/dam/f", "to": "/content/dam/g"}
    assert found[4].data == {"from": "/content/dam/f/a.jpg", "to": "/content/dam/g/a.jpg"}
    assert len({e.id for e in found}) == len(found)
    assert [e.seq for e in found] == sorted(e.seq for e in found)


async def test_delete_touches_the_parent_and_raises_one_event_per_node(
    services: Services,
) -> None:
    box = await services.tree.create_folder("/content/dam", "box", user="w")
    inner = await services.tree.create_folder(box.path, "inner", user="w")
    await make_asset(services, "a.txt", b"a", "text/plain", folder=inner.path)
    root_before = await services.tree.get("/content/dam")
    start = (await outbox_events(services))[-1].seq
    await services.changes.delete(box.path, user="dee")
    root_after = await services.tree.get("/content/dam")
    assert root_after.revision == root_before.revision + 1
    assert root_after.modified_by == "dee"
    gone = await outbox_events(services, after=start)
    assert [(e.type, e.path) for e in gone] == [
        ("asset.deleted", "/content/dam/box/inner/a.txt"),
        ("folder.deleted", "/content/dam/box/inner"),
        ("folder.deleted", "/content/dam/box"),
    ]
    assert {e.user for e in gone} == {"dee"}


async def test_outbox_order_per_asset_is_commit_order(services: Services) -> None:
    asset = await make_asset(services, "busy.txt", b"x", "text/plain")

    async def bump(i: int) -> None:
        await services.metadata.patch(
            asset.id, [{"op": "add", "path": "/n", "value": i}], if_match="*", user=f"u{i}"
        )

    await asyncio.gather(*(bump(i) for i in range(12)))
    updates = [e for e in await outbox_events(services) if e.type == "asset.metadata_updated"]
    assert len(updates) == 12
    revisions = [e.data["revision"] for e in updates]
    assert revisions == sorted(revisions) and len(set(revisions)) == 12
    # Each update's previous value is what the one committed before it wrote.
    final = (await services.tree.find_by_id(asset.id)).asset_metadata["n"]  # type: ignore[union-attr]
    written = [e.data["previous"]["n"] for e in updates[1:]] + [final]
    assert sorted(written) == list(range(12))
    assert updates[0].data["previous"] == {"n": None}


async def test_readers_never_see_a_later_commit_take_an_earlier_position(
    services: Services,
) -> None:
    """A consumer that remembers the highest position it has read must never find a row
    committed later below it: positions are handed out in commit order."""
    stop = asyncio.Event()
    observed: list[tuple[int, set[int]]] = []

    async def watch() -> None:
        while not stop.is_set():
            async with services.db.read() as conn:
                q = select(outbox.c.seq).where(outbox.c.seq > start)
                seen = set((await conn.execute(q)).scalars())
            if seen:
                observed.append((max(seen), seen))
            await asyncio.sleep(0)

    # Downloads share no row, so no row lock orders these transactions for us.
    assets = await make_assets(services, [(f"d{i}.txt", {}) for i in range(8)])
    start = (await outbox_events(services))[-1].seq

    async def write(i: int) -> None:
        for _ in range(10):
            await services.tree.record_download(assets[i], "original", user="w")

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(write(i) for i in range(8)))
    stop.set()
    await watcher
    every = {e.seq for e in await outbox_events(services, after=start)}
    assert len(every) == 80
    assert observed
    for highest, seen in observed:
        assert {s for s in every if s <= highest} <= seen


async def floor(services: Services) -> int:
    async with services.db.reader() as r:
        return await repo.outbox_floor(r)


async def seqs_left(services: Services) -> list[int]:
    return [e.seq for e in await outbox_events(services)]


async def test_prune_removes_old_rows_up_to_the_position_and_the_floor_only_grows(
    services: Services,
) -> None:
    for i in range(4):
        await services.tree.create_folder("/content/dam", f"f{i}", user="u")
    seqs = await seqs_left(services)
    assert len(seqs) == 4 and await floor(services) == 0
    now = datetime.now(UTC)
    await backdate_outbox(services, seqs[:3], now - timedelta(days=2))
    cutoff = now - timedelta(days=1)

    # Read up to the second row: the third is old but not read by every consumer.
    assert await services.writes.prune_outbox(seqs[1], cutoff) == 2
    assert await seqs_left(services) == seqs[2:]
    assert await floor(services) == seqs[1]
    # A smaller position later removes nothing and lowers nothing.
    assert await services.writes.prune_outbox(seqs[0], cutoff) == 0
    assert await floor(services) == seqs[1]
    # Everything read: the last row is younger than the retention and stays.
    assert await services.writes.prune_outbox(seqs[3], cutoff) == 1
    assert await seqs_left(services) == seqs[3:]
    assert await floor(services) == seqs[2]
    # Later changes carry on above the floor.
    await services.tree.create_folder("/content/dam", "later", user="u")
    assert min(await seqs_left(services)) > await floor(services)


async def test_prune_stops_at_the_first_young_row(services: Services) -> None:
    """Only a prefix goes, so every row up to the floor is gone: an old row after a
    young one stays (on PostgreSQL a row's time is its transaction's start)."""
    for i in range(3):
        await services.tree.create_folder("/content/dam", f"g{i}", user="u")
    seqs = await seqs_left(services)
    now = datetime.now(UTC)
    await backdate_outbox(services, [seqs[0], seqs[2]], now - timedelta(days=2))
    assert await services.writes.prune_outbox(seqs[2], now - timedelta(days=1)) == 1
    assert await seqs_left(services) == seqs[1:]
    assert await floor(services) == seqs[0]


async def test_a_commit_wakes_the_topics_of_what_it_appended(services: Services) -> None:
    """The write path notifies on its own: outbox rows wake ``outbox``, a queued job
    ``jobs``; a change that appended neither, or that rolled back, wakes nobody."""
    heard = {topic: await services.wakeups.listen(topic) for topic in (OUTBOX, JOBS, INDEXED)}

    async def woken() -> set[str]:
        # Given the time a notification takes to come back (PostgreSQL: over the wire).
        await asyncio.sleep(0.3)
        return {topic for topic, listener in heard.items() if await listener.wait(0.0)}

    asset = (await make_assets(services, [("a.jpg", {})]))[0]  # its processing job too
    assert await woken() == {OUTBOX, JOBS}
    await services.changes.set_properties(asset.path, {"dc:title": "t"}, user="u")
    assert await woken() == {OUTBOX}
    async with services.writes.change("u") as ch:
        await ch.reload(asset.id)  # read only
    async with services.writes.change("u") as ch:
        await ch.enqueue("delete-asset", {"node_id": "none"})
    assert await woken() == {JOBS}
    with pytest.raises(Boom):
        async with services.writes.change("u") as ch:
            root = await repo.by_path(ch.reader, "/content/dam")
            assert root is not None
            await ch.create_folder(root, "gone")
            await ch.enqueue("delete-asset", {"node_id": "none"})
            raise Boom
    assert await woken() == set()


async def _with_text(services: Services, words: str) -> Node:
    """A text asset as processing leaves it: an extracted layer and its words."""
    asset = await make_asset(services, "a.txt", b"x", "text/plain")
    async with services.writes.change(None) as ch:
        node = await ch.reload(asset.id)
        await ch.processing_completed(
            node,
            made=[],
            extracted={"dc:title": "from the file", "xmp:Rating": 3},
            text_content=words,
            mime_type="text/plain",
        )
    async with services.db.reader() as r:
        found = await repo.by_id(r, asset.id)
    assert found is not None and found.extracted_text == words
    return found


async def test_set_properties_answers_the_row_as_stored(services: Services) -> None:
    node = await _with_text(services, "some words")
    async with services.writes.change("ann") as ch:
        updated = await ch.set_properties(
            node, {"dc:title": "mine", "n": [1, 2.5]}, expected_revision=node.revision
        )
    async with services.db.reader() as r:
        stored = await repo.by_id(r, node.id)
    assert updated == stored  # every column, the words and the extracted layer too
    assert updated.revision == node.revision + 1
    assert updated.modified_by == "ann"
    assert updated.properties == {"dc:title": "mine", "n": [1, 2.5]}


async def test_set_properties_on_a_node_read_before_another_change_answers_the_new_row(
    services: Services,
) -> None:
    stale = await _with_text(services, "some words")
    async with services.writes.change("bob") as ch:
        await ch.publish(await ch.reload(stale.id))
    async with services.writes.change("ann") as ch:
        updated = await ch.set_properties(stale, {"dc:title": "mine"})
    async with services.db.reader() as r:
        stored = await repo.by_id(r, stale.id)
    assert stored is not None and stored.published
    assert updated == stored  # not the stale read's columns
    assert updated.revision == stale.revision + 2


async def test_a_patch_and_a_metadata_read_leave_the_extracted_text_unread(
    services: Services,
) -> None:
    """A document's words (megabytes at times) are neither shown nor changed by the
    metadata routes, so they are not read for them."""
    node = await _with_text(services, "word " * 20_000)
    patched, body = await services.metadata.patch(
        node.id, [{"op": "add", "path": "/dc:title", "value": "mine"}], if_match="*", user="w"
    )
    assert patched.extracted_text is None
    assert body["assetMetadata"] == {"dc:title": "mine", "xmp:Rating": 3}
    read, envelope = await services.metadata.asset_envelope(node.id)
    assert read.extracted_text is None
    assert envelope == body
    async with services.db.reader() as r:
        stored = await repo.by_id(r, node.id)
    assert stored is not None and stored.extracted_text == "word " * 20_000


async def test_a_group_of_changes_sends_its_wake_ups_once(services: Services) -> None:
    """Changes that commit together (SQLite's group commit) wake each listener of their
    topics once, not once per change."""
    if not isinstance(services.wakeups, SocketWakeups):
        pytest.skip("PostgreSQL notifies from inside each transaction")
    listener = await services.wakeups.listen(OUTBOX)
    assets = await make_assets(services, [(f"a{i}.jpg", {}) for i in range(5)])
    await asyncio.sleep(0.1)
    await listener.wait(0.0)
    listeners = len(os.listdir(services.wakeups.directory / OUTBOX))
    before = services.wakeups.sent
    hops = services.db.write_hops
    await asyncio.gather(
        *(
            services.metadata.patch(
                a.id, [{"op": "add", "path": "/n", "value": 1}], if_match="*", user="u"
            )
            for a in assets
        )
    )
    assert services.db.write_hops - hops <= 2  # they committed in one or two groups
    await asyncio.sleep(0.05)
    assert services.wakeups.sent - before == listeners * (services.db.write_hops - hops)
    assert await listener.wait(1.0)
