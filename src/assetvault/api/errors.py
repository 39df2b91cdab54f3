"""Error bodies in each interface's own format.

Under /adobe: application/problem+json (RFC 9457). Under /api and /content: the Siren
``core/response`` body AEM's Sling servlets answer with. Everything else: problem+json.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from assetvault.errors import AssetvaultError

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


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AssetvaultError)
    async def _domain(request: Request, exc: AssetvaultError) -> Response:
        return error_response(request, exc.status, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 400, _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
        return error_response(request, exc.status_code, detail, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "the server failed to handle the request")
