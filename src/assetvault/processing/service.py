"""Asset processing: after a new original, read its metadata and make its renditions.

The service decides what to make (processing/renditions.py, AEM's policy) and asks the
media tools (processing/ports.py) to make it; it reaches the original and stores what
was made through the blob store port, so it runs the same on a local or remote store.

An original uploaded straight to an object store was never read by the server: until its
job has read it, its asset is ``processing`` with no SHA-1 (``dam:sha1`` absent), and the
job records the SHA-1 it computed (and checks the size) with what it made.

An asset is ``processing`` from the moment its original is stored (the job is queued in
that very transaction) until the job commits ``processed`` or ``failed``. Failures are
states with a reason, never lost jobs: media work runs in a sandbox, and a job whose
worker dies on every attempt is reaped as failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from assetvault import mediatypes
from assetvault.adapters.blobs.base import BlobBackend, BlobMissing
from assetvault.adapters.database.engine import Database
from assetvault.adapters.queue.base import Job, JobQueue
from assetvault.errors import InvalidInput, NotFound
from assetvault.processing.metadata import from_exiftool
from assetvault.processing.ports import Limits, MediaError, MediaTools, Rendered
from assetvault.processing.renditions import icon_label, renditions_for
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


class ProcessingService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        blobs: BlobBackend,
        queue: JobQueue,
        writes: Writes,
        media: MediaTools,
    ) -> None:
        self.settings = settings
        self.db = db
        self.blobs = blobs
        self.writes = writes
        self.queue = queue
        self.media = media

    # -- queueing (inside the transaction of the change) --------------------------------

    async def enqueue(self, ch: Change, node: Node) -> None:
        await ch.enqueue(
            PROCESS_ASSET,
            {
                "node_id": node.id,
                "blob_key": node.blob_key,
                # Processing is the first to read this original: it records its SHA-1.
                **({"verify": True} if node.sha1 is None else {}),
            },
            max_attempts=self.settings.processing_max_attempts,
        )

    async def reprocess(self, path: str, *, user: str) -> Node:
        """Process an asset's current original again (e.g. after a failure)."""
        async with self.writes.change(user) as ch:
            node = await tree_repo.by_path(ch.reader, path)
            if node is None:
                raise NotFound(f"{path} does not exist")
            if node.kind != "asset":
                raise InvalidInput(f"{path} is a folder; only assets are processed")
            return await ch.restart_processing(node)

    # -- running (in a worker) ------------------------------------------------------------

    def close(self) -> None:
        self.media.close()

    async def run(self, job: Job) -> Apply:
        """Do the work outside any transaction; return what to commit with the job."""
        node_id = job.payload["node_id"]
        blob_key = job.payload["blob_key"]
        async with self.db.reader() as r:
            node = await tree_repo.by_id(r, node_id)
        if node is None or node.blob_key != blob_key:
            # Deleted, or a newer original has its own job; a version kept of this one
            # before it was read still gets its SHA-1.
            return await self._verify_only(blob_key) if job.payload.get("verify") else _nothing
        sha1: str | None = None
        try:
            async with self.blobs.local_copy(blob_key) as local, self.blobs.scratch() as out:
                if node.sha1 is None:
                    sha1 = await self._verify(local, node.size)
                try:
                    mime, made, extracted, rendered = await self._work(node, local, out)
                except ProcessingFailed as exc:
                    if sha1 is None:
                        raise
                    return self._verified_but_failed(node_id, blob_key, sha1, str(exc))
        except BlobMissing as exc:
            raise ProcessingFailed("the original's binary is missing from the blob store") from exc

        async def apply(ch: Change) -> None:
            current = await tree_repo.by_id(ch.reader, node_id)
            if current is None or current.blob_key != blob_key:
                if sha1 is not None:
                    await ch.original_verified(blob_key, sha1)
                return
            await ch.processing_completed(
                current,
                made=made,
                extracted=extracted,
                text_content=rendered.text or None,
                mime_type=mime,
                sha1=sha1,
            )

        return apply

    async def _verify(self, path: Path, size: int | None) -> str:
        """The SHA-1 of an original the server had not read (a direct upload to an object
        store), after checking it holds the size the upload announced."""

        def digest() -> tuple[str, int]:
            h = hashlib.sha1(usedforsecurity=False)
            n = 0
            with open(path, "rb") as fh:
                while data := fh.read(1024 * 1024):
                    h.update(data)
                    n += len(data)
            return h.hexdigest(), n

        sha1, actual = await asyncio.to_thread(digest)
        if size is not None and actual != size:
            raise ProcessingFailed(
                f"the stored binary holds {actual} bytes; the upload announced {size}"
            )
        return sha1

    async def _verify_only(self, blob_key: str) -> Apply:
        try:
            async with self.blobs.local_copy(blob_key) as local:
                sha1 = await self._verify(local, None)
        except BlobMissing:
            return _nothing

        async def apply(ch: Change) -> None:
            await ch.original_verified(blob_key, sha1)

        return apply

    def _verified_but_failed(self, node_id: str, blob_key: str, sha1: str, reason: str) -> Apply:
        """Processing failed, but the original was read: its SHA-1 is kept all the same."""

        async def apply(ch: Change) -> None:
            current = await tree_repo.by_id(ch.reader, node_id)
            if current is not None and current.blob_key == blob_key:
                await ch.processing_failed(current, reason, sha1)
            else:
                await ch.original_verified(blob_key, sha1)

        return apply

    def limits(self) -> Limits:
        return Limits(
            max_pixels=self.settings.processing_max_pixels,
            tool_timeout=self.settings.processing_timeout_seconds,
            memory_bytes=self.settings.processing_memory_limit_mb * 2**20,
        )

    async def _work(
        self, node: Node, src: Path, out_dir: Path
    ) -> tuple[str, list[NewRendition], dict[str, Any], Rendered]:
        mime = await self._content_type(src, node)
        tags = await self._read_tags(src)
        kind = self.media.source_kind(mime)
        try:
            rendered = await self.media.render(
                kind,
                src,
                out_dir,
                renditions_for(kind),
                self.limits(),
                icon_label(node.name, mime),
            )
        except MediaError as exc:
            raise ProcessingFailed(str(exc)) from exc
        made = [
            NewRendition(
                name=r.name,
                blob=await self.writes.store_file(r.path),
                mime_type=r.mime_type,
                width=r.width,
                height=r.height,
            )
            for r in rendered.renditions
        ]
        return mime, made, self._extracted(tags, rendered, mime), rendered

    async def failed(self, ch: Change, job: Job, reason: str) -> None:
        """The job is finally failed: say so on the asset, if it still has that original."""
        node = await tree_repo.by_id(ch.reader, job.payload["node_id"])
        if node is None or node.blob_key != job.payload["blob_key"]:
            return
        await ch.processing_failed(node, reason)

    async def _content_type(self, path: Path, node: Node) -> str:
        # Both are checked: a type stored before media types were, or a tool's odd
        # answer, is application/octet-stream rather than a header that breaks.
        sniffed = mediatypes.servable(await self.media.sniff(path))
        declared = mediatypes.servable(node.mime_type)
        if sniffed in _GENERIC_TYPES and declared != "application/octet-stream":
            return declared
        return sniffed

    async def _read_tags(self, path: Path) -> dict[str, Any]:
        try:
            return await self.media.read_tags(path)
        except Exception:
            return {}  # metadata is a bonus; renditions still tell whether the file is good

    @staticmethod
    def _extracted(tags: dict[str, Any], rendered: Rendered, mime: str) -> dict[str, Any]:
        props = from_exiftool(tags)
        props["dc:format"] = mime
        if rendered.width and rendered.height:
            props.setdefault("tiff:ImageWidth", rendered.width)
            props.setdefault("tiff:ImageLength", rendered.height)
        if rendered.duration:
            props["xmpDM:duration"] = round(float(rendered.duration), 3)
        if rendered.pages:
            props.setdefault("xmpTPg:NPages", rendered.pages)
        return props


async def _nothing(ch: Change) -> None:
    return None


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)
