"""The sweep: removes what a crash or an abandoned upload left behind.

Blobs no row refers to and staging areas nobody touched are deleted once they are older
than the grace period. The grace period keeps the sweep off a complete that has stored
its blob but not yet committed its row; at start-up, when no request can be in flight,
the server sweeps with no grace at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from assetvault.adapters.blobs.local import LocalBlobStore
from assetvault.adapters.database.engine import Database
from assetvault.maintenance.guard import BlobGuard
from assetvault.tree import repository as tree_repo


@dataclass(frozen=True)
class SweepReport:
    blobs_removed: int
    uploads_removed: int


class MaintenanceService:
    def __init__(self, db: Database, blobs: LocalBlobStore, guard: BlobGuard) -> None:
        self.db = db
        self.blobs = blobs
        self.guard = guard

    async def sweep(self, grace_seconds: float) -> SweepReport:
        uploads_removed = await self.blobs.sweep(grace_seconds)
        # Blobs stored by this process are covered by the guard; the grace period covers
        # other processes sharing the store.
        candidates = [key async for key in self.blobs.keys_older_than(grace_seconds)]
        removed = 0
        async with self.guard.collecting():
            async with self.db.read() as conn:
                referenced = await tree_repo.referenced_blob_keys(conn)
            for key in candidates:
                if key not in referenced:
                    await self.blobs.delete(key)
                    removed += 1
        return SweepReport(blobs_removed=removed, uploads_removed=uploads_removed)
