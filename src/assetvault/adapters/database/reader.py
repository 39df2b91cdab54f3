"""Reads without the general machinery: plain SQL on the driver itself.

DESIGN.md, "Data access": on SQLite a point read runs on a per-process sqlite3
connection in the event loop (WAL readers never wait on writers; a short busy timeout
covers the rare wait, with async retries); on PostgreSQL it runs on asyncpg, with no
thread at all. Repositories write their SQL once, with ``?`` placeholders, and run it
through a ``Reader`` — this one, or the write transaction's connection (``AlchemyReader``),
so the same function serves reads and the reads inside a change.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from assetvault.adapters.database.connection import Connection

if TYPE_CHECKING:  # imported when first used: SQLite processes never load it
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

Row = tuple[Any, ...]

BUSY_TIMEOUT_MS = 20  # the loop may wait this long at most, then retries without blocking
BUSY_RETRIES = 200


class Reader(Protocol):
    dialect: str  # "sqlite" | "postgresql"

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


@lru_cache(maxsize=1024)
def dollar_placeholders(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (no SQL here has a literal ?)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


class SqliteReader:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        for attempt in range(BUSY_RETRIES):
            try:
                return self._conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                await asyncio.sleep(min(0.001 * (attempt + 1), 0.05))
        raise TimeoutError("the database stayed busy")

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None


class AsyncpgReader:
    dialect = "postgresql"

    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows = await self._conn.fetch(dollar_placeholders(sql), *params)
        return [tuple(r) for r in rows]

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row = await self._conn.fetchrow(dollar_placeholders(sql), *params)
        return tuple(row) if row is not None else None


class AlchemyReader:
    """The same SQL on a SQLAlchemy connection: the reads inside a write transaction."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self._conn = conn
        self.dialect = dialect

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        text = dollar_placeholders(sql) if self.dialect == "postgresql" else sql
        result = await self._conn.exec_driver_sql(text, tuple(params))
        return [tuple(r) for r in result.all()]

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None


class SqliteReaders:
    """Idle read connections of this process (more than one only while a read
    transaction waits on something else)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._idle: list[sqlite3.Connection] = []

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only=1")
        return conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[SqliteReader]:
        conn = self._idle.pop() if self._idle else self._open()
        reader = SqliteReader(conn)
        await reader.fetch_all("BEGIN")  # one consistent snapshot for the whole read
        try:
            yield reader
        finally:
            conn.execute("COMMIT")
            self._idle.append(conn)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class PostgresReaders:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    import asyncpg

                    self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=8)
        return self._pool

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncpgReader]:
        pool = await self._get_pool()
        async with (
            pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield AsyncpgReader(conn)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
