"""Serving a binary: conditional requests and one byte range, streamed from the store.

Every binary response of every interface is made here, and carries
``X-Content-Type-Options: nosniff``. Only the passive types of ``inline_media_types``
are served inline; any other type is an attachment with ``Content-Security-Policy:
sandbox``, so an uploaded HTML page or scripted SVG never runs in Assetvault's origin
with the viewer's credentials (as AEM's content-disposition filter does).

With blobs in an S3 store and ``blobs_redirect`` on, a GET that would send bytes is
answered with a 302 to a presigned GET of the object instead (as AEM as a Cloud Service
redirects to its signed blob URLs), after authentication, the 304 and the 416 have been
decided here. The store sets ``Content-Type``, ``Content-Disposition`` and
``Cache-Control`` from the signed URL, but cannot add ``Content-Security-Policy`` or
``nosniff``, so documents (HTML, SVG, XML: ``mediatypes.is_document``) are still
streamed through the API. HEAD is answered here (a presigned GET cannot answer a HEAD).

``Content-Type`` is built only from a valid media type (``mediatypes.servable``): a
stored type that is none (a row older than the checks of what is stored) is served as
``application/octet-stream``, never put into a header verbatim.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import quote

import anyio.to_thread
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from assetvault import mediatypes
from assetvault.adapters.blobs.base import BlobStore
from assetvault.api.deps import services
from assetvault.api.errors import error_response
from assetvault.errors import NotFound
from assetvault.runtime.http import SENDFILE
from assetvault.tree.models import Node, Rendition

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# A body up to this size is sent from the page cache as one message, read in the loop
# (``cached_bytes``): cheaper than sendfile's thread hops (an open, then a sendfile),
# each of which costs tens of milliseconds at p99 on a busy machine.
SMALL_BODY = 64 * 1024


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return etag in candidates


def _parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end) for a satisfiable single range, None to ignore the header (syntax
    this server does not serve ranges for, e.g. several ranges), False if unsatisfiable."""
    m = _RANGE.match(header.replace(" ", ""))
    if not m:
        return None
    first, last = m.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return False
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return False
    return start, min(end, size - 1)


def is_passive(request: Request, media_type: str) -> bool:
    """Whether a type may be shown inline: its essence is on the allow-list."""
    essence = media_type.split(";", 1)[0].strip().lower()
    allowed = services(request).settings.inline_media_types
    return essence in {t.strip().lower() for t in allowed}


async def binary_response(
    request: Request,
    blobs: BlobStore,
    *,
    key: str,
    size: int,
    media_type: str,
    etag: str,
    last_modified: datetime,
    filename: str | None = None,
    attachment: bool = False,
) -> Response:
    media_type = mediatypes.servable(media_type)
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(last_modified, usegmt=True),
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
    }
    if getattr(request.state, "media_url", False):
        # Through a media URL (auth/media_urls.py): the URL is a credential for minutes;
        # no page hands it on, no cache keeps the bytes it opened.
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cache-Control"] = "private, no-store"
    if not is_passive(request, media_type):
        attachment = True
        headers["Content-Security-Policy"] = "sandbox"
    if filename is not None:
        kind = "attachment" if attachment else "inline"
        headers["Content-Disposition"] = f"{kind}; filename*=UTF-8''{quote(filename)}"
    elif attachment:
        headers["Content-Disposition"] = "attachment"
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    start, end, status = 0, size - 1, 200
    range_ignored = False  # a Range this server does not serve: the whole body instead
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if range_header and (if_range is None or if_range.strip() in (etag, headers["Last-Modified"])):
        parsed = _parse_range(range_header, size)
        if parsed is False:
            return error_response(
                request,
                416,
                f"the range is outside the {size} bytes of this binary",
                {"Content-Range": f"bytes */{size}"},
            )
        if isinstance(parsed, tuple):
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        else:
            range_ignored = True
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    # Set verbatim: Starlette would add a charset to text/* types the original never had.
    headers["Content-Type"] = media_type
    if request.method == "HEAD" or length == 0:
        return Response(status_code=status, headers=headers)
    url = None if range_ignored else await _download_url(request, blobs, key, media_type, headers)
    if url is not None:
        # Not cached by anyone: the URL expires, and stands for this client's access.
        return Response(
            status_code=302, headers={"Location": url, "Cache-Control": "private, no-store"}
        )
    return BlobResponse(blobs, key, start, length, status_code=status, headers=headers)


