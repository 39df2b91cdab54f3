"""A PostgreSQL database brought back to an empty DAM in one transaction (the reset of
docs/ci.md, "Snapshots and reset", on a shared database).

Every table of the schema is emptied by one ``TRUNCATE ... RESTART IDENTITY`` except:

- ``alembic_version`` (the schema stays where it is);
- ``shared_secrets``: the upload-token secret and the event signing keys, which the other
  machines of the installation hold too (a reset that changed them would make their
  signatures and upload tokens invalid until they restart);
- ``api_tokens`` when the tokens are kept, ``event_registrations`` when they are.

Every other sequence of the schema (one no column owns) restarts as well, and the rows a
fresh migration inserts are put back as migrations make them (``SEED``): the root
folder, the outbox floor and the dispatcher's free lease. A test compares the result
with a freshly migrated database (tests/unit/adapters/database/test_reset.py).

One transaction-scoped advisory lock (``RESET_LOCK``) keeps two resets, from two
machines, from running together. ``TRUNCATE`` takes an ACCESS EXCLUSIVE lock on each
table: it waits for the transactions that use them to end, and statements of others wait
for the commit; each statement of another machine sees the data before the reset or
after it, never a mix.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from assetvault.adapters.database.secrets import run_in_transaction

if TYPE_CHECKING:
    import asyncpg

# pg_advisory_xact_lock's key: "assetvault reset" folded to 63 bits, fixed.
RESET_LOCK = 0x6173_7376_7265_7365
KEPT_ALWAYS = ("alembic_version", "shared_secrets")


async def empty_dam(
    conn: asyncpg.Connection, *, keep_tokens: bool, keep_registrations: bool
) -> int:
    """Empty the DAM on ``conn``, inside the caller's transaction; how many assets there
    were."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", RESET_LOCK)
    kept = set(KEPT_ALWAYS)
    if keep_tokens:
        kept.add("api_tokens")
    if keep_registrations:
        kept.add("event_registrations")
    tables = [
        r["tablename"]
        for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
        if r["tablename"] not in kept
    ]
    assets = int(await conn.fetchval("SELECT count(*) FROM nodes WHERE kind = 'asset'"))
    names = ", ".join(_quoted(t) for t in tables)
    await conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
    # Sequences no column owns (TRUNCATE restarts only the owned ones).
    for row in await conn.fetch(
        "SELECT c.oid::regclass::text AS name FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'S' AND n.nspname = current_schema() AND NOT EXISTS ("
        "  SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))"
    ):
        await conn.execute(f"ALTER SEQUENCE {row['name']} RESTART")
    await _seed(conn)
    return assets


async def _seed(conn: asyncpg.Connection) -> None:
    """The rows migrations insert into a fresh database (0001, 0012, 0015)."""
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO nodes (id, parent_id, name, path, kind, revision, created_at, "
        "created_by, modified_at, modified_by, properties) "
        "VALUES ($1, NULL, 'dam', '/content/dam', 'folder', 1, $2, 'system', $2, 'system', "
        "$3::json)",
        str(uuid.uuid4()),
        now,
        json.dumps({"jcr:title": "Assets"}),
    )
    await conn.execute("INSERT INTO outbox_floor (id, seq) VALUES (1, 0)")
    await conn.execute("INSERT INTO event_state (key, value) VALUES ('dispatcher_lease', '')")


def reset_database(
    database_url: str, *, keep_tokens: bool, keep_registrations: bool, attempts: int = 3
) -> int:
    """``empty_dam`` in a transaction of its own (blocking: run it on a thread), tried
    again when PostgreSQL aborts it to break a deadlock (a transaction of another process
    that holds one of the tables and waits for another the reset holds already)."""
    import asyncpg

    for attempt in range(1, attempts + 1):
        try:
            return run_in_transaction(
                database_url,
                lambda conn: empty_dam(
                    conn, keep_tokens=keep_tokens, keep_registrations=keep_registrations
                ),
            )
        except asyncpg.exceptions.DeadlockDetectedError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = ["KEPT_ALWAYS", "RESET_LOCK", "empty_dam", "reset_database"]
