"""The write turn: writers of one SQLite database, in several processes, take the write
lock first come first served; a dead or departed holder never stalls the line."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from assetvault.adapters.database.connection import SqliteWriter
from assetvault.adapters.database.turn import STUCK_SECONDS, WriteTurn

schema = MetaData()
items = Table("items", schema, Column("id", Integer, primary_key=True), Column("name", String))


def _database(tmp_path: Path) -> str:
    path = tmp_path / "db.sqlite"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    return str(path)


def _write_flat_out(
    path: str, name: str, window: object, ready: object, go: object, out: object
) -> None:
    """A process that writes as fast as it can, one change at a time, until the end of
    the common ``window`` (monotonic instants, the same clock in every process), and
    reports how many it made, how many of them it began within the window, and its
    longest wait for one. A writer woken late by the scheduler neither writes alone
    after the others stopped nor counts the start it missed."""

    async def main() -> tuple[int, int, float]:
        writer = SqliteWriter(path)
        async with writer.transaction() as conn:  # everything imported and opened
            await conn.execute(insert(items).values(name="warm-up"))
        ready.put(name)  # type: ignore[attr-defined]
        go.wait(60)  # type: ignore[attr-defined]
        start, until = window[0], window[1]  # type: ignore[index]
        made, counted, longest = 0, 0, 0.0
        while time.monotonic() < until:
            asked = time.monotonic()
            async with writer.transaction() as conn:
                await conn.execute(insert(items).values(name=name))
            longest = max(longest, time.monotonic() - asked)
            made += 1
            counted += asked >= start
        writer.close()
        return made, counted, longest

    out.put((name, *asyncio.run(main())))  # type: ignore[attr-defined]


def write_flat_out(path: str, writers: int, seconds: float) -> dict[str, tuple[int, int, float]]:
    """Each writer process's count of changes, of those begun within the common window of
    ``seconds`` (from half a second after the go, when every writer runs), and its longest
    wait for one."""
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
    window = ctx.Array("d", 2)
    procs = [
        ctx.Process(target=_write_flat_out, args=(path, f"w{i}", window, ready, go, out))
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    window[0] = time.monotonic() + 0.5
    window[1] = window[0] + seconds
    go.set()
    results = {}
    for _ in procs:
        name, made, counted, longest = out.get(timeout=60)
        results[name] = (made, counted, longest)
    for p in procs:
        p.join(10)
    return results


def test_four_processes_writing_flat_out_each_get_their_turn(tmp_path: Path) -> None:
    path = _database(tmp_path)
    results = write_flat_out(path, 4, 3.0)
    counts = [counted for _, counted, _ in results.values()]
    waits = [longest for _, _, longest in results.values()]
    assert sum(counts) > 100, results
    # First come, first served: the writers take turns, so their counts differ by a
    # turn or two (sleep-and-retry gave one 100 changes and another 155, or 142 and 419),
    # and no change waits long (each waits at most one turn of each other writer).
    assert max(counts) - min(counts) <= 2 + 0.05 * max(counts), results
    assert max(waits) < 0.5, results
    with sqlite3.connect(path) as c:
        written = c.execute("SELECT count(*) FROM items WHERE name != 'warm-up'").fetchone()[0]
    assert written == sum(made for made, _, _ in results.values())


def _hold_the_turn_then_wait(path: str, ready: object) -> None:
    turn = WriteTurn(path)
    ticket = turn.ticket()
    assert turn.wait(ticket, time.monotonic() + 10)
    ready.set()  # type: ignore[attr-defined]
    time.sleep(60)  # killed before it gives the turn back


def test_a_holder_killed_mid_turn_does_not_stall_the_line(tmp_path: Path) -> None:
    path = _database(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_the_turn_then_wait, args=(path, ready))
    holder.start()
    assert ready.wait(30)
    turn = WriteTurn(path)
    ticket = turn.ticket()
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    started = time.monotonic()
    assert turn.wait(ticket, time.monotonic() + 10)
    assert time.monotonic() - started < STUCK_SECONDS + 1.0
    turn.give(ticket)
    turn.close()


def test_a_live_holder_is_waited_for_and_its_give_wakes_the_next(tmp_path: Path) -> None:
    path = _database(tmp_path)
    first, second = WriteTurn(path), WriteTurn(path)
    a = first.ticket()
    assert first.wait(a, time.monotonic() + 1)
    b = second.ticket()
    # The holder is alive (this process): the line waits for it past STUCK_SECONDS.
    assert not second.wait(b, time.monotonic() + STUCK_SECONDS * 3)
    c = second.ticket()  # the timed-out ticket was abandoned; a new one queues
    first.give(a)
    assert second.wait(c, time.monotonic() + 1)  # the abandoned ticket was skipped
    second.give(c)
    d = first.ticket()
    assert first.wait(d, time.monotonic() + 0.1)  # nobody ahead: served at once
    first.give(d)
    first.close()
    second.close()


async def test_a_cancelled_waiter_leaves_the_line(tmp_path: Path) -> None:
    path = _database(tmp_path)
    holder = WriteTurn(path)
    held = holder.ticket()
    assert holder.wait(held, time.monotonic() + 1)
    writer = SqliteWriter(path)

    async def write(name: str) -> None:
        async with writer.transaction() as conn:
            await conn.execute(insert(items).values(name=name))

    cancelled = asyncio.create_task(write("never"))
    await asyncio.sleep(0.1)
    assert not cancelled.done()  # waiting for the turn
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    holder.give(held)
    await asyncio.wait_for(write("after"), 5)  # not stuck behind the cancelled ticket
    writer.close()
    holder.close()
    with sqlite3.connect(path) as c:
        assert [r[0] for r in c.execute("SELECT name FROM items")] == ["after"]
