"""Fetch one file into the blob store through the SSRF guard (the imports' Downloader).

The body streams from the socket into the blob store chunk by chunk, so a file of any
size takes constant memory. A 5xx, a timeout or a dropped connection is retried with
backoff; a 4xx is final. Files at or above the range-probe size must first answer
``HEAD`` with ``Range: bytes=0-0`` by 206 and a Content-Range (the Author API's rule
for large files), or they fail with that reason.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import time
from collections.abc import AsyncIterator
from http import HTTPStatus

import magic

from assetvault.adapters.fetch.client import GuardedClient, ReceiveFailed, ResponseTooLarge
from assetvault.adapters.fetch.guard import FetchBlocked
from assetvault.imports.ports import Downloaded, DownloadLimits, FetchFailed, Store

SNIFF_BYTES = 8192
CONTENT_RANGE = re.compile(r"^bytes 0-0/(\d+)$")


def _phrase(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class _Retry(Exception):
    """A failure worth another attempt (5xx, timeout, connection)."""


class UrlDownloader:
    def __init__(self, client: GuardedClient, *, retries: int = 3, backoff: float = 0.5) -> None:
        self.client = client
        self.retries = retries
        self.backoff = backoff

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
        probed = False
        if declared_size is not None and declared_size >= limits.range_probe_bytes:
            await self._probe(url, headers, limits)
            probed = True
        last = "the source did not answer"
        for attempt in range(self.retries + 1):
            remaining = limits.deadline - time.monotonic()
            if remaining <= 0:
                raise FetchFailed("the import's deadline passed before the file was in", 504)
            try:
                async with asyncio.timeout(remaining):
                    return await self._once(url, store, limits, headers, probed, method)
            except _Retry as exc:
                last = str(exc)
            except TimeoutError:
                raise FetchFailed(
                    "the import's deadline passed while the file came in", 504
                ) from None
            except _ProbeFirst:
                await self._probe(url, headers, limits)
                probed = True
                continue
            if attempt < self.retries:
                await asyncio.sleep(min(self.backoff * 2**attempt, 10.0))
        status = 504 if "timed out" in last else 502
        raise FetchFailed(f"{last} (after {self.retries + 1} attempts)", status)

    async def _probe(
        self, url: str, headers: dict[str, str] | None, limits: DownloadLimits
    ) -> None:
        """The large-file rule: ``Range: bytes=0-0`` must answer 206 with Content-Range."""
        why = None
        try:
            async with self.client.receive(
                "HEAD", url, headers={**(headers or {}), "range": "bytes=0-0"}
            ) as fetched:
                found = CONTENT_RANGE.match(fetched.headers.get("content-range", ""))
                if fetched.status != 206:
                    why = f"answered {_phrase(fetched.status)}"
                elif found is None:
                    why = "answered 206 without a Content-Range of bytes 0-0/<size>"
                elif int(found.group(1)) > limits.max_bytes:
                    raise FetchFailed(
                        f"the file has {found.group(1)} bytes, more than the limit of "
                        f"{limits.max_bytes}",
                        413,
                    )
        except FetchBlocked as exc:
            raise FetchFailed(f"the address is refused: {exc.reason}", 403) from None
        except ReceiveFailed as exc:
            why = f"failed ({exc})"
        if why is not None:
            raise FetchFailed(
                f"files of {limits.range_probe_bytes} bytes or more need a source that "
                f"answers a 'Range: bytes=0-0' request with 206 Partial Content and a "
                f"Content-Range; this one {why}",
                400,
            )

    async def _once(
        self,
        url: str,
        store: Store,
        limits: DownloadLimits,
        headers: dict[str, str] | None,
        probed: bool,
        method: str,
    ) -> Downloaded:
        try:
            async with self.client.receive(method, url, headers=headers) as fetched:
                status = fetched.status
                if status >= 500:
                    raise _Retry(f"the source answered {_phrase(status)}")
                if status != 200:
                    raise FetchFailed(
                        f"the source answered {_phrase(status)}",
                        404 if status in (404, 410) else 502,
                    )
                # With a Content-Encoding the length counts the encoded bytes (RFC 9110
                # section 8.6); the blob holds them decoded, as the representation.
                size = fetched.declared_length()
                if size is not None and size > limits.max_bytes:
                    raise FetchFailed(
                        f"the file has {size} bytes, more than the limit of {limits.max_bytes}",
                        413,
                    )
                if size is not None and size >= limits.range_probe_bytes and not probed:
                    raise _ProbeFirst()
                head = bytearray()

                async def chunks() -> AsyncIterator[bytes]:
                    async for chunk in fetched.chunks(limits.max_bytes):
                        if len(head) < SNIFF_BYTES:
                            head.extend(chunk[: SNIFF_BYTES - len(head)])
                        yield chunk

                blob = await store(chunks())
                wire = fetched.wire_bytes
                if size is not None and wire != size:
                    raise _Retry(f"the connection ended after {wire} of {size} bytes")
                ctype = fetched.headers.get("content-type")
                # libmagic takes milliseconds a file: on a thread (it runs without the
                # GIL), not on the loop the other files are received on.
                sniffed = await asyncio.to_thread(_sniff, bytes(head))
                return Downloaded(
                    blob=blob,
                    sniffed=sniffed,
                    declared=ctype.split(";")[0].strip().lower() if ctype else None,
                )
        except FetchBlocked as exc:
            raise FetchFailed(f"the address is refused: {exc.reason}", 403) from None
        except ResponseTooLarge as exc:
            raise FetchFailed(
                f"the file is larger than the limit of {exc.limit} bytes", 413
            ) from None
        except ReceiveFailed as exc:
            if exc.timed_out:
                raise _Retry(f"the source timed out ({exc})") from None
            raise _Retry(f"the connection failed ({exc})") from None


class _ProbeFirst(Exception):
    """The response announced a large file: probe for Range support, then fetch again."""


def _sniff(head: bytes) -> str:
    if not head:
        return "application/x-empty"
    return str(magic.from_buffer(head, mime=True))


def warm_up() -> None:
    """Load what the first file an import receives would otherwise load on the import's
    clock, in the loop the files arrive on: aiohttp (its import builds its TLS contexts,
    reading the CA bundle), libmagic's database and the system's media-type table. For
    the process that runs imports, at its start; blocking (call it on a thread)."""
    import aiohttp  # noqa: F401

    _sniff(b"warm-up")
    mimetypes.init()
