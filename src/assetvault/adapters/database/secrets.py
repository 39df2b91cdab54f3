"""Secrets kept in the shared database (table ``shared_secrets``), so that every machine
of an installation on PostgreSQL signs and verifies alike: the upload-token secret (from
which the import sources' token key is derived) and the event signing keys
(adapters/signing/keys.py, ``DatabaseKeyRing``).

A secret is made once by whichever process needs it first: ``INSERT ... ON CONFLICT DO
NOTHING`` and then a read of what is there, so processes racing on a fresh database all
end up with the first one's value. The callers ask from synchronous code (a setting, a
signature), once per process or per refresh, so each call is one short transaction on a
connection of its own, run on a thread with its own event loop (it may be called from
inside a running loop; that loop waits one round trip).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import asyncpg

T = TypeVar("T")

TABLE = "shared_secrets"


def is_shared_database(database_url: str) -> bool:
    """Whether the database is one that several machines use (PostgreSQL)."""
    return database_url.startswith("postgresql")


def plain_dsn(database_url: str) -> str:
    """``postgresql+asyncpg://...`` as the plain DSN asyncpg takes."""
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def run_in_transaction(database_url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``work`` in one transaction on a connection of its own; blocks until it is done."""

    async def main() -> T:
        import asyncpg

        conn = await asyncpg.connect(plain_dsn(database_url))
        try:
            async with conn.transaction():
                return await work(conn)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1, thread_name_prefix="shared-secrets") as pool:
        return pool.submit(asyncio.run, main()).result()


async def insert_if_absent(conn: asyncpg.Connection, name: str, value: str) -> bool:
    """Store ``value`` under ``name`` unless a value is there; whether this one was."""
    stored = await conn.fetchval(
        f"INSERT INTO {TABLE} (name, value, created_at) VALUES ($1, $2, now()) "
        "ON CONFLICT (name) DO NOTHING RETURNING name",
        name,
        value,
    )
    return stored is not None


async def read(conn: asyncpg.Connection, name: str) -> str | None:
    value = await conn.fetchval(f"SELECT value FROM {TABLE} WHERE name = $1", name)
    return None if value is None else str(value)


def shared_secret(database_url: str, name: str, make: Callable[[], str]) -> str:
    """The secret ``name``, made by ``make`` and stored if no process made it before."""

    async def work(conn: asyncpg.Connection) -> str:
        found = await read(conn, name)
        if found is not None:
            return found
        await insert_if_absent(conn, name, make())
        # Another process may have stored its own first: the stored one is the secret.
        value = await read(conn, name)
        assert value is not None
        return value

    return run_in_transaction(database_url, work)
