"""The job queue seam. The embedded default keeps jobs in a table of the same database,
so a job is committed in the very transaction of the change that causes it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from assetvault.adapters.database.connection import Connection


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int  # including the one under way
    max_attempts: int


class JobQueue(Protocol):
    async def enqueue(
        self,
        conn: Connection,
        kind: str,
        payload: dict[str, Any],
        *,
        max_attempts: int = 3,
    ) -> str:
        """Add a job inside the caller's transaction; it runs once that commits."""

    async def claim(
        self, worker: str, lease_seconds: float, kinds: Collection[str] | None = None
    ) -> Job | None:
        """Take the next due job (or one whose lease ran out) for ``lease_seconds``;
        with ``kinds``, only a job of one of those kinds (None: any kind)."""

    async def next_due(self) -> datetime | None:
        """When a job may next become claimable without a new commit: the earliest retry
        of a queued job, or the earliest end of a running job's lease (its worker may be
        gone). None when no job is queued or running."""

    async def extend(self, job: Job, worker: str, lease_seconds: float) -> bool:
        """Keep a long job's lease; False if the job is no longer this worker's."""

    async def succeed(self, conn: Connection, job: Job, worker: str) -> bool: ...

    async def fail(
        self, conn: Connection, job: Job, worker: str, error: str, *, retry: bool
    ) -> bool:
        """Record a failure; retried with backoff while attempts remain and ``retry`` is
        set. Returns True when the job is now finally failed."""

    async def reap(self, conn: Connection, kinds: Collection[str] | None = None) -> list[Job]:
        """Finally fail jobs (of ``kinds``; None: any) whose lease ran out on their last
        attempt (the worker died each time); returns them so their owners can record
        the failure."""

    async def forget_finished(self, before: datetime, most: int) -> int:
        """Remove at most ``most`` jobs that ended before ``before`` (the sweep's
        retention of finished jobs); returns how many went."""
