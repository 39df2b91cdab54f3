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
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection as SyncConnection
from sqlalchemy import CursorResult, Executable, create_engine
from sqlalchemy.pool import StaticPool

T = TypeVar("T")
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
    """SQLAlchemy Core statements on a sync sqlite3 connection, run in the event loop."""

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


async def _settled(future: asyncio.Future[Any]) -> None:
    """Wait until ``future`` is done, through any number of cancellations."""
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({future})


class SqliteWriter:
    """This process's one write connection to a SQLite database. Transactions queue on an
    asyncio lock (SQLite takes one writer at a time anyway), begin IMMEDIATE, run their
    statements in the loop and commit on a thread."""

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
        # Thread hops taken by this writer's commits: what a test counts.
        self.hops = 0

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
            await conn._run(raw.execute, "BEGIN IMMEDIATE")
            self._owner = asyncio.current_task()
            try:
                yield conn
            except BaseException:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                raise
            finally:
                self._owner = None
            self.hops += 1
            commit = asyncio.ensure_future(asyncio.to_thread(self._commit, raw))
            try:
                await asyncio.shield(commit)
            except asyncio.CancelledError:
                # The commit goes on in its thread: the connection (and the lock) is
                # free only once it has ended, whatever it did.
                await _settled(commit)
                raise
            finally:
                if raw.in_transaction:  # the commit failed
                    raw.execute("ROLLBACK")

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

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        self._engine.dispose()