async def _download_url(
    request: Request,
    blobs: BlobStore,
    key: str,
    media_type: str,
    headers: dict[str, str],
) -> str | None:
    """The presigned URL to redirect a GET to, or None to stream it from here. (A Range
    this server ignores is not redirected either: the client would resend it to the store,
    which serves multiple ranges or refuses a reversed one where this server answers the
    whole body.)"""
    settings = services(request).settings
    if not settings.blobs_redirect or mediatypes.is_document(media_type):
        return None
    if "if-range" in request.headers or "if-match" in request.headers:
        # The client resends these to the store, which would judge them by its own ETag,
        # not ours (Ceph RGW ignores If-Range: a stale copy would get a range of the new).
        return None
    seconds = settings.blobs_redirect_seconds
    return await blobs.download_url(
        key,
        expires_seconds=seconds,
        content_type=media_type,
        content_disposition=headers.get("Content-Disposition"),
        # A blob key's content never changes; the URL itself is the credential.
        cache_control=f"private, max-age={seconds}",
    )


class BlobResponse(Response):
    """``length`` bytes of a blob from ``start``. A small body the page cache holds is
    read in the loop and sent as one message. Otherwise, where the server has the sendfile
    extension (runtime/http.py) and the store keeps the blob on this machine's disk,
    the bytes go from the page cache to the socket without passing through Python (the
    file is opened before the headers go, so a blob swept away meanwhile is a 500, never
    a short answer); otherwise they are streamed from the store."""

    def __init__(
        self,
        blobs: BlobStore,
        key: str,
        start: int,
        length: int,
        *,
        status_code: int,
        headers: dict[str, str],
    ) -> None:
        super().__init__(status_code=status_code, headers=headers)
        self.blobs, self.key, self.start, self.length = blobs, key, start, length

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.length <= SMALL_BODY:
            body = self.blobs.cached_bytes(self.key, self.start, self.length)
            if body is not None:
                start = {"type": "http.response.start", "status": self.status_code}
                await send({**start, "headers": self.raw_headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
        path = None
        if SENDFILE in scope.get("extensions", {}):
            path = await self.blobs.served_file(self.key)
        if path is None:
            end = self.start + self.length - 1
            stream = StreamingResponse(
                self.blobs.read(self.key, self.start, end),
                status_code=self.status_code,
                headers=dict(self.headers),
            )
            await stream(scope, receive, send)
            return
        fd = await anyio.to_thread.run_sync(os.open, path, os.O_RDONLY)
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            await send({"type": SENDFILE, "file": fd, "offset": self.start, "count": self.length})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            os.close(fd)


async def original_response(
    request: Request,
    blobs: BlobStore,
    node: Node,
    *,
    filename: str | None = None,
    attachment: bool = False,
) -> Response:
    """An asset's original (404 when it has none, e.g. after its deletion)."""
    if node.blob_key is None:
        raise NotFound(f"{node.path} has no original binary")
    return await binary_response(
        request,
        blobs,
        key=node.blob_key,
        size=node.size or 0,
        media_type=mediatypes.servable(node.mime_type),
        etag=f'"{node.sha1 or node.blob_key}"',
        last_modified=node.modified_at,
        filename=filename,
        attachment=attachment,
    )


async def rendition_response(
    request: Request,
    blobs: BlobStore,
    rendition: Rendition,
    *,
    filename: str | None = None,
    attachment: bool = False,
) -> Response:
    return await binary_response(
        request,
        blobs,
        key=rendition.blob_key,
        size=rendition.size,
        media_type=rendition.mime_type,
        etag=f'"{rendition.blob_key[:40]}"',
        last_modified=rendition.created_at,
        filename=filename,
        attachment=attachment,
    )
