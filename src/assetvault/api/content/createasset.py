"""POST /content/dam/<folder>.createasset.html: the create-asset servlet (uploads/servlet.py).

multipart/form-data, fields as the AEM upload clients send them: ``_charset_``, then for
a chunk ``file@Offset``, ``chunk@Length``, ``file@Length``, then ``file`` (the part's
filename is the asset's name, unless a ``fileName`` field came first). Tolerated too:
``:replaceAsset``/``replaceAsset`` (true deletes the existing asset and makes it anew)
and ``file@Completed`` (ignored: the sizes say when a file is complete).

The body is parsed while it streams (python-multipart): the fields before the file are
read, the request is checked, and the file's bytes go straight into upload staging;
nothing of the body is held beyond one received chunk. Answers, errors included, are
Sling's post response: its HTML page, or its JSON when the client prefers JSON.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from html import escape
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from python_multipart.multipart import MultipartParser, parse_options_header

from assetvault import mediatypes
from assetvault.api.deps import authenticate, services
from assetvault.api.errors import CHALLENGE
from assetvault.api.negotiation import negotiate
from assetvault.errors import AssetvaultError, InvalidInput, NotAcceptable, PayloadTooLarge
from assetvault.tree.paths import parent_of
from assetvault.uploads.servlet import Chunk, CreateAssetUploads

CREATEASSET = ".createasset.html"
FILE = "file"
OFFSET, CHUNK_LENGTH, FILE_LENGTH = "file@Offset", "chunk@Length", "file@Length"
# These decide where a file's bytes go, so they must arrive before the file part.
BEFORE_FILE = {OFFSET, CHUNK_LENGTH, FILE_LENGTH, "fileName", "_charset_"}
MAX_PARTS = 32
MAX_FIELD_BYTES = 64 * 1024  # every field but the file, together
# Everything of the body but the file's bytes: fields, part headers, boundaries, and
# whatever a client sends around them (a preamble, an epilogue).
MAX_FORM_BYTES = 4 * MAX_FIELD_BYTES
# Sling's HtmlResponse.html, the page its POST servlet answers with.
SLING_PAGE = """<html>
<head>
    <title>{title}</title>
</head>
    <body>
    <h1>{title}</h1>
    <table>
        <tbody>
            <tr>
                <td>Status</td>
                <td><div id="Status">{code}</div></td>
            </tr>
            <tr>
                <td>Message</td>
                <td><div id="Message">{message}</div></td>
            </tr>
            <tr>
                <td>Location</td>
                <td><a href="{location}" id="Location">{location}</a></td>
            </tr>
            <tr>
                <td>Parent Location</td>
                <td><a href="{parent}" id="ParentLocation">{parent}</a></td>
            </tr>
            <tr>
                <td>Path</td>
                <td><div id="Path">{path}</div></td>
            </tr>
            <tr>
                <td>Referer</td>
                <td><div id="Referer">{referer}</div></td>
            </tr>
            <tr>
                <td>ChangeLog</td>
                <td><div id="ChangeLog">{changelog}</div></td>
            </tr>
        </tbody>
    </table>
    <p><a href="{location}">Modified Resource</a></p>
    <p><a href="{parent}">Parent of Modified Resource</a></p>
    </body>
