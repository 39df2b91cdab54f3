"""Asset-level operations of the Author API that span domains: deletion (which must
update the relations that point at the asset) and the status of its long-running jobs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from assetvault.adapters.database.engine import Database
from assetvault.adapters.database.tables import jobs
from assetvault.adapters.queue.base import Job, JobQueue
from assetvault.errors import Conflict, InvalidInput, NotFound
from assetvault.processing.service import Apply
from assetvault.relations.service import RelationService
from assetvault.tree import repository as tree_repo
from assetvault.tree.models import Node
from assetvault.tree.paths import urn
from assetvault.tree.writes import Change, Writes

DELETE_ASSET = "delete-asset"
PUBLISH_TARGETS = ("AEM_PUBLISH", "DYNAMIC_MEDIA")
PUBLISH_MAX_ASSETS = 10
PUBLIC_JOB_KINDS = {DELETE_ASSET}


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: str  # PROCESSING | COMPLETED | COMPLETED_WITH_ERRORS | FAILED
    error: str | None
    payload: dict[str, object]

    @property
    def done(self) -> bool:
        return self.state != "PROCESSING"


_STATES = {
    "queued": "PROCESSING",
    "running": "PROCESSING",
    "succeeded": "COMPLETED",
    "failed": "FAILED",
}


class AssetService:
    def __init__(
        self, db: Database, queue: JobQueue, relations: RelationService, writes: Writes
    ) -> None:
        self.db = db
        self.queue = queue
        self.relations = relations
        self.writes = writes

    async def delete(self, node_id: str, *, force: bool, user: str) -> str | None:
        """Delete at once (returns None), or, when other assets relate to this one and
        ``force`` is set, queue a job that removes those relations and then the asset
        (returns its id). Without ``force`` a referenced asset is refused."""
        async with self.writes.change(user) as ch:
            node = await tree_repo.by_id(ch.reader, node_id)
            if node is None or node.kind != "asset":
                raise NotFound(f"asset {urn(node_id)} does not exist")
            referrers = await self.relations.referrers(ch.conn, node_id)
            if referrers and not force:
                raise Conflict(
                    f"{referrers} relation(s) of other assets refer to this asset; "
                    "delete with force=true to remove them too"
                )
            if referrers:
                return await ch.enqueue(DELETE_ASSET, {"node_id": node_id, "user": user})
            await ch.delete(node)
        return None

    # -- the job, run by a worker --------------------------------------------------------

    async def publish(
        self, node_ids: list[str], *, target: str, user: str, publish: bool = True
    ) -> list[Node]:
        """Publish (or unpublish) up to 10 assets to AEM_PUBLISH in one change: all of
        them, or, when one is missing or no asset, none."""
        if target not in PUBLISH_TARGETS:
            raise InvalidInput(f"target must be one of {', '.join(PUBLISH_TARGETS)}")
        if target == "DYNAMIC_MEDIA":
            raise InvalidInput("target DYNAMIC_MEDIA: Dynamic Media is not available here")
        if not 0 < len(node_ids) <= PUBLISH_MAX_ASSETS:
            raise InvalidInput(f"assets: 1 to {PUBLISH_MAX_ASSETS} asset ids are required")
        if len(set(node_ids)) != len(node_ids):
            raise InvalidInput("assets: an asset id is given twice")
        async with self.writes.change(user) as ch:
            found: dict[str, Node] = {}
            for node_id in node_ids:
                node = await tree_repo.by_id(ch.reader, node_id, lock=True)
                if node is None or node.kind != "asset":
                    raise NotFound(f"asset {urn(node_id)} does not exist")
                found[node_id] = node
            return [
                await (ch.publish(found[i]) if publish else ch.unpublish(found[i]))
                for i in node_ids
            ]

    async def run(self, job: Job) -> Apply:
        node_id = str(job.payload["node_id"])

        async def apply(ch: Change) -> None:
            node = await tree_repo.by_id(ch.reader, node_id)
            if node is not None:
                await ch.delete(node)

        return apply

    async def failed(self, ch: Change, job: Job, reason: str) -> None:
        return None  # the asset stays; the job's status says FAILED with the reason

    async def job_status(self, job_id: str) -> JobStatus:
        async with self.db.read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
        if row is None or row.kind not in PUBLIC_JOB_KINDS:
            raise NotFound(f"job {job_id} does not exist")
        return JobStatus(job_id, _STATES[row.state], row.last_error, dict(row.payload))
