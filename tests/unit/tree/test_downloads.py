"""Download events written beside the responses: grouped, each with its own user and
time, kept and tried again when the write fails, bounded while it keeps failing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from assetvault.services import Services
from assetvault.tree import downloads, events
from assetvault.tree.downloads import DownloadRecorder
from tests.factories import make_assets, outbox_events


async def test_downloads_noted_together_are_written_in_one_transaction_each_as_its_own(
    services: Services,
) -> None:
    a, b = await make_assets(services, [("a.txt", {}), ("b.txt", {})])
    start = (await outbox_events(services))[-1].seq
    recorder = services.tree.downloads
    before = services.db.transactions
    recorder.note(a, "original", "reader")
    recorder.note(b, "cq5dam.web.1280.1280.jpeg", "other")
    recorder.note(a, "original", None)
    assert recorder.pending == 3  # nothing written yet: the response does not wait
    await recorder.flush()
    assert services.db.transactions == before + 1
    rows = await outbox_events(services, start)
    assert [(r.type, r.path, r.user, r.data["rendition"]) for r in rows] == [
        (events.DOWNLOADED, a.path, "reader", "original"),
        (events.DOWNLOADED, b.path, "other", "cq5dam.web.1280.1280.jpeg"),
        (events.DOWNLOADED, a.path, None, "original"),
    ]


async def test_a_lone_download_is_written_without_anyone_asking(services: Services) -> None:
    (a,) = await make_assets(services, [("a.txt", {})])
    start = (await outbox_events(services))[-1].seq
    services.tree.downloads.note(a, "original", "reader")
    for _ in range(500):
        if services.tree.downloads.pending == 0:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # its commit
    # Read without outbox_events' flush: the recorder's own task wrote it.
    from assetvault.tree import repository

    async with services.db.reader() as r:
        rows = await repository.outbox_after(r, start)
    assert [(row.type, row.user) for row in rows] == [(events.DOWNLOADED, "reader")]


class Refusing:
    """The write path, refusing the first ``failures`` changes."""

    def __init__(self, services: Services, failures: int) -> None:
        self.writes = services.writes
        self.failures = failures

    @asynccontextmanager
    async def change(self, user: str | None) -> AsyncIterator[Any]:
        if self.failures:
            self.failures -= 1
            raise OSError("disk I/O error")
        async with self.writes.change(user) as ch:
            yield ch


async def test_downloads_whose_write_failed_are_kept_and_written_later(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloads, "RETRY_SECONDS", 0.01)
    (a,) = await make_assets(services, [("a.txt", {})])
    start = (await outbox_events(services))[-1].seq
    recorder = DownloadRecorder(Refusing(services, 2))  # type: ignore[arg-type]
    recorder.note(a, "original", "first")
    await asyncio.sleep(0)
    recorder.note(a, "original", "second")
    for _ in range(500):
        if recorder.pending == 0:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    rows = await outbox_events(services, start)
    assert [r.user for r in rows] == ["first", "second"]  # in order, each once
    assert recorder.dropped == 0


async def test_flush_raises_when_the_write_fails_and_keeps_the_downloads(
    services: Services,
) -> None:
    (a,) = await make_assets(services, [("a.txt", {})])
    recorder = DownloadRecorder(Refusing(services, 100))  # type: ignore[arg-type]
    recorder.note(a, "original", "reader")
    with pytest.raises(OSError):
        await recorder.flush()
    assert recorder.pending == 1


async def test_while_writes_keep_failing_the_oldest_downloads_are_dropped(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloads, "MAX_PENDING", 3)
    (a,) = await make_assets(services, [("a.txt", {})])
    recorder = DownloadRecorder(Refusing(services, 100))  # type: ignore[arg-type]
    for user in ("u1", "u2", "u3", "u4", "u5"):
        recorder.note(a, "original", user)
    assert recorder.pending == 3 and recorder.dropped == 2
    with pytest.raises(OSError):
        await recorder.flush()
    assert [d.user for d in recorder._pending] == ["u3", "u4", "u5"]
