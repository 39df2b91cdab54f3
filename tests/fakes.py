"""In-memory fakes of the ports of the outside tools, for fast tests of the services:
the blob store (with its upload staging), the media tools and the search index.

Each keeps the contract of its port (processing/ports.py, search/ports.py,
adapters/blobs/base.py) and records what it was asked, so a test can say what a service
did without a real tool. The fake blob store behaves as an object store would: it has no
file of a blob, so ``local_copy`` writes a temporary one and ``put_file`` reads and
removes the file it is given.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from assetvault.adapters.blobs.base import (
    BlobInfo,
    BlobMissing,
    PartConflict,
    PartsIncomplete,
    PartTooLarge,
)
from assetvault.processing.ports import (
    Limits,
    MadeRendition,
    MediaError,
    Rendered,
    RenditionSpec,
    SourceKind,
)
from assetvault.search.query import And, FacetRequest, QueryNode, SortKey

# -- blob store ---------------------------------------------------------------------------


def _info(data: bytes) -> BlobInfo:
    return BlobInfo(
        key=hashlib.sha256(data).hexdigest(),
        size=len(data),
        sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
    )


@dataclass
class _Staged:
    parts: dict[int, bytes] = field(default_factory=dict)
    assembled: BlobInfo | None = None
    touched: float = field(default_factory=time.time)


class FakeBlobStore:
    """A BlobBackend in memory: blobs by key, staged uploads by id."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.stored_at: dict[str, float] = {}
        self.uploads: dict[str, _Staged] = {}
        self.copies_out = 0  # local copies lent and not yet given back
        self.scratch_dirs: list[Path] = []

    async def put(self, chunks: AsyncIterable[bytes]) -> BlobInfo:
        return self._store(b"".join([c async for c in chunks]))

    async def put_file(self, path: Path) -> BlobInfo:
        data = path.read_bytes()
        path.unlink()
        return self._store(data)

    def _store(self, data: bytes) -> BlobInfo:
        info = _info(data)
        self.blobs[info.key] = data
        self.stored_at[info.key] = time.time()
        return info

    @contextlib.asynccontextmanager
    async def scratch(self) -> AsyncIterator[Path]:
        d = Path(tempfile.mkdtemp(prefix="fake-scratch-"))
        self.scratch_dirs.append(d)
        try:
            yield d
        finally:
            shutil.rmtree(d, ignore_errors=True)

    @contextlib.asynccontextmanager
    async def local_copy(self, key: str) -> AsyncIterator[Path]:
        if key not in self.blobs:
            raise BlobMissing(f"no blob {key}")
        d = Path(tempfile.mkdtemp(prefix="fake-copy-"))
        path = d / key
        path.write_bytes(self.blobs[key])
        self.copies_out += 1
        try:
            yield path
        finally:
            self.copies_out -= 1
            shutil.rmtree(d, ignore_errors=True)

    async def size(self, key: str) -> int | None:
        data = self.blobs.get(key)
        return None if data is None else len(data)

    async def served_file(self, key: str) -> Path | None:
        return None  # in memory: responses stream ``read``

    async def download_url(
        self,
        key: str,
        *,
        expires_seconds: int,
        content_type: str,
        content_disposition: str | None,
        cache_control: str,
    ) -> str | None:
        return None  # no place a client could fetch from

    def cached_bytes(self, key: str, start: int, length: int) -> bytes | None:
        return None  # as a store elsewhere: responses stream ``read``

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        data = self.blobs[key]
        yield data[start : None if end is None else end + 1]

    async def delete(self, key: str) -> None:
        self.blobs.pop(key, None)
        self.stored_at.pop(key, None)

    async def touch(self, key: str) -> None:
        if key in self.blobs:
            self.stored_at[key] = time.time()

    async def keys_older_than(self, seconds: float) -> AsyncIterator[str]:
        cutoff = time.time() - seconds
        for key in sorted(self.blobs):
            if self.stored_at[key] <= cutoff:
                yield key

    async def clear(self) -> int:
        removed = len(self.blobs)
        self.blobs.clear()
        self.stored_at.clear()
        self.uploads.clear()
        return removed

    # -- upload staging ------------------------------------------------------------------

    async def write_part(
        self, upload_id: str, number: int, chunks: AsyncIterable[bytes], max_size: int
    ) -> int:
        staged = self.uploads.setdefault(upload_id, _Staged())
        if staged.assembled is not None:
            raise PartConflict("this upload has already been completed")
        data = b""
        async for chunk in chunks:
            data += chunk
            if len(data) > max_size:
                raise PartTooLarge(f"more than {max_size} bytes")
        old = staged.parts.get(number)
        if old is not None and len(old) != len(data):
            raise PartConflict(f"part {number} was already received with {len(old)} bytes")
        staged.parts[number] = data
        staged.touched = time.time()
        return len(data)

    async def received(self, upload_id: str) -> dict[int, int]:
        staged = self.uploads.get(upload_id)
        return {} if staged is None else {n: len(d) for n, d in staged.parts.items()}

    async def assemble(self, upload_id: str, expected_size: int) -> BlobInfo:
        staged = self.uploads.setdefault(upload_id, _Staged())
        if staged.assembled is not None:
            return staged.assembled
        contiguous = []
        while len(contiguous) + 1 in staged.parts:
            contiguous.append(staged.parts[len(contiguous) + 1])
        data = b"".join(contiguous)
        if len(data) != expected_size or len(contiguous) != len(staged.parts):
            raise PartsIncomplete(
                f"received {len(contiguous)} contiguous part(s) with {len(data)} bytes "
                f"of {expected_size}"
            )
        staged.assembled = self._store(data)
        return staged.assembled

    async def discard(self, upload_id: str) -> None:
        self.uploads.pop(upload_id, None)

    async def sweep(self, older_than_seconds: float) -> int:
        cutoff = time.time() - older_than_seconds
        old = [u for u, s in self.uploads.items() if s.touched <= cutoff]
        for upload_id in old:
            del self.uploads[upload_id]
        return len(old)

    async def staged_blob_keys(self) -> set[str]:
        return {s.assembled.key for s in self.uploads.values() if s.assembled is not None}


