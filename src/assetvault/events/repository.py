"""SQL of the events domain: registrations, the journal, deliveries, attempts and the
dispatcher's state. Nothing here touches the tree's tables (the outbox is read only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    Row,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    type_coerce,
    update,
)

from assetvault.adapters.database.connection import Connection, sqlite_value
from assetvault.adapters.database.reader import Reader
from assetvault.adapters.database.reader import Row as ReaderRow
from assetvault.adapters.database.tables import (
    event_attempts,
    event_deliveries,
    event_journal,
    event_registrations,
    event_state,
)
from assetvault.events.models import (
    DISABLED,
    UNREACHABLE,
    Attempt,
    JournalEntry,
    Registration,
)
from assetvault.tree.repository import document, instant

# -- state ---------------------------------------------------------------------------------

POSITION = "dispatch_position"  # the last outbox seq turned into journal entries
FLOOR = "journal_floor"  # journal entries up to this seq were removed by retention
LEASE = "dispatcher_lease"  # "<holder> <expires, epoch seconds>"


async def get_state(conn: Connection, key: str, *, lock: bool = False) -> str | None:
    """A state value; ``lock``: its row locked until the transaction ends (PostgreSQL)."""
    query = select(event_state.c.value).where(event_state.c.key == key)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return row[0] if row else None


async def set_state(conn: Connection, key: str, value: str) -> None:
    done = await conn.execute(
        update(event_state).where(event_state.c.key == key).values(value=value)
    )
    if not done.rowcount:
        await conn.execute(insert(event_state).values(key=key, value=value))


async def int_state(conn: Connection, key: str) -> int:
    value = await get_state(conn, key)
    return int(value) if value else 0


async def dispatch_position(r: Reader) -> int:
    """How far the dispatcher has read the outbox (0 before its first round): what the
    outbox must keep for it is everything after."""
    row = await r.fetch_one("SELECT value FROM event_state WHERE key = ?", (POSITION,))
    return int(row[0]) if row and row[0] else 0


# -- registrations -------------------------------------------------------------------------


def _registration(row: Row[Any]) -> Registration:
    m = row._mapping
    return Registration(
        id=m["id"],
        name=m["name"],
        description=m["description"],
        client_id=m["client_id"],
        delivery_type=m["delivery_type"],
        webhook_url=m["webhook_url"],
        event_types=tuple(m["event_types"] or ()),
        enabled=bool(m["enabled"]),
        webhook_status=m["webhook_status"],
        state=m["state"],
        unstable_since=instant(m["unstable_since"]) if m["unstable_since"] else None,
        validation_token=m["validation_token"],
        validation_expires_at=(
            instant(m["validation_expires_at"]) if m["validation_expires_at"] else None
        ),
        journal_start=int(m["journal_start"]),
        created_by=m["created_by"],
        created_at=instant(m["created_at"]),
        updated_at=instant(m["updated_at"]),
    )


async def registrations(conn: Connection) -> list[Registration]:
    q = select(event_registrations).order_by(event_registrations.c.created_at)
    return [_registration(r) for r in await conn.execute(q)]


async def registration(conn: Connection, registration_id: str) -> Registration | None:
    q = select(event_registrations).where(event_registrations.c.id == registration_id)
    row = (await conn.execute(q)).first()
    return _registration(row) if row else None


async def insert_registration(conn: Connection, values: dict[str, Any]) -> None:
    await conn.execute(insert(event_registrations).values(**values))


async def update_registration(
    conn: Connection, registration_id: str, values: dict[str, Any]
) -> None:
    await conn.execute(
        update(event_registrations)
        .where(event_registrations.c.id == registration_id)
        .values(**values)
    )


async def expire_validation(conn: Connection, registration_id: str) -> None:
    """A validationUrl not used in time: the webhook is unreachable, its registration
    disabled (Adobe: after 5 minutes)."""
    await update_registration(
        conn,
        registration_id,
        {
            "webhook_status": UNREACHABLE,
            "enabled": False,
            "state": DISABLED,
            "validation_token": None,
            "validation_expires_at": None,
        },
    )


async def delete_registration(conn: Connection, registration_id: str) -> bool:
    # Deliveries and attempts go with it (foreign keys cascade; deleted here as well for
    # SQLite connections without foreign key enforcement).
    await conn.execute(
        delete(event_deliveries).where(event_deliveries.c.registration_id == registration_id)
    )
    await conn.execute(
        delete(event_attempts).where(event_attempts.c.registration_id == registration_id)
    )
    done = await conn.execute(
        delete(event_registrations).where(event_registrations.c.id == registration_id)
    )
    return bool(done.rowcount)


# -- journal -------------------------------------------------------------------------------


# The event as stored text, parsed with orjson: the dispatcher reads every event it sends.
_JOURNAL = (
    event_journal.c.seq,
    event_journal.c.id,
    event_journal.c.type,
    event_journal.c.time,
    type_coerce(event_journal.c.event, Text).label("event"),
)


def _entry(row: Row[Any]) -> JournalEntry:
    m = row._mapping
    event = m["event"]
    parsed = orjson.loads(event) if isinstance(event, str | bytes) else event
    return JournalEntry(int(m["seq"]), m["id"], m["type"], instant(m["time"]), dict(parsed))


async def append_journal_many(
    conn: Connection, entries: list[tuple[int, dict[str, Any], datetime]]
) -> list[int]:
    """Append (outbox seq, event, time) entries with one statement; their journal seqs,
    in the order given."""
    if not entries:
        return []
    result = await conn.execute(
        insert(event_journal).returning(event_journal.c.seq, sort_by_parameter_order=True),
        [
            {
                "outbox_seq": outbox_seq,
                "id": event["id"],
                "type": event["type"],
                "time": time,
                "event": event,
            }
            for outbox_seq, event, time in entries
        ],
    )
    return [int(seq) for seq in result.scalars().all()]


async def last_journal_seq(conn: Connection) -> int:
    value = (await conn.execute(select(func.max(event_journal.c.seq)))).scalar()
    return int(value or 0)


async def journal_page(
    conn: Connection,
    *,
    after: int,
    types: Sequence[str],
    limit: int,
    since_time: datetime | None = None,
) -> list[JournalEntry]:
    q = select(*_JOURNAL).where(
        and_(event_journal.c.seq > after, event_journal.c.type.in_(list(types)))
    )
    if since_time is not None:
        q = q.where(event_journal.c.time >= since_time)
    q = q.order_by(event_journal.c.seq).limit(limit)
    return [_entry(r) for r in await conn.execute(q)]


async def journal_entries(conn: Connection, seqs: Sequence[int]) -> dict[int, JournalEntry]:
    q = select(*_JOURNAL).where(event_journal.c.seq.in_(list(seqs)))
    return {e.seq: e for e in map(_entry, await conn.execute(q))}


async def last_seq_before(conn: Connection, when: datetime) -> int:
    q = select(func.max(event_journal.c.seq)).where(event_journal.c.time < when)
    return int((await conn.execute(q)).scalar() or 0)


async def purge_journal_before(conn: Connection, when: datetime) -> int:
    """Remove entries older than ``when``; returns the new floor (0 when nothing went)."""
    floor = await last_seq_before(conn, when)
    if floor:
        await conn.execute(delete(event_journal).where(event_journal.c.seq <= floor))
    return floor


# -- deliveries ----------------------------------------------------------------------------


async def add_deliveries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(event_deliveries), rows)


async def update_delivery(conn: Connection, delivery_id: int, values: dict[str, Any]) -> None:
    await conn.execute(
        update(event_deliveries).where(event_deliveries.c.id == delivery_id).values(**values)
    )


async def update_deliveries(conn: Connection, changes: list[tuple[int, dict[str, Any]]]) -> None:
    """Many deliveries' updates in one statement per set of columns changed (an
    executemany), where one statement per delivery would cost a round each."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for delivery_id, values in changes:
        columns = tuple(sorted(values))
        groups.setdefault(columns, []).append(
            {"k_id": delivery_id, **{f"v_{c}": values[c] for c in columns}}
        )
    for columns, rows in groups.items():
        statement = (
            update(event_deliveries)
            .where(event_deliveries.c.id == bindparam("k_id"))
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
        await conn.execute(statement, rows)


async def deliveries_of(conn: Connection, registration_id: str) -> list[dict[str, Any]]:
    q = (
        select(event_deliveries)
        .where(event_deliveries.c.registration_id == registration_id)
        .order_by(event_deliveries.c.id)
    )
    return [dict(r._mapping) for r in await conn.execute(q)]


async def forget_deliveries_before(conn: Connection, when: datetime) -> None:
    await conn.execute(
        delete(event_deliveries).where(
            and_(event_deliveries.c.state != "pending", event_deliveries.c.created_at < when)
        )
    )


# -- attempts ------------------------------------------------------------------------------


async def add_attempts(conn: Connection, attempts: list[tuple[str, Attempt]]) -> None:
    """Write many attempts (registration id, attempt) with one statement."""
    if not attempts:
        return
    await conn.execute(
        insert(event_attempts),
        [
            {
                "registration_id": registration_id,
                "delivery_id": attempt.delivery_id,
                "events": attempt.events,
                "retry_count": attempt.retry_count,
                "at": attempt.at,
                "ok": attempt.ok,
                "status": attempt.status,
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
            }
            for registration_id, attempt in attempts
        ],
    )


async def attempts_of(
    conn: Connection, registration_id: str, *, since: datetime | None = None, limit: int = 50
) -> list[Attempt]:
    q = select(event_attempts).where(event_attempts.c.registration_id == registration_id)
    if since is not None:
        q = q.where(event_attempts.c.at >= since)
    q = q.order_by(event_attempts.c.id.desc()).limit(limit)
    found = []
    for row in await conn.execute(q):
        m = row._mapping
        found.append(
            Attempt(
                m["delivery_id"],
                list(m["events"]),
                m["retry_count"],
                instant(m["at"]),
                bool(m["ok"]),
                m["status"],
                m["error"],
                m["duration_ms"],
            )
        )
    return found


async def attempt_counts(
    conn: Connection, registration_id: str, since: datetime
) -> tuple[int, int]:
    """(attempts, failed attempts) of a registration since ``since``."""
    failed = func.sum(case((event_attempts.c.ok.is_(False), 1), else_=0))
    q = select(func.count(), failed).where(
        and_(event_attempts.c.registration_id == registration_id, event_attempts.c.at >= since)
    )
    total, failures = (await conn.execute(q)).one()
    return int(total or 0), int(failures or 0)


async def forget_attempts_before(conn: Connection, when: datetime) -> None:
    await conn.execute(delete(event_attempts).where(event_attempts.c.at < when))


# -- the dispatcher's round on the driver ----------------------------------------------------
# What ``deliver_due`` and the idle wait read each round, as plain SQL on a ``Reader``
# (reader.py): on SQLite in the loop, with no thread hop per statement (through the
# async engine, each statement was a hop to aiosqlite's thread and back, and a busy
# dispatcher reads a round per answer); on PostgreSQL on asyncpg.


def _at(r: Reader, value: datetime) -> Any:
    """A time as the column stores it (text on SQLite, as SQLAlchemy writes it)."""
    return sqlite_value(value) if r.dialect == "sqlite" else value


_REGISTRATION_COLUMNS = (
    "id, name, description, client_id, delivery_type, webhook_url, event_types, enabled, "
    "webhook_status, state, unstable_since, validation_token, validation_expires_at, "
    "journal_start, created_by, created_at, updated_at"
)


def _registration_of(row: ReaderRow) -> Registration:
    (
        id_,
        name,
        description,
        client_id,
        delivery_type,
        webhook_url,
        event_types,
        enabled,
        webhook_status,
        state,
        unstable_since,
        validation_token,
        validation_expires_at,
        journal_start,
        created_by,
        created_at,
        updated_at,
    ) = row
    return Registration(
        id=id_,
        name=name,
        description=description,
        client_id=client_id,
        delivery_type=delivery_type,
        webhook_url=webhook_url,
        event_types=tuple(document(event_types) or ()),
        enabled=bool(enabled),
        webhook_status=webhook_status,
        state=state,
        unstable_since=instant(unstable_since) if unstable_since else None,
        validation_token=validation_token,
        validation_expires_at=instant(validation_expires_at) if validation_expires_at else None,
        journal_start=int(journal_start),
        created_by=created_by,
        created_at=instant(created_at),
        updated_at=instant(updated_at),
    )


async def registrations_read(r: Reader) -> list[Registration]:
    """``registrations`` on the driver."""
    rows = await r.fetch_all(
        f"SELECT {_REGISTRATION_COLUMNS} FROM event_registrations ORDER BY created_at"
    )
    return [_registration_of(row) for row in rows]


async def due_registrations(r: Reader, now: datetime) -> list[str]:
    """The registrations with deliveries due, the one due longest first."""
    rows = await r.fetch_all(
        "SELECT registration_id FROM event_deliveries "
        "WHERE state = 'pending' AND next_attempt_at <= ? "
        "GROUP BY registration_id ORDER BY min(next_attempt_at), registration_id",
        (_at(r, now),),
    )
    return [str(row[0]) for row in rows]


_DELIVERY_COLUMNS = (
    "id",
    "registration_id",
    "journal_seq",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
    "last_status",
    "last_error",
)


async def due_deliveries(
    r: Reader,
    now: datetime,
    limit: int,
    exclude: Sequence[int],
    registration_id: str,
) -> list[dict[str, Any]]:
    """A registration's deliveries due, first due first (those of ``exclude``, in
    flight, left out), each with its journal entry under ``entry`` (None when retention
    removed it), in one statement."""
    columns = ", ".join(f"d.{c}" for c in _DELIVERY_COLUMNS)
    params: list[Any] = [_at(r, now), registration_id]
    excluded = ""
    if exclude:
        excluded = f" AND d.id NOT IN ({', '.join('?' for _ in exclude)})"
        params.extend(exclude)
    params.append(limit)
    rows = await r.fetch_all(
        f"SELECT {columns}, j.seq, j.id, j.type, j.time, j.event "
        "FROM event_deliveries d LEFT JOIN event_journal j ON j.seq = d.journal_seq "
        "WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND d.registration_id = ?"
        f"{excluded} ORDER BY d.next_attempt_at, d.id LIMIT ?",
        params,
    )
    width = len(_DELIVERY_COLUMNS)
    due = []
    for row in rows:
        delivery = dict(zip(_DELIVERY_COLUMNS, row[:width], strict=True))
        seq, event_id, type_, time, event = row[width:]
        delivery["entry"] = (
            None
            if seq is None
            else JournalEntry(int(seq), event_id, type_, instant(time), dict(document(event)))
        )
        due.append(delivery)
    return due


async def next_due(r: Reader, exclude: Sequence[int] = ()) -> datetime | None:
    """When the next delivery that can be sent (to a webhook registration, not one of
    ``exclude``, those in flight) is due; None when none waits."""
    params: list[Any] = []
    excluded = ""
    if exclude:
        excluded = f" AND d.id NOT IN ({', '.join('?' for _ in exclude)})"
        params.extend(exclude)
    row = await r.fetch_one(
        "SELECT min(d.next_attempt_at) FROM event_deliveries d "
        "JOIN event_registrations g ON g.id = d.registration_id "
        "WHERE d.state = 'pending' AND g.delivery_type IN ('webhook', 'webhook_batch')"
        f"{excluded}",
        params,
    )
    return instant(row[0]) if row and row[0] else None
