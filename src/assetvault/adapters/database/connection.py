"""The connection a write transaction hands to the repositories.

On PostgreSQL it is SQLAlchemy's ``AsyncConnection`` over asyncpg (no thread at all). On
SQLite it is ``LoopConnection``: one sqlite3 connection per process whose statements run
in the event loop itself, so a write transaction costs exactly one thread hop, for its
COMMIT (the fsync must not stall the loop). Both satisfy ``Connection``.

Why not aiosqlite: each of its statements is a hop to its thread and back, and one hop
alone costs tens of milliseconds at p99 on a busy two-core machine (DESIGN.md, "Data
access"). SQLite statements inside a transaction are microseconds; waiting on another
process's write lock is the only slow part, and it is done with async retries, never by
blocking the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection as SyncConnection
from sqlalchemy import CursorResult, Executable, create_engine
from sqlalchemy.pool import StaticPool

from assetvault.adapters.database.turn import WriteTurn

T = TypeVar("T")
log = logging.getLogger("assetvault.database")
Result = CursorResult[*tuple[Any, ...]]

# How long a write may wait for another process's write lock before it fails.
LOCK_WAIT_SECONDS = 60.0
# A long transaction (a copy of a big folder) gives the loop back this often, so no
# request waits behind it longer than this.
YIELD_EVERY_SECONDS = 0.005


class Connection(Protocol):
    """What repositories may do inside a transaction."""

    async def execute(self, statement: Executable, parameters: Any = None) -> Result: ...

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any: ...

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Result: ...


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


class LoopConnection:
    """SQLAlchemy Core statements on a sync sqlite3 connection, run in the event loop.
    It is also the transaction's ``Reader`` (reader.py): SQL on the driver itself."""

    dialect = "sqlite"

    def __init__(self, sync: SyncConnection) -> None:
        self._sync = sync
        self._gave_back = time.monotonic()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        # No busy timeout on this connection: a statement that meets a lock (rare inside
        # a transaction begun IMMEDIATE in WAL mode) is retried after an async sleep.
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        attempt = 0
        while True:
            try:
                result = fn(*args)
                break
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
            except Exception as exc:  # SQLAlchemy wraps the driver's error
                orig = getattr(exc, "orig", None)
                if not (isinstance(orig, sqlite3.OperationalError) and _busy(orig)):
                    raise
                if time.monotonic() > deadline:
                    raise
            attempt += 1
            await asyncio.sleep(min(0.001 * attempt, 0.05))
        if time.monotonic() - self._gave_back > YIELD_EVERY_SECONDS:
            await asyncio.sleep(0)
            self._gave_back = time.monotonic()
        return result

    async def execute(self, statement: Executable, parameters: Any = None) -> Result:
        return await self._run(self._sync.execute, statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        return await self._run(self._sync.scalar, statement, parameters)

    async def exec_driver_sql(
        self, statement: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> Result:
        return await self._run(self._sync.exec_driver_sql, statement, parameters)

    # The driver itself, without SQLAlchemy's result and type machinery (a statement
    # through it costs several times the statement's own work): SQL with ``?``
    # placeholders and values as SQLite stores them (sqlite_value).

    def _driver(self) -> sqlite3.Connection:
        raw = self._sync.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement (a read, or a write with RETURNING)."""
        return await self._run(lambda: self._driver().execute(sql, tuple(params)).fetchall())

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for each of ``rows``, in their order."""
        await self._run(lambda: self._driver().executemany(sql, rows))


def sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy's SQLite types store it, for statements on the driver: a
    datetime as its wall-clock text with microseconds (the zone left out, as SQLAlchemy
    does: the write path's times are UTC), a dict or list as JSON text (``json.dumps``,
    as the JSON type writes it)."""
    if isinstance(value, datetime):
        return (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:"
            f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}"
        )
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


async def _settled(future: asyncio.Future[Any]) -> None:
    """Wait until ``future`` is done, through any number of cancellations."""
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({future})


class _Group:
    """The changes one COMMIT makes durable: those that queued for the writer while the
    previous commit was in its fsync (group commit)."""

    def __init__(self) -> None:
        self.members = 0
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Set when SQLite ended the whole transaction (an I/O error, a full disk): the
        # changes already in it are lost, so none of them may be acknowledged.
        self.broken: BaseException | None = None
        self.ticket: int | None = None  # this group's place in the processes' line


class SqliteWriter:
    """This process's one write connection to a SQLite database. Transactions queue on an
    asyncio lock (SQLite takes one writer at a time anyway), FIFO, and run their
    statements in the loop. Changes that queued while a commit was in its fsync run next
    in one SQLite transaction, each inside its own SAVEPOINT (a change that fails is
    rolled back alone), and one COMMIT on a thread makes them all durable: every caller
    returns only after that commit, so an acknowledged change is on disk."""

    def __init__(self, path: str, *, durable: bool = True) -> None:
        self._durable = durable  # False: synchronous=NORMAL (see Database)
        self._engine = create_engine(
            f"sqlite:///{path}",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "isolation_level": None},
        )
        self._sync: SyncConnection | None = None
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None  # the task inside a transaction
        self._group: _Group | None = None  # the open SQLite transaction's changes
        self._flushers: set[asyncio.Task[None]] = set()
        self._turn: WriteTurn | None = None
        if path not in ("", ":memory:"):
            try:
                self._turn = WriteTurn(path)
            except OSError:
                log.warning("no write turn beside %s: writers retry for the lock", path)
        # Thread hops taken by this writer's commits (one per group): what a test counts.
        self.hops = 0
        self.commits = 0  # changes committed, for the same tests

    def _connection(self) -> SyncConnection:
        if self._sync is None:
            sync = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            raw = self._raw(sync)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'NORMAL'}")
            raw.execute("PRAGMA foreign_keys=ON")
            raw.execute("PRAGMA busy_timeout=0")
            self._sync = sync
        return self._sync

    @staticmethod
    def _raw(sync: SyncConnection) -> sqlite3.Connection:
        raw = sync.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[LoopConnection]:
        if self._owner is not None and self._owner is asyncio.current_task():
            # It would wait for itself forever.
            raise RuntimeError("a write transaction cannot open another on the same database")
        async with self._lock:
            sync = self._connection()
            raw = self._raw(sync)
            conn = LoopConnection(sync)
            group = self._group
            if group is None:
                ticket = await self._take_turn()
                try:
                    await conn._run(raw.execute, "BEGIN IMMEDIATE")
                except BaseException:
                    self._give_turn(ticket)
                    raise
                group = self._group = _Group()
                group.ticket = ticket
                # The flusher queues on the lock behind every change waiting now: they
                # join this group, and what arrives later waits for the next one.
                flusher = asyncio.ensure_future(self._flush(group))
                self._flushers.add(flusher)
                flusher.add_done_callback(self._flushers.discard)
            savepoint = f"change_{group.members}"
            raw.execute(f"SAVEPOINT {savepoint}")
            self._owner = asyncio.current_task()
            try:
                yield conn
            except BaseException as exc:
                self._undo(raw, savepoint, group, exc)
                raise
            finally:
                self._owner = None
            if not raw.in_transaction:  # SQLite ended it (an I/O error, a full disk)
                lost = sqlite3.OperationalError("SQLite rolled the transaction back")
                self._break(raw, group, lost)
                raise lost
            raw.execute(f"RELEASE {savepoint}")
            group.members += 1
        try:
            await asyncio.shield(group.committed)
        except asyncio.CancelledError:
            # The commit goes on in the flusher; a cancelled caller still waits for it to
            # end, so nothing it made is left in doubt when it returns.
            await _settled(group.committed)
            raise

    def _undo(
        self, raw: sqlite3.Connection, savepoint: str, group: _Group, exc: BaseException
    ) -> None:
        """Roll back one change to its savepoint; the group's other changes stay."""
        if raw.in_transaction:
            try:
                raw.execute(f"ROLLBACK TO {savepoint}")
                raw.execute(f"RELEASE {savepoint}")
                return
            except sqlite3.Error as undo_failed:
                exc = undo_failed
        self._break(raw, group, exc)

    def _break(self, raw: sqlite3.Connection, group: _Group, exc: BaseException) -> None:
        """The group's transaction is lost: its changes fail, the next begins anew."""
        group.broken = exc
        if raw.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                raw.execute("ROLLBACK")
        self._end_turn(group)
        if self._group is group:
            self._group = None

    async def _take_turn(self) -> int | None:
        """Wait for this process's turn among the database's writers (turn.py): at once
        when nobody else is writing, else on a thread until the one before passes it on."""
        turn = self._turn
        if turn is None:
            return None
        ticket = turn.ticket()
        if turn.served(ticket, turn.current()):
            return ticket
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        waiting = asyncio.ensure_future(asyncio.to_thread(turn.wait, ticket, deadline))
        try:
            await asyncio.shield(waiting)
        except BaseException:
            turn.abandon(ticket)  # the line goes on without this ticket
            raise
        return ticket  # served, or past its deadline: SQLite's own lock still decides

    def _give_turn(self, ticket: int | None) -> None:
        if self._turn is not None and ticket is not None:
            self._turn.give(ticket)

    def _end_turn(self, group: _Group) -> None:
        ticket, group.ticket = group.ticket, None
        self._give_turn(ticket)

    async def _flush(self, group: _Group) -> None:
        async with self._lock:
            if self._group is group:
                self._group = None
            raw = self._raw(self._connection())
            if group.broken is not None:
                if group.members:
                    group.committed.set_exception(group.broken)
                else:
                    group.committed.set_result(None)
                return
            if group.members == 0:  # every change of it failed and was undone
                raw.execute("ROLLBACK")
                self._end_turn(group)
                group.committed.set_result(None)
                return
            self.hops += 1
            # The commit's thread passes the turn on as soon as COMMIT returns: the next
            # writer (often another process) need not wait until this loop runs again,
            # which, busy with other work or on a lower CPU priority (the roles), may be
            # milliseconds later.
            ticket, group.ticket = group.ticket, None
            try:
                await asyncio.to_thread(self._commit_and_pass, raw, ticket)
            except BaseException as exc:
                if raw.in_transaction:  # the commit failed
                    raw.execute("ROLLBACK")
                self._give_turn(ticket)  # no-op when the thread passed it on already
                group.committed.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                self.commits += group.members
                group.committed.set_result(None)

    def _commit_and_pass(self, raw: sqlite3.Connection, ticket: int | None) -> None:
        """COMMIT (on a thread), then pass the turn on from this thread."""
        self._commit(raw)
        self._give_turn(ticket)

    @staticmethod
    def _commit(raw: sqlite3.Connection) -> None:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                raw.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def reconnect(self) -> None:
        """Close the write connection (none is in use: the caller knows); the next
        transaction opens a new one. The turn stays."""
        if self._sync is not None and self._group is None and self._owner is None:
            self._sync.close()
            self._sync = None

    def close(self) -> None:
        if self._turn is not None:
            self._turn.close()
            self._turn = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        self._engine.dispose()
