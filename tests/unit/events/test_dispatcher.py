"""The dispatcher and a pruned outbox, on each database backend: a position below the
floor is reported and moved to the floor, never left to skip rows in silence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from assetvault.events import repository as events_repo
from assetvault.events.models import AEM_TYPES
from assetvault.services import Services
from tests.factories import make_assets, outbox_events


async def position(services: Services) -> int:
    async with services.db.reader() as r:
        return await events_repo.dispatch_position(r)


async def journaled_outbox_seqs(services: Services) -> list[int]:
    async with services.db.reader() as r:
        rows = await r.fetch_all("SELECT outbox_seq FROM event_journal ORDER BY seq")
    return [int(row[0]) for row in rows]


async def test_a_position_below_the_floor_is_reported_and_moved_to_it(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    await make_assets(services, [("gone.jpg", {})])
    head = (await outbox_events(services))[-1].seq
    # Pruned past a dispatcher that never read them (as after its position was reset).
    future = datetime.now(UTC) + timedelta(seconds=5)
    assert await services.writes.prune_outbox(head, future) > 0
    dispatcher = services.dispatcher()

    with caplog.at_level("WARNING", logger="assetvault.events"):
        assert await dispatcher.materialize() == 0
    assert "the events between are lost" in caplog.text
    assert await position(services) == head
    caplog.clear()

    # After the floor, every row is journaled as usual, and nothing more is reported.
    (kept,) = await make_assets(services, [("kept.jpg", {})])
    await services.changes.set_properties(kept.path, {"dc:title": "kept"}, user="u")
    later = [e.seq for e in await outbox_events(services)]
    with caplog.at_level("WARNING", logger="assetvault.events"):
        assert await dispatcher.materialize() == len(later)
    assert "lost" not in caplog.text
    assert await position(services) == later[-1]
    assert (
        await journaled_outbox_seqs(services)
        == [e.seq for e in await outbox_events(services) if e.type in AEM_TYPES]
        != []
    )
