"""Error bodies in each interface's own format.

Under /adobe: application/problem+json (RFC 9457). Under /api and /content: the Siren
``core/response`` body AEM's Sling servlets answer with. Everything else: problem+json.
"""

from __future__ import annotations

import errno
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assetvault.errors import AssetvaultError, InsufficientStorage

log = logging.getLogger("assetvault.api")

CHALLENGE = 'Bearer realm="Assetvault", Basic realm="Assetvault"'


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def siren_location(path: str) -> tuple[str, str]:
    """The ``location`` and ``parentLocation`` of a Siren core/response body."""
    parent = path.rsplit("/", 1)[0] or path
    return f"{path}.json", f"{parent}.json"


def siren_core_response(
    path: str, status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The Sling ``core/response`` body AEM answers writes and errors with."""
    location, parent = siren_location(path.removesuffix(".json"))
    body = {
        "class": "core/response",
        "properties": {
            "path": path,
            "location": location,
            "parentLocation": parent,
            "status.code": status,
            "status.message": message,
        },
    }
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(
    request: Request, status: int, detail: str, headers: dict[str, str] | None = None
) -> Response:
    path = request.url.path
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", CHALLENGE)
    if path.startswith(("/api", "/content")):
        return siren_core_response(path, status, detail, headers)
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "instance": path,
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def http_error_response(request: Request, exc: StarletteHTTPException) -> Response:
    """An HTTPException (raised by the framework or a library) in the interface's format."""
    detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
    return error_response(request, exc.status_code, detail, dict(exc.headers or {}))


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "the request is not valid"


STORAGE_FULL = "the server's storage is full: nothing was changed; try again when there is room"
# PostgreSQL's disk_full condition; SQLite's SQLITE_FULL and its message.
_DISK_FULL_SQLSTATE = "53100"
_SQLITE_FULL = 13


def storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a full disk or a full database:
    a condition of the machine, answered 507 in the interface's format, not a defect."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(current, "sqlstate", None) == _DISK_FULL_SQLSTATE:
            return True
        if "database or disk is full" in str(current):
            return True
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
        current = (
            orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
        )
    return False


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AssetvaultError)
    async def _domain(request: Request, exc: AssetvaultError) -> Response:
        return error_response(request, exc.status, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 400, _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return http_error_response(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "the server failed to handle the request")


class StorageFullAnswer:
    """Answers a full disk or database with 507 in the interface's format. A middleware
    rather than the last-resort handler: that one re-raises after answering, which makes
    the server close the connection, and a client reusing it sees a reset instead of the
    next answer. A full disk is the machine's condition, not a defect: the connection
    stays usable and the same request succeeds once there is room."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            if started or not storage_full(exc):
                raise
            request = Request(scope)
            log.error("storage full on %s %s: %s", request.method, request.url.path, exc)
            answer = error_response(request, InsufficientStorage.status, STORAGE_FULL)
            await answer(scope, receive, send)
