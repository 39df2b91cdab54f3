"""The database of a test's service container, migrated before the test starts: a copy of
a template migrated once per test process (per xdist worker), never a migration per test.

- SQLite: the template is one file, migrated, its write-ahead log checkpointed into it
  and removed; each test copies that file into its data directory, where the services
  find it by default.
- PostgreSQL: each test gets a database created from the template database (tests/pg.py).

tests/unit/adapters/database/test_migrations.py proves that a migration of an empty
database reaches the newest revision and builds the same schema as these copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

SQLITE_FILE = "assetvault.db"  # where Settings.resolved_database_url looks in data_dir


async def migrate_sqlite(path: Path) -> Path:
    """Migrate a new SQLite file at ``path`` to the newest revision, as one file alone."""
    from assetvault.adapters.database.engine import Database

    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await db.migrate()
    finally:
        await db.dispose()
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    # The write turn's directory (adapters/database/turn.py) holds no data.
    leftovers = [
        p.name for p in path.parent.glob(path.name + "-*") if p.name != path.name + "-turn"
    ]
    if busy or leftovers:
        raise RuntimeError(f"the SQLite template is not one file: busy={busy}, {leftovers}")
    return path


def make_sqlite_template(directory: Path) -> Path:
    """The template file, migrated on a thread with its own event loop (it is requested
    from inside async fixtures)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, migrate_sqlite(directory / SQLITE_FILE)).result()


@contextlib.asynccontextmanager
async def migrated_database(
    request: Any, data_dir: Path, backend: str
) -> AsyncIterator[str | None]:
    """The ``database_url`` for services on ``backend`` (sqlite | postgresql) whose data
    directory is ``data_dir``: None on SQLite (the template copied into ``data_dir``, the
    default file), a database copied from the template on PostgreSQL, dropped after."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, data_dir / SQLITE_FILE)
        yield None
        return
    if backend != "postgresql":
        raise ValueError(f"unknown database backend {backend!r}: sqlite or postgresql")
    from tests.pg import create_test_database, drop_database

    admin_url: str = request.getfixturevalue("postgres_admin_url")
    url = await create_test_database(admin_url)
    try:
        yield url
    finally:
        await drop_database(admin_url, url)
