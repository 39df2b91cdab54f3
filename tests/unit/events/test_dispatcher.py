"""The dispatcher, on each database backend: a position below the floor is reported and
moved to the floor, never left to skip rows in silence; idle, it sleeps until a commit
wakes it or a retry becomes due."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from assetvault.events import models
from assetvault.events import repository as events_repo
from assetvault.events.dispatcher import Dispatcher
from assetvault.events.models import AEM_TYPES, Outcome
from assetvault.services import Services
from tests.factories import make_assets, outbox_events


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Far away: whatever a test sees sooner, a wake-up or a timer explains.
    return {"wake_safety_seconds": 60.0, "events_retry_unit_seconds": 0.3}


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


class Answers:
    """A webhook that answers 503 to its first request, then 200; it notes the time of
    each request."""

    def __init__(self) -> None:
        self.at: list[float] = []

    async def send(
        self, method: str, url: str, *, headers: dict[str, str], body: bytes | None = None
    ) -> Outcome:
        self.at.append(time.monotonic())
        return Outcome(status=503 if len(self.at) == 1 else 200)

    async def vet(self, url: str) -> str | None:
        return None


@pytest.fixture
async def running(
    services: Services,
) -> AsyncIterator[tuple[Dispatcher, Answers]]:
    """The dispatcher's own loop in a task, delivering to ``Answers``."""
    answers = Answers()
    dispatcher = Dispatcher(
        services.settings,
        services.db,
        services.metadata,
        answers,
        services.signer,
        services.wakeups,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run_forever(stop))
    try:
        await until(lambda: asyncio.sleep(0, dispatcher.rounds > 0))
        yield dispatcher, answers
    finally:
        stop.set()
        await task


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> float:
    """Seconds until ``check()`` holds (looked at every few milliseconds)."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, "not in time"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def caught_up(services: Services) -> bool:
    return await position(services) == (await outbox_events(services))[-1].seq


async def test_the_dispatcher_sleeps_until_a_commit_wakes_it(
    services: Services, running: tuple[Dispatcher, Answers]
) -> None:
    dispatcher, _ = running
    await asyncio.sleep(0.5)  # its first rounds (lease, housekeeping) are done
    rounds, looks = dispatcher.rounds, services.db.transactions
    await asyncio.sleep(2.0)
    # It used to look at the outbox every 0.4 s when idle (two reads a round).
    assert dispatcher.rounds - rounds <= 1
    assert services.db.transactions - looks <= 2
    for i in range(3):
        await make_assets(services, [(f"w{i}.jpg", {})])
        assert await until(lambda: caught_up(services)) < 1.0


async def test_a_retry_is_sent_when_it_is_due(
    services: Services, running: tuple[Dispatcher, Answers]
) -> None:
    """A failed delivery waits for its retry time (a timer, not a poll), then goes."""
    now = datetime.now(UTC)
    async with services.db.write() as conn:
        await events_repo.insert_registration(
            conn,
            {
                "id": str(uuid.uuid4()),
                "name": "hook",
                "client_id": "c",
                "delivery_type": "webhook",
                "webhook_url": "https://hooks.example/in",
                "event_types": [models.METADATA_UPDATED],
                "enabled": True,
                "webhook_status": models.VERIFIED,
                "state": models.ACTIVE,
                "journal_start": 0,
                "created_by": "u",
                "created_at": now,
                "updated_at": now,
            },
        )
    _, answers = running
    (asset,) = await make_assets(services, [("hooked.jpg", {})])
    await services.changes.set_properties(asset.path, {"dc:title": "hooked"}, user="u")
    await until(lambda: asyncio.sleep(0, len(answers.at) >= 2))
    waited = answers.at[1] - answers.at[0]
    unit = services.settings.events_retry_unit_seconds
    assert unit * 0.9 <= waited < unit + 1.0
