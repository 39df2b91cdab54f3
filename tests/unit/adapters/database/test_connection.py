"""SQLite's write connection: statements in the loop, one hop for the commit, the loop
never held by a lock or a long transaction, and a transaction's all-or-nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError

from assetvault.adapters.database import connection
from assetvault.adapters.database.connection import LoopConnection, SqliteWriter

schema = MetaData()
items = Table("items", schema, Column("id", Integer, primary_key=True), Column("name", String))


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[SqliteWriter]:
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    w = SqliteWriter(str(path))
    yield w
    w.close()


def names(writer: SqliteWriter) -> list[str]:
    path = writer._engine.url.database
    assert path is not None
    with sqlite3.connect(path) as c:
        return [r[0] for r in c.execute("SELECT name FROM items ORDER BY id")]


async def test_a_clean_exit_commits_with_one_hop_and_an_error_rolls_back(
    writer: SqliteWriter,
) -> None:
    async with writer.transaction() as conn:
        await conn.execute(insert(items).values(id=1, name="kept"))
        assert await conn.scalar(select(items.c.name)) == "kept"
    assert writer.hops == 1
    with pytest.raises(RuntimeError, match="boom"):
        async with writer.transaction() as conn:
            await conn.execute(insert(items).values(id=2, name="gone"))
            raise RuntimeError("boom")
    assert writer.hops == 1  # nothing to commit, no hop
    assert names(writer) == ["kept"]


async def test_a_failed_statement_leaves_the_transaction_open_and_whole(
    writer: SqliteWriter,
) -> None:
    """A constraint error ends the statement only: what the transaction did before and
    after it still commits or rolls back together."""
    async with writer.transaction() as conn:
        await conn.execute(insert(items).values(id=1, name="a"))
        with pytest.raises(IntegrityError):
            await conn.execute(insert(items).values(id=1, name="duplicate"))
        await conn.execute(insert(items).values(id=2, name="b"))
    assert names(writer) == ["a", "b"]
    with pytest.raises(ValueError):
        async with writer.transaction() as conn:
            await conn.execute(insert(items).values(id=3, name="c"))
            with pytest.raises(IntegrityError):
                await conn.execute(insert(items).values(id=1, name="duplicate"))
            await conn.execute(insert(items).values(id=4, name="d"))
            raise ValueError("abandon")
    assert names(writer) == ["a", "b"]


async def test_waiting_for_another_processs_lock_never_holds_the_loop(
    writer: SqliteWriter,
) -> None:
    path = writer._engine.url.database
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction
    ticks = 0
    longest = 0.0

    async def ticker() -> None:
        nonlocal ticks, longest
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.001)
            now = time.monotonic()
            longest = max(longest, now - last)
            last = now
            ticks += 1

    async def write() -> None:
        async with writer.transaction() as conn:
            await conn.execute(insert(items).values(id=1, name="after the lock"))

    tick = asyncio.create_task(ticker())
    waiting = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    assert ticks > 50
    other.execute("COMMIT")
    await asyncio.wait_for(waiting, 5)
    tick.cancel()
    other.close()
    assert names(writer) == ["after the lock"]
    assert longest < 0.1


async def test_a_long_transaction_gives_the_loop_back(writer: SqliteWriter) -> None:
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = time.monotonic()
    async with writer.transaction() as conn:
        for i in range(3000):
            await conn.execute(insert(items).values(id=i, name=f"n{i}"))
    elapsed = time.monotonic() - started
    tick.cancel()
    assert len(names(writer)) == 3000
    # It gave the loop back many times, never after much more than the 5 ms budget.
    assert len(gaps) > elapsed / 0.02
    assert max(gaps) < connection.YIELD_EVERY_SECONDS + 0.05


async def test_a_nested_transaction_fails_instead_of_waiting_for_itself(
    writer: SqliteWriter,
) -> None:
    async with writer.transaction() as conn:
        await conn.execute(insert(items).values(id=1, name="outer"))
        with pytest.raises(RuntimeError, match="cannot open another"):
            async with writer.transaction():
                pass
    assert names(writer) == ["outer"]


async def test_concurrent_transactions_of_one_process_queue(writer: SqliteWriter) -> None:
    async def add(i: int) -> None:
        async with writer.transaction() as conn:
            count = len((await conn.execute(select(items.c.id))).all())
            await asyncio.sleep(0.001)  # another task runs meanwhile
            await conn.execute(insert(items).values(id=i, name=str(count)))

    await asyncio.gather(*(add(i) for i in range(20)))
    # Each saw exactly the commits before it: no two ran interleaved.
    assert sorted(int(n) for n in names(writer)) == list(range(20))
    assert writer.commits == 20
    assert writer.hops < 20  # they queued together, so they committed together


async def test_a_request_cancelled_during_its_commit_leaves_the_connection_usable(
    writer: SqliteWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_commit = SqliteWriter._commit

    def commit(raw: sqlite3.Connection) -> None:
        time.sleep(0.2)
        slow_commit(raw)

    monkeypatch.setattr(SqliteWriter, "_commit", staticmethod(commit))

    async def write() -> None:
        async with writer.transaction() as conn:
            await conn.execute(insert(items).values(id=1, name="committed anyway"))

    task = asyncio.create_task(write())
    await asyncio.sleep(0.05)  # now inside the commit
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The commit ran to its end before the connection was let go.
    assert names(writer) == ["committed anyway"]
    async with writer.transaction() as conn:
        await conn.execute(insert(items).values(id=2, name="next"))
    assert names(writer) == ["committed anyway", "next"]


async def test_durable_commits_are_flushed_and_bookkeeping_ones_need_not_be(
    tmp_path: Path,
) -> None:
    """synchronous=FULL by default (a 2xx means on disk); NORMAL for a consumer's own
    position, which a replay restores."""
    found = {}
    for durable in (True, False):
        w = SqliteWriter(str(tmp_path / f"{durable}.sqlite"), durable=durable)
        async with w.transaction() as conn:
            found[durable] = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
        w.close()
    assert found == {True: 2, False: 1}


async def _gather_changes(
    writer: SqliteWriter, *bodies: Callable[[LoopConnection], Awaitable[None]]
) -> list[BaseException | None]:
    async def run(body: Callable[[LoopConnection], Awaitable[None]]) -> None:
        async with writer.transaction() as conn:
            await body(conn)

    results = await asyncio.gather(*(run(b) for b in bodies), return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in results]


def _insert(i: int) -> Callable[[LoopConnection], Awaitable[None]]:
    async def body(conn: LoopConnection) -> None:
        await conn.execute(insert(items).values(id=i, name=f"n{i}"))

    return body


async def test_changes_that_queue_together_commit_together_and_fail_alone(
    writer: SqliteWriter,
) -> None:
    async def failing(conn: LoopConnection) -> None:
        await conn.execute(insert(items).values(id=100, name="undone"))
        raise ValueError("this change only")

    results = await _gather_changes(writer, _insert(1), _insert(2), failing, _insert(3), _insert(4))
    assert [type(r).__name__ if r else None for r in results] == [
        None,
        None,
        "ValueError",
        None,
        None,
    ]
    assert names(writer) == ["n1", "n2", "n3", "n4"]
    assert writer.commits == 4
    assert writer.hops == 1  # one fsync for the five that arrived together


async def test_no_change_of_a_group_returns_before_its_commit_is_durable(
    writer: SqliteWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_started = asyncio.Event()
    release = threading.Event()
    real_commit = SqliteWriter._commit
    loop = asyncio.get_running_loop()

    def held_commit(raw: sqlite3.Connection) -> None:
        loop.call_soon_threadsafe(commit_started.set)
        release.wait(5)
        real_commit(raw)

    monkeypatch.setattr(SqliteWriter, "_commit", staticmethod(held_commit))
    changes = asyncio.ensure_future(_gather_changes(writer, _insert(1), _insert(2)))
    await asyncio.wait_for(commit_started.wait(), 5)
    await asyncio.sleep(0.05)
    assert not changes.done()  # both are inside the commit, neither is answered
    assert names(writer) == []
    release.set()
    assert await changes == [None, None]
    assert names(writer) == ["n1", "n2"]


async def test_a_failed_commit_fails_every_change_of_its_group(
    writer: SqliteWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(raw: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(SqliteWriter, "_commit", staticmethod(full_disk))
    results = await _gather_changes(writer, _insert(1), _insert(2), _insert(3))
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    monkeypatch.undo()
    assert names(writer) == []
    assert await _gather_changes(writer, _insert(4)) == [None]  # the writer goes on
    assert names(writer) == ["n4"]


async def test_a_transaction_sqlite_ended_is_never_acknowledged(writer: SqliteWriter) -> None:
    """When SQLite rolls the whole transaction back (an I/O error, a full disk), the
    changes already in the group are lost with it: they fail, and the next change begins
    a transaction of its own."""

    async def ended(conn: LoopConnection) -> None:
        await conn.execute(insert(items).values(id=2, name="n2"))
        await conn.exec_driver_sql("ROLLBACK")  # what SQLite does on such an error

    results = await _gather_changes(writer, _insert(1), ended, _insert(3))
    assert isinstance(results[0], sqlite3.OperationalError)  # lost with the group
    assert isinstance(results[1], sqlite3.OperationalError)
    assert results[2] is None
    assert names(writer) == ["n3"]


async def test_the_commit_passes_the_turn_on_before_the_loop_runs_again(
    writer: SqliteWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next writer (another process, often) waits for the commit, not also for this
    process's loop to come round again: on a busy or lower-priority process (serve's
    roles) that was milliseconds more of holding the write turn."""
    turn = writer._turn
    assert turn is not None
    passed: list[tuple[int, bool]] = []  # (thread, committed by then)
    give = turn.give

    def recorded(ticket: int) -> None:
        with sqlite3.connect(writer._engine.url.database or "") as c:
            committed = c.execute("SELECT count(*) FROM items").fetchone()[0] == 1
        passed.append((threading.get_ident(), committed))
        give(ticket)

    monkeypatch.setattr(turn, "give", recorded)
    async with writer.transaction() as conn:
        await conn.execute(insert(items).values(id=1, name="one"))
    assert len(passed) == 1
    thread, committed = passed[0]
    assert committed  # after COMMIT, never before
    assert thread != threading.get_ident()  # on the commit's thread, not the loop's
    # The line goes on: the next transaction gets the turn at once.
    async with writer.transaction() as conn:
        await conn.execute(insert(items).values(id=2, name="two"))
    assert names(writer) == ["one", "two"]
