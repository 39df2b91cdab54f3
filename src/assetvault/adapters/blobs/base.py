"""The blob store port: content-addressed binaries, and the staging area where the parts
of a direct binary upload gather until the upload is completed.

Nothing here requires a local path of a stored blob, so a store on another machine (S3)
implements the same protocol: code that needs a file asks for ``local_copy(key)`` (the
local store lends its own file, an object store downloads one); responses that can send
a file without reading it through Python ask ``served_file(key)``, which a store
elsewhere answers with None (they stream ``read`` then, or redirect the client to
``download_url``, which only a store elsewhere answers); and code that makes
files for the store writes them in a ``scratch()`` directory and hands them over with
``put_file`` (only the write path, tree/writes.py, stores blobs).

This module is the port although it sits beside its adapters: the tree's write path,
uploads, maintenance, processing and the binary responses all use it, and no single
domain owns it (docs/processing.md)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class BlobInfo:
    key: str  # the SHA-256 of the content, hex
    size: int
    sha1: str
    # False for a blob whose bytes the server has not read yet (a direct upload into an
    # object store): its key is the upload's, not a digest, and ``sha1`` is empty until
    # processing reads the object and records the SHA-1 (docs/direct-binary-upload.md).
    verified: bool = True


class BlobError(Exception):
    """Base class of the errors a blob store reports to the services."""


class BlobMissing(BlobError):
    """No blob is stored under the key."""


class PartTooLarge(BlobError):
    pass


class PartConflict(BlobError):
    pass


class PartsIncomplete(BlobError):
    pass


class BlobStore(Protocol):
    async def put(self, chunks: AsyncIterable[bytes]) -> BlobInfo:
        """Store a stream; the blob is durable when this returns."""

    async def put_file(self, path: Path) -> BlobInfo:
        """Store a finished local file, taking it over (it is moved or removed). A file
        made in a ``scratch()`` directory is moved without a copy where the store can."""

    def scratch(self) -> AbstractAsyncContextManager[Path]:
        """A new empty directory for files to hand to ``put_file``; removed, with whatever
        is left in it, when the block ends."""

    def local_copy(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A local file holding the blob, for the duration of the block, to read only: the
        store's own file when it is on local disk, else a temporary download. Raises
        BlobMissing when there is no such blob."""

    async def size(self, key: str) -> int | None: ...

    async def served_file(self, key: str) -> Path | None:
        """The blob's own file when the store keeps it on this machine's disk, for a
        response to send as it is (sendfile), to read only; None for a store elsewhere
        or a blob not stored. Nothing is copied to make one."""

    async def download_url(
        self,
        key: str,
        *,
        expires_seconds: int,
        content_type: str,
        content_disposition: str | None,
        cache_control: str,
    ) -> str | None:
        """A URL from which a client GETs the blob straight from the store, valid for
        ``expires_seconds`` and answered with these headers (and the client's Range);
        None for a store whose bytes the API serves itself. Only signed: whether the
        blob exists is not asked."""

    def cached_bytes(self, key: str, start: int, length: int) -> bytes | None:
        """``length`` bytes of the blob from ``start`` when they can be had at once,
        without blocking (the store keeps the blob on this machine's disk and the page
        cache holds those bytes); None otherwise, and the caller reads as usual. For
        small responses, read in the event loop instead of a thread hop."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``start`` up to and including ``end``."""

    async def delete(self, key: str) -> None: ...

    async def touch(self, key: str) -> None:
        """Mark a blob as freshly referenced so a concurrent sweep leaves it alone."""

    def keys_older_than(self, seconds: float) -> AsyncIterator[str]: ...

    async def clear(self) -> int:
        """Remove every blob and every staged upload of the store (a reset: nothing refers
        to them any more); returns how many blobs were removed."""


class UploadStaging(Protocol):
    async def write_part(
        self, upload_id: str, number: int, chunks: AsyncIterable[bytes], max_size: int
    ) -> int:
        """Store part ``number`` (1-based) durably; returns its size."""

    async def received(self, upload_id: str) -> dict[int, int]:
        """Part number -> size of every part received so far."""

    async def assemble(self, upload_id: str, expected_size: int) -> BlobInfo:
        """Join parts 1..n into a blob of ``expected_size`` bytes in the store, or raise
        PartsIncomplete leaving the staged parts as they were."""

    async def discard(self, upload_id: str) -> None: ...

    async def sweep(self, older_than_seconds: float) -> int:
        """Remove staging areas untouched for that long; returns how many."""

    async def staged_blob_keys(self) -> set[str]:
        """Blobs already assembled for uploads whose complete has not committed."""


@dataclass(frozen=True)
class DirectUpload:
    """One file's upload straight into the store: the store's own id of it (an S3
    multipart upload id) and one presigned URL per part, for the client to PUT to."""

    store_upload_id: str
    part_urls: list[str]


@runtime_checkable
class DirectUploads(Protocol):
    """What a store elsewhere (S3) offers so the parts of a direct binary upload go to it
    without passing through the API: presigned part URLs of one multipart upload, and
    its completion. The local store has none of it: its parts come through the API."""

    async def begin_direct(
        self, upload_id: str, parts: int, expires_seconds: int
    ) -> DirectUpload: ...

    async def complete_direct(
        self, upload_id: str, store_upload_id: str, expected_size: int, max_part_size: int
    ) -> BlobInfo:
        """Complete the upload into a blob of ``expected_size`` bytes (unverified: its
        bytes are not read). Raises PartTooLarge when a part is over ``max_part_size`` or
        the parts hold more than ``expected_size`` (the upload is aborted then), and
        PartsIncomplete when parts are missing (the upload stays, for the client to send
        them and complete again) or the upload is gone. A complete that stored the blob
        before but whose row did not commit finds it again."""

    async def abort_direct(self, upload_id: str, store_upload_id: str) -> None: ...

    async def finish_direct(self, upload_id: str) -> None:
        """Forget what ``complete_direct`` recorded, once the asset's row has committed."""


class BlobBackend(BlobStore, UploadStaging, Protocol):
    """What a blob store implementation provides: both halves."""
