"""Asset processing: after a new original, read its metadata and make its renditions.

An asset is ``processing`` from the moment its original is stored (the job is queued in
that very transaction) until the job commits ``processed`` or ``failed``. Failures are
states with a reason, never lost jobs: media work runs in a sandbox, and a job whose
worker dies on every attempt is reaped as failed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from assetvault.adapters.blobs.base import BlobBackend, BlobMissing
from assetvault.adapters.database.engine import Database
from assetvault.adapters.media import sandbox, work
from assetvault.adapters.media.exif import ExifReader
from assetvault.adapters.media.sniff import sniff
from assetvault.adapters.queue.base import Job, JobQueue
from assetvault.errors import InvalidInput, NotFound
from assetvault.processing.metadata import from_exiftool
from assetvault.settings import Settings
from assetvault.tree import repository as tree_repo
from assetvault.tree.models import Node
from assetvault.tree.writes import Change, NewRendition, Writes

PROCESS_ASSET = "process-asset"

# What a job commits, in the write path's transaction that also finishes the job.
Apply = Callable[[Change], Awaitable[None]]

# What libmagic says for content it cannot name more precisely; then the type the
# client declared (or the file name implied) is kept.
_GENERIC_TYPES = {
    "application/octet-stream",
    "text/plain",
    "application/zip",
    "inode/x-empty",
    "application/x-empty",
}


class ProcessingFailed(Exception):
    """Processing this original cannot succeed; the asset becomes ``failed``."""


def classify(mime: str) -> str:
    if mime in work.IMAGE_TYPES:
        return "image"
    if mime == "application/pdf":
        return "pdf"
    if mime.startswith("video/"):
        return "video"
    return "other"


class ProcessingService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        blobs: BlobBackend,
        queue: JobQueue,
        writes: Writes,
    ) -> None:
        self.settings = settings
        self.db = db
        self.blobs = blobs
        self.writes = writes
        self.queue = queue
        self._exif: ExifReader | None = None

    # -- queueing (inside the transaction of the change) --------------------------------

    async def enqueue(self, ch: Change, node: Node) -> None:
        await self.queue.enqueue(
            ch.conn,
            PROCESS_ASSET,
            {"node_id": node.id, "blob_key": node.blob_key},
            max_attempts=self.settings.processing_max_attempts,
        )

    async def reprocess(self, path: str, *, user: str) -> Node:
        """Process an asset's current original again (e.g. after a failure)."""
        async with self.writes.change(user) as ch:
            node = await tree_repo.by_path(ch.conn, path)
            if node is None:
                raise NotFound(f"{path} does not exist")
            if node.kind != "asset":
                raise InvalidInput(f"{path} is a folder; only assets are processed")
            return await ch.restart_processing(node)

    # -- running (in a worker) ------------------------------------------------------------

    @property
    def exif(self) -> ExifReader:
        if self._exif is None:
            self._exif = ExifReader()
        return self._exif

    def close(self) -> None:
        if self._exif is not None:
            self._exif.close()

    async def run(self, job: Job) -> Apply:
        """Do the work outside any transaction; return what to commit with the job."""
        node_id = job.payload["node_id"]
        blob_key = job.payload["blob_key"]
        async with self.db.read() as conn:
            node = await tree_repo.by_id(conn, node_id)
        if node is None or node.blob_key != blob_key:
            return _nothing  # deleted, or a newer original has its own job
        try:
            async with self.blobs.local_copy(blob_key) as local, self.blobs.scratch() as out:
                mime, made, extracted, result = await self._work(node, local, out)
        except BlobMissing as exc:
            raise ProcessingFailed("the original's binary is missing from the blob store") from exc

        async def apply(ch: Change) -> None:
            current = await tree_repo.by_id(ch.conn, node_id)
            if current is None or current.blob_key != blob_key:
                return
            await ch.processing_completed(
                current,
                made=made,
                extracted=extracted,
                text_content=result.get("text") or None,
                mime_type=mime,
            )

        return apply

    async def _work(
        self, node: Node, src: Path, work_dir: Path
    ) -> tuple[str, list[NewRendition], dict[str, Any], dict[str, Any]]:
        mime = self._content_type(str(src), node)
        tags = await asyncio.to_thread(self._read_tags, str(src))
        limits = work.Limits(
            max_pixels=self.settings.processing_max_pixels,
            tool_timeout=self.settings.processing_timeout_seconds,
        )
        label = Path(node.name).suffix.lstrip(".") or mime.rsplit("/", 1)[-1]
        try:
            result = await asyncio.to_thread(
                sandbox.run,
                work.process,
                classify(mime),
                str(src),
                str(work_dir),
                limits,
                label,
                timeout=self.settings.processing_timeout_seconds,
                memory_bytes=self.settings.processing_memory_limit_mb * 2**20,
            )
        except sandbox.SandboxError as exc:
            raise ProcessingFailed(str(exc)) from exc
        made = [
            NewRendition(
                name=r["name"],
                blob=await self.writes.store_file(Path(r["path"])),
                mime_type=r["mime_type"],
                width=r["width"],
                height=r["height"],
            )
            for r in result.get("renditions", [])
        ]
        return mime, made, self._extracted(tags, result, mime), result

    async def failed(self, ch: Change, job: Job, reason: str) -> None:
        """The job is finally failed: say so on the asset, if it still has that original."""
        node = await tree_repo.by_id(ch.conn, job.payload["node_id"])
        if node is None or node.blob_key != job.payload["blob_key"]:
            return
        await ch.processing_failed(node, reason)

    def _content_type(self, path: str, node: Node) -> str:
        sniffed = sniff(path)
        declared = node.mime_type or "application/octet-stream"
        if sniffed in _GENERIC_TYPES and declared != "application/octet-stream":
            return declared
        return sniffed

    def _read_tags(self, path: str) -> dict[str, Any]:
        try:
            return self.exif.read(path)
        except Exception:
            return {}  # metadata is a bonus; renditions still tell whether the file is good

    @staticmethod
    def _extracted(tags: dict[str, Any], result: dict[str, Any], mime: str) -> dict[str, Any]:
        props = from_exiftool(tags)
        props["dc:format"] = mime
        if result.get("width") and result.get("height"):
            props.setdefault("tiff:ImageWidth", result["width"])
            props.setdefault("tiff:ImageLength", result["height"])
        if result.get("duration"):
            props["xmpDM:duration"] = round(float(result["duration"]), 3)
        if result.get("pages"):
            props.setdefault("xmpTPg:NPages", result["pages"])
        return props


async def _nothing(ch: Change) -> None:
    return None


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)
