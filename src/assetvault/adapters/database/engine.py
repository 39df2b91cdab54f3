"""Database adapter: one async engine, read and write transactions, migrations.

SQLite runs in WAL mode with synchronous=FULL (a 2xx means the commit is on disk). Its
write transactions run on the process's one loop writer (connection.py: BEGIN IMMEDIATE,
statements in the loop, the commit on a thread); point reads on reader.py's connections;
the async engine is left for migrations and the other reads. PostgreSQL needs none of this.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection as SyncConnection
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

from assetvault.adapters.database.connection import Connection, LoopConnection, SqliteWriter
from assetvault.adapters.database.reader import (
    AlchemyReader,
    PostgresReaders,
    Reader,
    SqliteReaders,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class Database:
    def __init__(self, url: str, *, echo: bool = False, durable: bool = True) -> None:
        """``durable=False``: on SQLite, commits are not flushed to disk one by one (WAL
        with synchronous=NORMAL: a power cut may lose the last ones, a crash of the
        process does not), for bookkeeping that a replay restores."""
        self.url = url
        self.durable = durable
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 60}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.dialect = "sqlite" if self.is_sqlite else "postgresql"
        # Transactions begun by this process (reads and writes): what a request costs.
        self.transactions = 0
        # Awaited before every transaction when set: how a process that keeps no request
        # open honours the restore gate (runtime/gate.py; the roles set it).
        self.gatekeeper: Callable[[], Awaitable[None]] | None = None
        self._sqlite_readers: SqliteReaders | None = None
        self._sqlite_writer: SqliteWriter | None = None
        self._postgres_readers: PostgresReaders | None = None
        if self.is_sqlite:
            self._configure_sqlite()
            self._sqlite_readers = SqliteReaders(self.engine.url.database or ":memory:")
            self._sqlite_writer = SqliteWriter(
                self.engine.url.database or ":memory:", durable=durable
            )
        else:
            dsn = self.engine.url.set(drivername="postgresql")
            self._postgres_readers = PostgresReaders(dsn.render_as_string(hide_password=False))

    def _configure_sqlite(self) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event own transaction start (pysqlite would
            # otherwise open DEFERRED transactions on its own).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: SyncConnection) -> None:
            conn.exec_driver_sql(conn.info.pop("assetvault_begin", "BEGIN"))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        self.transactions += 1
        if self.gatekeeper is not None:
            await self.gatekeeper()
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[Reader]:
        """One read transaction on the driver itself (see reader.py): no thread hop on
        SQLite, no thread at all on PostgreSQL."""
        self.transactions += 1
        if self.gatekeeper is not None:
            await self.gatekeeper()
        if self._sqlite_readers is not None:
            async with self._sqlite_readers.snapshot() as r:
                yield r
        else:
            assert self._postgres_readers is not None
            async with self._postgres_readers.snapshot() as pg:
                yield pg

    def reader_of(self, conn: Connection) -> Reader:
        """The same SQL inside a write transaction: on SQLite on the driver itself (the
        loop connection), on PostgreSQL through the SQLAlchemy connection."""
        if isinstance(conn, LoopConnection):
            return conn
        return AlchemyReader(conn, self.dialect)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """One write transaction: committed when the block exits cleanly, else rolled back.
        On SQLite its statements run in the loop and only the commit takes a thread hop
        (connection.py); on PostgreSQL it runs on asyncpg."""
        self.transactions += 1
        if self.gatekeeper is not None:
            await self.gatekeeper()
        if self._sqlite_writer is not None:
            async with self._sqlite_writer.transaction() as loop_conn:
                yield loop_conn
            return
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @property
    def write_hops(self) -> int:
        """Thread hops taken by this process's write transactions (SQLite commits)."""
        return self._sqlite_writer.hops if self._sqlite_writer is not None else 0

    async def ping(self) -> None:
        """One round trip: raises when the database cannot answer."""
        async with self.reader() as r:
            await r.fetch_one("SELECT 1")

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision. A database already there (a
        restart, a copied data directory) costs one read of its revision, nothing more."""
        async with self.engine.connect() as conn:
            await conn.run_sync(_upgrade, self.url)
            await conn.commit()

    async def optimize(self) -> None:
        """Refresh the query planner's statistics where they are stale (SQLite keeps none
        on its own; PostgreSQL's autovacuum does). Bounded work: SQLite samples each
        index rather than reading it whole."""
        if not self.is_sqlite:
            return
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            await conn.exec_driver_sql("PRAGMA optimize=0x10002")
            await conn.commit()

    async def reopen(self) -> None:
        """Close every connection this process holds; the next transaction opens new
        ones (after a restore replaced the database's content: nothing of the old file's
        state stays cached). Only while no transaction of this process is open."""
        if self._sqlite_readers is not None:
            self._sqlite_readers.close()
        if self._sqlite_writer is not None:
            self._sqlite_writer.reconnect()
        if self._postgres_readers is not None:
            await self._postgres_readers.close()
        await self.engine.dispose()

    async def dispose(self) -> None:
        if self._sqlite_readers is not None:
            self._sqlite_readers.close()
        if self._sqlite_writer is not None:
            self._sqlite_writer.close()
        if self._postgres_readers is not None:
            await self._postgres_readers.close()
        await self.engine.dispose()


def alembic_config(url: str) -> Config:
    # Alembic is imported where the schema is looked at, not by every process that
    # opens the database (an API process under serve starts on a schema already current).
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The newest revisions of the migrations this code ships (read once per process).

    Read from the migration files' ``revision`` and ``down_revision`` lines rather than
    through Alembic, whose import is most of what a start on a current database would
    cost (a test holds this equal to Alembic's own answer)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found = _REVISION.search(text)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN_REVISION.search(text)
        if down is not None:
            parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return frozenset(revisions - parents)


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of the migrations this code ships (an older one, or
    the newest): a database at an unknown one was made by a newer or another version."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(""))
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic's ResolutionError, or a malformed identifier
        return False


def current_revisions(sync_conn: SyncConnection) -> frozenset[str]:
    """The revisions the database is at (empty for a database never migrated)."""
    from alembic.migration import MigrationContext

    return frozenset(MigrationContext.configure(sync_conn).get_current_heads())


def sqlite_schema_current(path: Path) -> bool:
    """Whether the SQLite database at ``path`` is at the newest revision, read with
    sqlite3 alone (no engine, no Alembic): what ``serve`` asks before it decides whether
    a migration has to run at all. False when in doubt (no file, no table, an error)."""
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return False
    try:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return frozenset(str(row[0]) for row in rows) == head_revisions()


def stored_revisions(sync_conn: SyncConnection) -> frozenset[str]:
    """What ``current_revisions`` answers, read with one query and no Alembic import."""
    try:
        rows = sync_conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:  # never migrated: no such table
        sync_conn.rollback()
        return frozenset()
    return frozenset(str(row[0]) for row in rows)


# The advisory lock that keeps migrations of one PostgreSQL database one at a time.
MIGRATION_LOCK = 0x61737476  # 'astv'


def _upgrade(sync_conn: SyncConnection, url: str) -> None:
    at_head = stored_revisions(sync_conn) == head_revisions()
    sync_conn.rollback()  # end the read; the upgrade begins its own transaction
    if at_head:
        return
    if sync_conn.dialect.name == "postgresql":
        # Several machines may start at once on a new database: one migrates, the
        # others wait for it (the lock ends with the transaction) and find it done.
        sync_conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        if current_revisions(sync_conn) == head_revisions():
            sync_conn.commit()
            return
    from alembic import command

    cfg = alembic_config(url)
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")
