"""The blob store seam: content-addressed binaries, and the staging area where the parts
of a direct binary upload gather until the upload is completed."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class BlobInfo:
    key: str  # the SHA-256 of the content, hex
    size: int
    sha1: str


class BlobError(Exception):
    """Base class of the errors a blob store reports to the services."""


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
        """Store a finished local file, taking it over (it is moved or removed)."""

    @property
    def tmp_dir(self) -> Path:
        """Scratch space on the store's own file system, for files to hand to put_file."""

    async def size(self, key: str) -> int | None: ...

    def local_path(self, key: str) -> Path | None:
        """A file the server may send directly, when the store is on local disk."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``start`` up to and including ``end``."""

    async def delete(self, key: str) -> None: ...

    async def touch(self, key: str) -> None:
        """Mark a blob as freshly referenced so a concurrent sweep leaves it alone."""

    def keys_older_than(self, seconds: float) -> AsyncIterator[str]: ...


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


class BlobBackend(BlobStore, UploadStaging, Protocol):
    """What a blob store implementation provides: both halves."""
