"""The wake-up channel, on each database backend (sockets under the data directory on
SQLite, LISTEN/NOTIFY on PostgreSQL): a commit wakes a listener in another process
within milliseconds, a rolled-back change wakes nobody, notifications coalesce, a
notify with nobody (or nobody alive) listening neither blocks nor fails, and a dead
listener's socket is removed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assetvault.runtime.wake import (
    INDEXED,
    JOBS,
    OUTBOX,
    PostgresWakeups,
    SocketWakeups,
    wakeups_for,
)
from assetvault.services import Services
from tests.factories import make_assets

# A listener in a process of its own: it listens, says so, waits (at most the given
# seconds, far beyond any bound asserted) and reports when it was woken, or not.
CHILD = """
import asyncio, sys, time
from pathlib import Path
from assetvault.runtime.wake import wakeups_for

async def main() -> None:
    wakeups = wakeups_for(sys.argv[1], Path(sys.argv[2]))
    listener = await wakeups.listen(sys.argv[3])
    print("ready", flush=True)
    woken = await listener.wait(float(sys.argv[4]))
    print(("woken" if woken else "slept"), time.time(), flush=True)
    await wakeups.close()

asyncio.run(main())
"""

# What the other process's wake-up may take at most, on a loaded two-core machine; it
# is a few milliseconds when the machine is quiet (docs/runtime.md).
WAKE_BOUND_SECONDS = 0.5


class Child:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self) -> list[str]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), 30)
        return raw.decode().split()

    async def woken_at(self) -> float | None:
        """When the child was woken (None: it slept until its time-out)."""
        word, at = await self.line()
        await self.process.wait()
        return float(at) if word == "woken" else None


async def child_of(url: str, data_dir: Path, topic: str, seconds: float) -> Child:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        url,
        str(data_dir),
        topic,
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    child = Child(process)
    assert await child.line() == ["ready"]
    return child


async def listening_child(services: Services, topic: str, seconds: float = 20.0) -> Child:
    """A listener in another process of the deployment ``services`` belong to."""
    settings = services.settings
    return await child_of(settings.resolved_database_url, settings.data_dir, topic, seconds)


async def test_a_commit_wakes_a_listener_in_another_process(services: Services) -> None:
    jobs = await listening_child(services, JOBS)
    outbox = await listening_child(services, OUTBOX)
    indexed = await listening_child(services, INDEXED, seconds=1.0)
    committed = time.time()
    # An asset: outbox rows and its processing job, in one change.
    await make_assets(services, [("woken.jpg", {})])
    for child in (jobs, outbox):
        woken = await child.woken_at()
        assert woken is not None
        assert woken - committed < WAKE_BOUND_SECONDS
    assert await indexed.woken_at() is None  # no topic of the change: still asleep


async def test_a_rolled_back_change_wakes_nobody(services: Services) -> None:
    child = await listening_child(services, OUTBOX, seconds=1.5)
    root = await services.tree.get("/content/dam")
    with pytest.raises(RuntimeError):
        async with services.writes.change("u") as ch:
            await ch.create_folder(root, "never")
            raise RuntimeError("rolled back")
    assert await child.woken_at() is None


async def test_notify_outside_a_transaction_wakes_another_process(services: Services) -> None:
    child = await listening_child(services, INDEXED)
    sent = time.time()
    services.wakeups.notify([INDEXED])
    woken = await child.woken_at()
    assert woken is not None and woken - sent < WAKE_BOUND_SECONDS


async def test_notifications_coalesce_and_every_listener_hears_them(services: Services) -> None:
    first = await services.wakeups.listen(OUTBOX)
    second = await services.wakeups.listen(OUTBOX)
    for _ in range(50):
        services.wakeups.notify([OUTBOX])
    # One wake-up each for all fifty, whichever waits first; none lost between the
    # listen and the wait.
    assert await first.wait(5.0)
    assert await second.wait(5.0)
    await asyncio.sleep(0.2)  # stragglers of the fifty, if any, arrive now
    await first.wait(0.0)
    await second.wait(0.0)
    assert not await first.wait(0.2)
    assert not await second.wait(0.2)


async def test_a_wait_ends_when_stop_is_set(services: Services) -> None:
    listener = await services.wakeups.listen(JOBS)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, stop.set)
    started = time.monotonic()
    assert not await listener.wait(30.0, stop=stop)
    assert time.monotonic() - started < 5.0


async def test_a_notify_with_nobody_listening_neither_blocks_nor_fails(
    services: Services,
) -> None:
    started = time.monotonic()
    for _ in range(1000):
        services.wakeups.notify([OUTBOX, JOBS, INDEXED])
    await make_assets(services, [("alone.jpg", {})])
    assert time.monotonic() - started < 30.0


# -- the embedded default's sockets ------------------------------------------------------


@pytest.fixture
async def sockets(tmp_path: Path) -> AsyncIterator[SocketWakeups]:
    wakeups = SocketWakeups(tmp_path / "run" / "wake")
    yield wakeups
    await wakeups.close()


async def test_a_full_socket_never_blocks_the_notifier(sockets: SocketWakeups) -> None:
    """A listener that does not read (a hung process): its queue fills, and every further
    notify returns at once (its wake-up is pending already)."""
    where = sockets.directory / OUTBOX
    where.mkdir(parents=True)
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    hung.bind(str(where / "hung"))
    try:
        started = time.monotonic()
        for _ in range(20_000):
            sockets.notify([OUTBOX])
        assert time.monotonic() - started < 10.0
        assert hung.recv(8) == b"\0"
        assert (where / "hung").exists()  # alive: kept
    finally:
        hung.close()


async def test_a_dead_listeners_socket_is_removed(tmp_path: Path) -> None:
    """A listener killed with SIGKILL leaves its socket; the next notify removes it, and
    the live listeners are still woken."""
    wakeups = SocketWakeups(tmp_path / "run" / "wake")
    try:
        child = await child_of(f"sqlite:///{tmp_path / 'db'}", tmp_path, OUTBOX, 60.0)
        where = tmp_path / "run" / "wake" / OUTBOX
        left = set(os.listdir(where))
        assert len(left) == 1
        child.process.send_signal(signal.SIGKILL)
        await child.process.wait()
        assert set(os.listdir(where)) == left  # nobody removed it
        alive = await wakeups.listen(OUTBOX)
        wakeups.notify([OUTBOX])
        assert not left & set(os.listdir(where))
        assert len(os.listdir(where)) == 1  # the live one
        assert await alive.wait(5.0)
    finally:
        await wakeups.close()


async def test_sockets_work_under_a_data_directory_of_any_length(tmp_path: Path) -> None:
    """A Unix socket's path is limited to 107 bytes; a deep data directory still works."""
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name"] * 6))
    assert len(str(deep)) > 120
    wakeups = SocketWakeups(deep / "run" / "wake")
    other = SocketWakeups(deep / "run" / "wake")
    try:
        listener = await wakeups.listen(JOBS)
        other.notify([JOBS])
        assert await listener.wait(5.0)
    finally:
        await wakeups.close()
        await other.close()