# -- media tools --------------------------------------------------------------------------


@dataclass
class FakeFile:
    """What the fake tools find in a file with these bytes."""

    mime: str = "application/octet-stream"
    tags: dict[str, Any] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    duration: float | None = None
    text: str | None = None
    error: str | None = None  # render raises MediaError with this reason


@dataclass(frozen=True)
class RenderCall:
    kind: SourceKind
    content: bytes
    specs: tuple[RenditionSpec, ...]
    limits: Limits
    label: str


_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "mp4": "video/mp4"}


def _fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(box_w / width, box_h / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


class FakeMediaTools:
    """MediaTools that look files up by their bytes (``files``) instead of decoding them.
    Unknown bytes sniff as application/octet-stream, have no tags and render as an icon.
    ``before_render`` runs (awaited) before each render, e.g. to store a newer original
    while a job works."""

    IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/tiff", "image/webp"})

    def __init__(self) -> None:
        self.files: dict[bytes, FakeFile] = {}
        self.renders: list[RenderCall] = []
        self.before_render: Callable[[], Awaitable[None]] | None = None
        self.tag_errors = False  # read_tags raises, as a dead exiftool would
        self.closed = False

    def file(self, content: bytes, **facts: Any) -> bytes:
        """Declare what the tools find in ``content``; returns the content."""
        self.files[content] = FakeFile(**facts)
        return content

    def _lookup(self, path: Path) -> FakeFile:
        return self.files.get(path.read_bytes(), FakeFile())

    def source_kind(self, mime: str) -> SourceKind:
        if mime in self.IMAGE_TYPES:
            return "image"
        if mime == "application/pdf":
            return "pdf"
        if mime.startswith("video/"):
            return "video"
        return "other"

    async def sniff(self, path: Path) -> str:
        return self._lookup(path).mime

    async def read_tags(self, path: Path) -> dict[str, Any]:
        if self.tag_errors:
            raise RuntimeError("exiftool died")
        return dict(self._lookup(path).tags)

    async def render(
        self,
        kind: SourceKind,
        src: Path,
        out_dir: Path,
        specs: tuple[RenditionSpec, ...],
        limits: Limits,
        label: str,
    ) -> Rendered:
        content = src.read_bytes()
        self.renders.append(RenderCall(kind, content, specs, limits, label))
        if self.before_render is not None:
            await self.before_render()
        found = self.files.get(content, FakeFile())
        if found.error is not None:
            raise MediaError(found.error)
        if found.width and found.height and found.width * found.height > limits.max_pixels:
            raise MediaError(
                f"the image has {found.width}x{found.height} pixels, more than the limit of "
                f"{limits.max_pixels} pixels"
            )
        width, height = (found.width, found.height) if kind != "other" else (None, None)
        made = []
        for spec in specs:
            if spec.page >= (found.pages or 1):
                continue  # as the tools do: a page the document lacks is not drawn
            w, h = _fit(width or spec.width, height or spec.height, spec.width, spec.height)
            path = out_dir / spec.name
            path.write_bytes(f"{spec.name} of {hashlib.sha256(content).hexdigest()}".encode())
            made.append(MadeRendition(spec.name, path, _MIME[spec.format], w, h))
        return Rendered(
            renditions=tuple(made),
            width=width,
            height=height,
            pages=found.pages,
            duration=found.duration,
            text=found.text,
        )

    async def pdf_text(self, src: Path, limits: Limits) -> str:
        found = self._lookup(src)
        if found.error is not None:
            raise MediaError(found.error)
        return (found.text or "")[: limits.text_max_chars]

    def close(self) -> None:
        self.closed = True


# -- search index -------------------------------------------------------------------------


class FakePrepared:
    concurrent = False  # as a database connection: one step after the other

    def __init__(self, index: FakeSearchIndex, query: And) -> None:
        self.index = index
        self.query = query

    async def summary(
        self, facets: tuple[FacetRequest, ...], cap: int
    ) -> tuple[int, list[list[tuple[Any, int]]]]:
        return len(self.index.matching), [list(self.index.buckets.get(f.id, [])) for f in facets]

    async def page(
        self, sort: tuple[SortKey, ...], after: list[Any] | None, limit: int, *, large: bool
    ) -> list[tuple[str, list[Any]]]:
        self.index.pages.append((sort, after, large))
        ordered = sorted(self.index.matching)
        if after is not None:
            ordered = [i for i in ordered if i > after[0]]
        return [(i, [i]) for i in ordered[:limit]]

    async def ranked(self, cap: int) -> list[str]:
        return list(self.index.matching[:cap])

    async def counted_ranked(self, cap: int, count_to: int) -> tuple[int, list[str]]:
        return len(self.index.matching), await self.ranked(cap)

    async def ranked_uuids(self, cap: int) -> bytes:
        return b"".join(uuid.UUID(i).bytes for i in await self.ranked(cap))

    async def among(self, ids: list[str]) -> set[str]:
        return set(ids) & set(self.index.matching)


class FakeSearchIndex:
    """A SearchIndex whose every query matches ``matching`` (in relevance order), with
    fixed facet ``buckets``; it records the queries prepared and the pages asked for.
    Sorted pages are ordered by id, the key a cursor carries."""

    def __init__(self) -> None:
        self.matching: list[str] = []
        self.buckets: dict[str, list[tuple[Any, int]]] = {}
        self.queries: list[tuple[And, tuple[QueryNode, ...]]] = []
        self.pages: list[tuple[tuple[SortKey, ...], list[Any] | None, bool]] = []

    async def prepare(
        self, conn: AsyncConnection, query: And, scopes: tuple[QueryNode, ...] = ()
    ) -> FakePrepared:
        self.queries.append((query, scopes))
        return FakePrepared(self, query)


# -- service containers on the fakes ------------------------------------------------------


@dataclass
class Faked:
    """The services of one test, on a real database and the fakes of the outside tools."""

    services: Any  # assetvault.services.Services
    blobs: FakeBlobStore
    media: FakeMediaTools
    index: FakeSearchIndex | None


@contextlib.asynccontextmanager
async def faked_services(
    request: Any, tmp_path: Path, backend: str, *, fake_index: bool = False
) -> AsyncIterator[Faked]:
    """build_services on ``backend`` (sqlite | postgresql) with the fake blob store and
    media tools (and, if asked, the fake search index), on a copy of the migrated
    template database; closed after."""
    from assetvault.services import build_services
    from tests.databases import migrated_database
    from tests.factories import make_settings

    data_dir = tmp_path / "data"
    async with migrated_database(request, data_dir, backend) as database_url:
        blobs, media = FakeBlobStore(), FakeMediaTools()
        index = FakeSearchIndex() if fake_index else None
        svc = build_services(
            make_settings(data_dir, database_url=database_url),
            blobs=blobs,
            media=media,
            search_index=index,
        )
        try:
            yield Faked(svc, blobs, media, index)
        finally:
            await svc.close()