</html>
"""


class ServletForm:
    """A multipart body read as it streams: fields are gathered (bounded in count and
    size), the one ``file`` part's bytes are handed on as they arrive."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        boundary: bytes,
        at_end: Callable[[ServletForm], None],
    ) -> None:
        self._chunks = chunks
        self._at_end = at_end
        self.fields: dict[str, list[str]] = {}
        self.late: set[str] = set()  # fields that came after the file part
        self.file_name: str | None = None
        self.file_type: str | None = None
        self._file_seen = False
        self._file_done = False
        self._in_file = False
        self._ended = False
        self._parts = 0
        self._field_bytes = 0
        self._body_bytes = 0
        self._file_bytes = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._part_name: str | None = None
        self._value = bytearray()
        self._pending: list[bytes] = []
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    # -- parser callbacks ------------------------------------------------------------

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InvalidInput(f"the form has more than {MAX_PARTS} parts")
        self._headers = {}
        self._value = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name.extend(data[start:end])

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value.extend(data[start:end])

    def _header_end(self) -> None:
        self._headers[bytes(self._header_name).strip().lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = disposition.get(b"name")
        if name is None:
            raise InvalidInput("a form part has no name in its Content-Disposition")
        self._part_name = _text(name, "a form part's name")
        if self._part_name != FILE:
            return
        if self._file_seen:
            raise InvalidInput("the form has more than one file part")
        self._file_seen = self._in_file = True
        filename = disposition.get(b"filename")
        self.file_name = _text(filename, "the file's filename") if filename else None
        kind = self._headers.get(b"content-type")
        self.file_type = kind.decode("latin-1").strip() if kind else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._file_bytes += end - start
            self._pending.append(bytes(data[start:end]))
            return
        self._field_bytes += end - start
        if self._field_bytes > MAX_FIELD_BYTES:
            raise InvalidInput(f"the form's fields hold more than {MAX_FIELD_BYTES} bytes")
        self._value.extend(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._file_done = True
            return
        assert self._part_name is not None
        self.fields.setdefault(self._part_name, []).append(
            _text(bytes(self._value), f"the field {self._part_name}")
        )
        if self._file_seen:
            self.late.add(self._part_name)

    def _end(self) -> None:
        self._ended = True

    # -- reading -----------------------------------------------------------------------

    async def _feed(self) -> bool:
        """One more received chunk through the parser; False at the end of the body."""
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            return False
        self._body_bytes += len(chunk)
        try:
            self._parser.write(chunk)
        except AssetvaultError:
            raise
        except Exception as exc:  # python-multipart's several kinds of parse error
            raise InvalidInput(f"the multipart body could not be read: {exc}") from exc
        if self._body_bytes - self._file_bytes > MAX_FORM_BYTES:
            raise PayloadTooLarge(
                f"the body holds more than {MAX_FORM_BYTES} bytes besides the file's"
            )
        return True

    async def until_file(self) -> bool:
        """Reads up to the file part's first bytes; False when the body has none."""
        while not self._file_seen:
            if not await self._feed():
                return False
        return True

    async def file_data(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive, then the rest of the body; raises (so the
        bytes are not kept) if the body is cut short or ``at_end`` refuses it."""
        while True:
            if self._pending:
                piece = b"".join(self._pending)
                self._pending.clear()
                yield piece
            if self._file_done:
                break
            if not await self._feed():
                raise InvalidInput("the body ended inside the file part")
        while await self._feed():
            pass
        if not self._ended:
            raise InvalidInput("the multipart body ends without its closing boundary")
        self._at_end(self)

    def one(self, name: str) -> str | None:
        values = self.fields.get(name, [])
        if len(values) > 1:
            raise InvalidInput(f"{name} is given more than once")
        return values[0] if values else None


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not UTF-8") from exc


def _number(form: ServletForm, name: str) -> int | None:
    value = form.one(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise InvalidInput(f"{name} must be a whole number of bytes, not {value[:40]!r}")
    return int(value)


def _chunk(form: ServletForm, request: Request) -> Chunk | None:
    offset = _number(form, OFFSET)
    length = _number(form, CHUNK_LENGTH)
    total = _number(form, FILE_LENGTH)
    if offset is None and length is None and total is None:
        return None
    if length is None or total is None:
        raise InvalidInput(f"a chunk names {CHUNK_LENGTH} and {FILE_LENGTH} (and {OFFSET})")
    declared = request.headers.get("x-chunked-total-size")
    if declared is not None and declared.strip() != str(total):
        raise InvalidInput(f"x-chunked-total-size {declared[:40]!r} is not {FILE_LENGTH} {total}")
    return Chunk(offset or 0, length, total)


def _flag(form: ServletForm, name: str) -> bool:
    value = form.one(name)
    if value is None or value == "":
        return False
    if value.lower() not in ("true", "false"):
        raise InvalidInput(f"{name} must be true or false, not {value[:40]!r}")
    return value.lower() == "true"


def _replace(form: ServletForm) -> bool:
    return _flag(form, ":replaceAsset") or _flag(form, "replaceAsset")


def _check_end(form: ServletForm) -> None:
    late = sorted(form.late & BEFORE_FILE)
    if late:
        raise InvalidInput(f"{', '.join(late)} must come before the file part")
    _replace(form)  # its faults refuse the request before its bytes are kept
    _flag(form, "file@Completed")


def sling_response(
    request: Request,
    status: int,
    message: str,
    *,
    path: str,
    created: bool = False,
    changes: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Sling's post response (HtmlResponse / JSONResponse of the Sling POST servlet)."""
    title = (
        f"Error while processing {path}"
        if status >= 300
        else f"Content {'created' if created else 'modified'} {path}"
    )
    location = path if status < 300 else ""
    parent = parent_of(path) if status < 300 else ""
    referer = request.headers.get("referer", "")
    try:
        kind = negotiate(request, ["text/html", "application/json"])
    except NotAcceptable:
        kind = "text/html"  # an error page is sent whatever the client accepts
    headers = dict(headers or {})
    if status == 201:
        headers["Location"] = location
    if kind == "application/json":
        body: dict[str, Any] = {
            "changes": [{"type": t, "argument": a} for t, a in (changes or [])],
            "path": path,
            "location": location,
            "parentLocation": parent,
            "status.code": status,
            "status.message": message,
            "title": title,
            "referer": referer,
            "isCreate": created,
        }
        if status >= 300:
            body["error"] = {"class": "org.apache.sling.api.SlingException", "message": message}
        return JSONResponse(body, status_code=status, headers=headers)
    # Sling escapes every value, the change log's own <pre> and <br/> included.
    log = "<pre>" + "".join(f'{t}("{a}");<br/>' for t, a in (changes or [])) + "</pre>"
    values = {
        "title": title,
        "code": str(status),
        "message": message,
        "location": location,
        "parent": parent,
        "path": path,
        "referer": referer,
        "changelog": log if status < 300 else "",
    }
    page = SLING_PAGE.format_map({k: escape(v, quote=True) for k, v in values.items()})
    return Response(page, status_code=status, headers=headers, media_type="text/html")


async def create_asset(request: Request, folder_path: str) -> Response:
    where = {"path": folder_path}
    try:
        return await _create_asset(request, folder_path, where)
    except AssetvaultError as exc:
        headers = {"WWW-Authenticate": CHALLENGE} if exc.status == 401 else None
        return sling_response(request, exc.status, exc.detail, path=where["path"], headers=headers)


async def _create_asset(request: Request, folder_path: str, where: dict[str, str]) -> Response:
    principal = await authenticate(request, "write", api_key=False)
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput("the create-asset servlet takes a multipart/form-data body")
    form = ServletForm(request.stream().__aiter__(), boundary, _check_end)
    if not await form.until_file():
        raise InvalidInput("the form has no file part (a part named file, with a filename)")
    charset = form.one("_charset_")
    if charset is not None and charset.strip().lower() not in ("utf-8", "utf8"):
        raise InvalidInput(f"_charset_ must be utf-8, not {charset[:40]!r}")
    name = form.one("fileName") or form.file_name
    if not name:
        raise InvalidInput("the file part needs a filename (or a fileName field before it)")
    chunk = _chunk(form, request)
    uploads = CreateAssetUploads(services(request).uploads)
    slot = await uploads.begin(folder_path, name, chunk, user=principal.name)
    where["path"] = slot.path
    size = await uploads.receive(slot, form.file_data())
    if not slot.completes:
        return sling_response(request, 200, "OK", path=slot.path)
    chunk_type = request.headers.get("x-chunked-content-type")
    stored = await uploads.finish(
        slot,
        size,
        mime_type=mediatypes.or_none(form.file_type) or mediatypes.or_none(chunk_type),
        replace=_replace(form),
        user=principal.name,
    )
    if stored.created:
        return sling_response(
            request, 201, "Created", path=slot.path, created=True, changes=[("created", slot.path)]
        )
    return sling_response(request, 200, "OK", path=slot.path, changes=[("modified", slot.path)])
