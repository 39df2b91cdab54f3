"""The sweep: removes what a crash or an abandoned upload left behind.

Staging areas of uploads are removed once untouched for longer than an upload token
lives (no complete can succeed after that), never earlier: their parts were acknowledged.
Blobs that no row and no live staging area refers to are removed once older than the
grace period, which keeps the sweep off a complete in another process that has stored
its blob but not committed its row yet; at start-up, when nothing can be in flight, the
server sweeps blobs with no grace at all.

Outbox rows are pruned once older than the retention and read by every consumer of the
deployment; which consumers there are is the wiring's to say (services.py): each is a
reader of its position, and the smallest position is as far as pruning may go.

Finished jobs (processing jobs, public asset jobs, import jobs with their files) are
forgotten once they ended longer ago than ``finished_jobs_retention_seconds``: their
status stays readable that long, and a deployment that runs for months at a steady load
keeps a bounded number of them. A job queued or running is never touched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from assetvault.adapters.blobs.base import BlobBackend
from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.reader import Reader
from assetvault.maintenance.guard import BlobGuard
from assetvault.tree import repository as tree_repo
from assetvault.tree.writes import Writes

PRUNE_BATCH = 5000  # outbox rows removed per transaction

# How far one consumer has read the outbox (0 when it has not begun: keep everything).
PositionReader = Callable[[Reader], Awaitable[int]]
# Removes at most ``most`` finished jobs of one kind that ended before the instant, in
# one transaction; returns how many went (TableJobQueue and ImportService.forget_finished).
FinishedJobs = Callable[[datetime, int], Awaitable[int]]


@dataclass(frozen=True)
class SweepReport:
    blobs_removed: int
    uploads_removed: int


class MaintenanceService:
    def __init__(
        self,
        db: Database,
        blobs: BlobBackend,
        guard: BlobGuard,
        writes: Writes,
        outbox_consumers: Sequence[PositionReader],
        finished_jobs: Sequence[FinishedJobs] = (),
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.guard = guard
        self.writes = writes
        self.outbox_consumers = list(outbox_consumers)
        self.finished_jobs = list(finished_jobs)

    async def outbox_read_by_all(self) -> int:
        """The outbox position every consumer has read up to (0 with none: nothing is
        known to be read)."""
        if not self.outbox_consumers:
            return 0
        async with self.db.reader() as r:
            return min([await position(r) for position in self.outbox_consumers])

    async def prune_outbox(self, retention_seconds: float) -> int:
        """Remove the outbox rows older than the retention that every consumer has read;
        returns how many went."""
        up_to = await self.outbox_read_by_all()
        if up_to <= 0:
            return 0
        cutoff = datetime.now(UTC) - timedelta(seconds=retention_seconds)
        removed = 0
        while True:  # in short transactions: a day's backlog is no long hold of the lock
            went = await self.writes.prune_outbox(up_to, cutoff, most=PRUNE_BATCH)
            removed += went
            if went < PRUNE_BATCH:
                return removed

    async def forget_finished_jobs(self, retention_seconds: float) -> int:
        """Remove the jobs of every kind that ended longer ago than the retention;
        returns how many went."""
        before = datetime.now(UTC) - timedelta(seconds=retention_seconds)
        removed = 0
        for forget in self.finished_jobs:
            while True:  # in short transactions, as the outbox
                went = await forget(before, PRUNE_BATCH)
                removed += went
                if went < PRUNE_BATCH:
                    break
        return removed

    async def sweep(self, grace_seconds: float, upload_ttl_seconds: float) -> SweepReport:
        uploads_removed = await self.blobs.sweep(upload_ttl_seconds)
        # Blobs stored by this process are covered by the guard; the grace period covers
        # other processes sharing the store.
        candidates = [key async for key in self.blobs.keys_older_than(grace_seconds)]
        removed = 0
        async with self.guard.collecting():
            async with self.db.reader() as r:
                referenced = await tree_repo.referenced_blob_keys(r)
            referenced |= await self.blobs.staged_blob_keys()
            for key in candidates:
                if key not in referenced:
                    await self.blobs.delete(key)
                    removed += 1
        return SweepReport(blobs_removed=removed, uploads_removed=uploads_removed)