async def test_stray_files_in_the_wake_directory_do_not_break_notify(
    sockets: SocketWakeups,
) -> None:
    listener = await sockets.listen(INDEXED)
    where = sockets.directory / INDEXED
    (where / "not-a-socket").write_text("x")
    (where / "a-directory").mkdir()
    sockets.notify([INDEXED])
    assert await listener.wait(5.0)


def test_an_unknown_topic_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown wake-up topic"):
        SocketWakeups(tmp_path).notify(["../../etc"])


def test_the_backend_follows_the_database_url(tmp_path: Path) -> None:
    assert isinstance(wakeups_for("sqlite+aiosqlite:///x.db", tmp_path), SocketWakeups)
    pg = wakeups_for("postgresql+asyncpg://u:p@127.0.0.1:5432/db", tmp_path)
    assert isinstance(pg, PostgresWakeups)
    assert pg.dsn == "postgresql://u:p@127.0.0.1:5432/db"


# -- PostgreSQL's LISTEN connection ------------------------------------------------------


@pytest.mark.parametrize("services", ["postgresql"], indirect=True)
async def test_a_lost_listen_connection_wakes_its_listeners_and_comes_back(
    services: Services,
) -> None:
    """Notifications sent while the connection is down are gone, so losing it counts as
    a wake-up (the consumer re-reads); then it listens again. PostgreSQL only: SQLite's
    wake-ups need no connection."""
    assert not services.db.is_sqlite
    listener = await services.wakeups.listen(OUTBOX)
    async with services.db.reader() as r:
        await r.fetch_one(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
        )
    assert await listener.wait(10.0)
    for i in range(100):  # reconnected: a commit wakes it again
        await make_assets(services, [(f"again{i}.jpg", {})])
        if await listener.wait(0.2):
            break
    else:
        pytest.fail("the listener was never woken after its connection came back")


async def test_the_changes_of_one_group_commit_wake_each_listener_once(
    sockets: SocketWakeups,
) -> None:
    """The changes a group commit made durable resume together and each announces its
    topics: one datagram per listener goes out for all of them, right after them."""
    where = sockets.directory / OUTBOX
    where.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(where / "one"))
    listener.setblocking(False)
    try:
        for _ in range(5):  # five changes of one group, in one turn of the loop
            sockets.after_commit([OUTBOX])
        assert sockets.sent == 0  # not while the group's changes are still resuming
        await asyncio.sleep(0)
        assert sockets.sent == 1
        assert listener.recv(8) == b"\0"
        with pytest.raises(BlockingIOError):
            listener.recv(8)
        sockets.after_commit([OUTBOX, JOBS])  # a later commit: its own wake-up
        await asyncio.sleep(0)
        assert sockets.sent == 2
    finally:
        listener.close()
