"""The one reader of request bodies: every interface reads its bodies through here.

A body is read up to a limit and refused with 413 as soon as it passes it (by its
Content-Length, or while it streams). A JSON body, or JSON text inside a form field, is
parsed by ``assetvault.jsontext`` with ``json_max_depth``; faults are InvalidInput (400)
in the interface's own error format. Text larger than a few pages is parsed on a worker
thread, so a hostile body never holds the event loop.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import FormData

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
