"""The ports of imports: what the import jobs ask of the outside, in plain types.

A ``Downloader`` fetches one file and streams it into the blob store (through the SSRF
guard; adapters/fetch/download.py); a ``SourceClient`` lists, downloads and shows
thumbnails of a provider's items (Dropbox, OneDrive; adapters/fetch/dropbox.py and
onedrive.py). An adapter imports this module and nothing else of imports.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from assetvault.adapters.blobs.base import BlobInfo

# Stores a stream of bytes as a blob (the write path's Writes.store_stream).
Store = Callable[[AsyncIterable[bytes]], Awaitable[BlobInfo]]


class FetchFailed(Exception):
    """One file could not be fetched; ``reason`` goes into the job's result, ``status``
    is the HTTP status of the problem document (404 when the source had no such file,
    413 too large, 403 a refused address, 504 a timeout, 502 anything else)."""

    def __init__(self, reason: str, status: int = 502) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Downloaded:
    blob: BlobInfo
    sniffed: str  # the type the content's own bytes show
    declared: str | None  # the source's Content-Type, without parameters


@dataclass(frozen=True)
class DownloadLimits:
    max_bytes: int
    range_probe_bytes: int  # files this large must answer a Range probe first
    deadline: float  # the loop's clock (time.monotonic) by which the file must be in


class Downloader(Protocol):
    async def download(
        self,
        url: str,
        store: Store,
        limits: DownloadLimits,
        *,
        headers: dict[str, str] | None = None,
        declared_size: int | None = None,
        method: str = "GET",
    ) -> Downloaded:
        """Fetch ``url`` into the blob store; FetchFailed with the reason otherwise."""
        ...


@dataclass(frozen=True)
class SourceItem:
    """A file or folder of an import source, as the Import API lists it."""

    id: str
    name: str
    type: str  # file | folder
    path: str  # within the source, "/"-separated
    size: int | None = None
    mime_type: str | None = None
    modified: str | None = None


@dataclass(frozen=True)
class SourcePage:
    items: list[SourceItem]
    cursor: str | None  # the provider's own continuation, opaque to the caller


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None


@dataclass(frozen=True)
class Thumbnail:
    content: bytes
    mime_type: str


@dataclass(frozen=True)
class Download:
    """How to fetch an item's content: a URL and the headers it needs."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"  # Dropbox's content endpoints take POST


class SourceClient(Protocol):
    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        """Where to send the user to grant access (OAuth 2 code flow with PKCE)."""
        ...

    async def exchange(self, code: str, code_verifier: str, redirect_uri: str) -> Tokens: ...

    async def refresh(self, refresh_token: str) -> Tokens: ...

    async def list(
        self, token: str, item_id: str | None, *, recursive: bool, cursor: str | None, limit: int
    ) -> SourcePage: ...

    async def item(self, token: str, item_id: str) -> SourceItem: ...

    def download(self, token: str, item: SourceItem) -> Download: ...

    async def thumbnail(self, token: str, item_id: str) -> Thumbnail: ...
