"""Job queue in a database table; SQL that runs on SQLite and PostgreSQL alike.

Claiming is one UPDATE of the oldest due row in a write transaction (SQLite serialises
writers; PostgreSQL skips rows other workers hold). A job whose worker died keeps its
lease until it runs out, then is claimed again; on its last attempt it is reaped as
failed, so every job ends ``succeeded`` or ``failed``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, insert, or_, select, update

from assetvault.adapters.database.connection import Connection
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.tables import jobs
from assetvault.adapters.queue.base import Job

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
FINISHED = ("succeeded", "failed")


def _now() -> datetime:
    return datetime.now(UTC)


def _instant(value: Any) -> datetime:
    """A stored timestamp: a datetime from PostgreSQL, text from SQLite."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _job(row: Row[Any]) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        kind=m["kind"],
        payload=dict(m["payload"]),
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
    )


class TableJobQueue:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue(
        self,
        conn: Connection,
        kind: str,
        payload: dict[str, Any],
        *,
        max_attempts: int = 3,
    ) -> str:
        job_id = str(uuid.uuid4())
        now = _now()
        await conn.execute(
            insert(jobs).values(
                id=job_id,
                kind=kind,
                payload=payload,
                state="queued",
                attempts=0,
                max_attempts=max_attempts,
                run_after=now,
                created_at=now,
            )
        )
        return job_id

    async def claim(
        self, worker: str, lease_seconds: float, kinds: Collection[str] | None = None
    ) -> Job | None:
        now = _now()
        due = or_(
            and_(jobs.c.state == "queued", jobs.c.run_after <= now),
            and_(
                jobs.c.state == "running",
                jobs.c.lease_until < now,
                jobs.c.attempts < jobs.c.max_attempts,
            ),
        )
        if kinds is not None:
            due = and_(jobs.c.kind.in_(sorted(kinds)), due)
        # Look before taking the write lock: idle workers poll, and on SQLite every write
        # transaction queues behind the API's writes.
        async with self.db.read() as conn:
            if (await conn.execute(select(jobs.c.id).where(due).limit(1))).first() is None:
                return None
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(jobs.c.id)
                    .where(due)
                    .order_by(jobs.c.run_after, jobs.c.created_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return None
            claimed = (
                await conn.execute(
                    update(jobs)
                    .where(jobs.c.id == row.id, due)
                    .values(
                        state="running",
                        attempts=jobs.c.attempts + 1,
                        lease_until=now + timedelta(seconds=lease_seconds),
                        worker=worker,
                    )
                    .returning(*jobs.c)
                )
            ).first()
        return _job(claimed) if claimed else None

    async def next_due(self) -> datetime | None:
        async with self.db.reader() as r:
            # Each by the claim index (state, run_after) or the few running rows.
            queued = await r.fetch_one("SELECT min(run_after) FROM jobs WHERE state = 'queued'")
            running = await r.fetch_one("SELECT min(lease_until) FROM jobs WHERE state = 'running'")
        found = [_instant(row[0]) for row in (queued, running) if row and row[0] is not None]
        return min(found) if found else None

    def _mine(self, job: Job, worker: str) -> ColumnElement[bool]:
        return and_(
            jobs.c.id == job.id,
            jobs.c.state == "running",
            jobs.c.worker == worker,
            jobs.c.attempts == job.attempts,
        )

    async def extend(self, job: Job, worker: str, lease_seconds: float) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                update(jobs)
                .where(self._mine(job, worker))
                .values(lease_until=_now() + timedelta(seconds=lease_seconds))
            )
        return bool(result.rowcount)

    async def succeed(self, conn: Connection, job: Job, worker: str) -> bool:
        result = await conn.execute(
            update(jobs)
            .where(self._mine(job, worker))
            .values(state="succeeded", lease_until=None, finished_at=_now())
        )
        return bool(result.rowcount)

    async def fail(
        self, conn: Connection, job: Job, worker: str, error: str, *, retry: bool
    ) -> bool:
        final = not retry or job.attempts >= job.max_attempts
        if final:
            values: dict[str, Any] = {
                "state": "failed",
                "lease_until": None,
                "finished_at": _now(),
                "last_error": error,
            }
        else:
            delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (job.attempts - 1))
            values = {
                "state": "queued",
                "lease_until": None,
                "run_after": _now() + timedelta(seconds=delay),
                "last_error": error,
            }
        await conn.execute(update(jobs).where(self._mine(job, worker)).values(**values))
        return final

    async def reap(self, conn: Connection, kinds: Collection[str] | None = None) -> list[Job]:
        now = _now()
        dead = and_(
            jobs.c.state == "running",
            jobs.c.lease_until < now,
            jobs.c.attempts >= jobs.c.max_attempts,
        )
        if kinds is not None:
            dead = and_(jobs.c.kind.in_(sorted(kinds)), dead)
        rows = (await conn.execute(select(jobs).where(dead))).all()
        if not rows:
            return []
        await conn.execute(
            update(jobs)
            .where(jobs.c.id.in_([r.id for r in rows]), dead)
            .values(
                state="failed",
                lease_until=None,
                finished_at=now,
                last_error="the worker stopped during every attempt (crash, kill or limit)",
            )
        )
        return [_job(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        async with self.db.read() as conn:
            rows = await conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))
            return {state: int(n) for state, n in rows}

    async def forget_finished(self, before: datetime, most: int) -> int:
        """Remove at most ``most`` jobs that ended (succeeded or failed) before
        ``before``, in one transaction; returns how many went. A job queued or running
        is never touched, whatever its age."""
        async with self.db.write() as conn:
            ids = (
                select(jobs.c.id)
                .where(jobs.c.state.in_(FINISHED), jobs.c.finished_at < before)
                .limit(most)
                .scalar_subquery()
            )
            result = await conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
        return int(result.rowcount or 0)
