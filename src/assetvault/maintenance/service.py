"""The sweep: removes what a crash or an abandoned upload left behind.

Staging areas of uploads are removed once untouched for longer than an upload token
lives (no complete can succeed after that), never earlier: their parts were acknowledged.
Blobs that no row and no live staging area refers to are removed once older than the
grace period, which keeps the sweep off a complete in another process that has stored
its blob but not committed its row yet; at start-up, when nothing can be in flight, the
server sweeps blobs with no grace at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from assetvault.adapters.blobs.base import BlobBackend
from assetvault.adapters.database.engine import Database
from assetvault.maintenance.guard import BlobGuard
from assetvault.tree import repository as tree_repo


@dataclass(frozen=True)
class SweepReport:
    blobs_removed: int
    uploads_removed: int


class MaintenanceService:
    def __init__(self, db: Database, blobs: BlobBackend, guard: BlobGuard) -> None:
        self.db = db
        self.blobs = blobs
        self.guard = guard

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
