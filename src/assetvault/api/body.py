"""The one reader of request bodies: every interface reads its bodies through here.

A body is read up to a limit and refused with 413 as soon as it passes it (by its
Content-Length, or while it streams). A JSON body, or JSON text inside a form field, is
parsed by ``assetvault.jsontext`` with ``json_max_depth``; faults are InvalidInput (400)
in the interface's own error format. Text larger than a few pages is parsed on a worker
thread, so a hostile body never holds the event loop.

A route that answers before its body is read to the end (a 413, a refused credential)
leaves the rest unread; ``DrainUnreadBody`` reads it on, bounded, before the answer goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import FormData, Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assetvault import jsontext
from assetvault.api.deps import services
from assetvault.errors import InvalidInput, PayloadTooLarge

# Smaller texts parse in well under a millisecond: a thread hop would cost more.
THREAD_ABOVE_BYTES = 64 * 1024


async def read_body(request: Request, limit: int, what: str = "the request body") -> bytes:
    """The whole body, or PayloadTooLarge once it is known to be larger than ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{what} is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"{what} is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_json(request: Request, text: bytes | str, what: str = "the body") -> Any:
    """JSON text parsed with the server's depth bound; InvalidInput naming the fault."""
    settings = services(request).settings
    if len(text) > settings.json_max_bytes:
        raise PayloadTooLarge(f"{what} is larger than the limit of {settings.json_max_bytes} bytes")
    depth = settings.json_max_depth
    try:
        if len(text) > THREAD_ABOVE_BYTES:
            return await anyio.to_thread.run_sync(lambda: jsontext.loads(text, max_depth=depth))
        return jsontext.loads(text, max_depth=depth)
    except jsontext.JSONTextError as exc:
        raise InvalidInput(f"{what} is refused: {exc}") from exc


async def json_body(request: Request, *, if_empty: bytes | None = None) -> Any:
    """The request body as JSON, at most ``json_max_bytes`` long. ``if_empty`` is parsed
    instead of an empty body, where the interface allows one."""
    limit = services(request).settings.json_max_bytes
    body = await read_body(request, limit, "the JSON body")
    return await parse_json(request, body or if_empty or b"")


def replayed(request: Request, body: bytes) -> Request:
    """A request over the same scope whose body is ``body`` (already read and capped)."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


async def _read_refusing_files(request: Request, limit: int, refusal: str) -> bytes:
    """A multipart body read as ``read_body`` does, but refused with ``refusal`` (400)
    as soon as a part carrying a file (a ``filename``) begins, however large the file:
    the parts' headers are scanned while the body streams. A body too malformed to scan
    is left for the form parser to name its fault."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        return await read_body(request, limit, "the form body")
    name, value, found = bytearray(), bytearray(), []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.extend(data[start:end])

    def on_header_end() -> None:
        if bytes(name).strip().lower() == b"content-disposition":
            _, disposition = parse_options_header(bytes(value))
            if any(key.startswith(b"filename") for key in disposition):
                found.append(True)
        name.clear()
        value.clear()

    parser: MultipartParser | None = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
        },
    )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if parser is not None:
            try:
                parser.write(chunk)
            except Exception:  # malformed: the form parser will say how
                parser = None
        if found:
            raise InvalidInput(refusal)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the form body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def capped_form(
    request: Request,
    limit: int,
    *,
    max_fields: int = 1000,
    max_files: int = 0,
    files_refused: str | None = None,
) -> FormData:
    """The form of a body at most ``limit`` bytes long; InvalidInput if it is malformed.
    With ``files_refused``, a multipart body with a file part is refused with that
    message before the file is read (the interface says where files go instead)."""
    multipart = request.headers.get("content-type", "").lower().startswith("multipart/")
    if files_refused is not None and multipart:
        body = await _read_refusing_files(request, limit, files_refused)
    else:
        body = await read_body(request, limit, "the form body")
    try:
        return await replayed(request, body).form(max_fields=max_fields, max_files=max_files)
    except Exception as exc:  # python-multipart and Starlette raise several kinds
        raise InvalidInput(f"the form body could not be read: {exc}") from exc


@dataclass
class _BodyRead:
    """How much of a request's body has been taken from the server, and whether all."""

    received: int = 0
    asked: bool = False  # receive() was called: a 100 Continue, if expected, went out
    complete: bool = False  # the last part arrived, or the client went away


class DrainUnreadBody:
    """Lingering close for early answers. A client that sends its whole body before it
    reads (Python's urllib, many scripts) sees a connection reset, not the answer, when
    the server answers early and closes with the body unread: the kernel resets a
    connection closed with data unread. So when an answer starts while the request's
    body is not all read, the rest is read and discarded first, up to ``max_bytes`` or
    ``max_seconds``, whichever comes first; a body that would not fit the bound (by its
    Content-Length) is not read at all. If the body was not read to its end, the answer
    says ``Connection: close``, so the server does not read on after it either: nothing
    reads a body without bound."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        if length in ("", "0") and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body: nothing to drain
            return
        read = _BodyRead()

        async def tracked() -> Message:
            read.asked = True
            message = await receive()
            if message["type"] == "http.request":
                read.received += len(message.get("body", b""))
                read.complete = not message.get("more_body", False)
            else:
                read.complete = True  # the client went away: nothing more to read
            return message

        async def answer(message: Message) -> None:
            starts = message["type"] == "http.response.start"
            if starts and not read.complete and not await self._drain(headers, tracked, read):
                message = dict(message)
                message["headers"] = [
                    *(h for h in message.get("headers", []) if h[0].lower() != b"connection"),
                    (b"connection", b"close"),
                ]
            await send(message)

        await self.app(scope, tracked, answer)

    async def _drain(self, headers: Headers, receive: Receive, read: _BodyRead) -> bool:
        """Read the body's rest within the bounds; whether it was all read."""
        if not read.asked and "100-continue" in headers.get("expect", "").lower():
            return False  # the client waits for a go-ahead before sending: none is given
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) - read.received > self.max_bytes:
            return False  # could not be read within the bound: not begun
        limit = read.received + self.max_bytes
        with anyio.move_on_after(self.max_seconds):
            while not read.complete and read.received <= limit:
                await receive()
        return read.complete
