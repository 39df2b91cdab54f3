"""The web UI at ``/`` and the API documentation at ``/docs``: static files only.

These pages hold no data and need no token: a browser cannot send an Authorization header
when it navigates. Everything they show comes from the public APIs, called from the page
with the token the person signed in with, so the server's auth rules stay as they are.
Every script, style and font ships with the project (the libraries are copied from npm
packages into ``static/vendor`` by scripts/bootstrap.sh); the Content-Security-Policy
forbids anything else, except the object store's own address when binaries are
fetched from it (presigned redirects) and parts are sent straight to it (direct upload).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import cache
from os import PathLike
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from assetvault.api.deps import services
from assetvault.errors import NotFound

STATIC = Path(__file__).with_name("static")
VENDOR = STATIC / "vendor"

# Bare module names of the app's imports, resolved to the vendored builds.
IMPORT_MAP = json.dumps(
    {
        "imports": {
            "preact": "/ui/vendor/preact.mjs",
            "preact/hooks": "/ui/vendor/hooks.mjs",
            "htm": "/ui/vendor/htm.mjs",
        }
    }
)
_MAP_HASH = base64.b64encode(hashlib.sha256(IMPORT_MAP.encode()).digest()).decode()


def _csp(script_extra: str = "", store: str = "") -> str:
    """``store``: the object store's origin, which previews, videos and downloads are
    redirected to and upload parts are sent to (S3); empty when the API serves them."""
    elsewhere = f" {store}" if store else ""
    return (
        "default-src 'self'; "
        f"script-src 'self'{script_extra}; "
        # Swagger UI sets inline styles on its elements.
        "style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: blob:{elsewhere}; media-src 'self' blob:{elsewhere}; "
        f"connect-src 'self'{elsewhere}; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


HEADERS = {
    "Content-Security-Policy": _csp(),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
PAGE_SCRIPTS = f" 'sha256-{_MAP_HASH}'"  # the page's inline import map
PAGE_HEADERS = {**HEADERS, "Content-Security-Policy": _csp(PAGE_SCRIPTS)}


class UiFiles(StaticFiles):
    """The static files, with the UI's headers on every answer."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(HEADERS)
        return response


router = APIRouter()


@cache
def _html(name: str) -> str:
    """A page's text, read once per process (it ships with the package)."""
    return (STATIC / name).read_text(encoding="utf-8").replace("{{IMPORT_MAP}}", IMPORT_MAP)


_store_origins: dict[int, str] = {}  # per service container: the store's origin, or ""


async def store_origin(request: Request) -> str:
    """The origin of the URLs the blob store hands browsers (a presigned GET's scheme,
    host and port: path-style endpoint or virtual-host bucket alike), asked once."""
    svc = services(request)
    found = _store_origins.get(id(svc))
    if found is None:
        url = await svc.blobs.download_url(
            "0" * 64,
            expires_seconds=60,
            content_type="application/octet-stream",
            content_disposition=None,
            cache_control="no-store",
        )
        parts = urlsplit(url) if url else None
        found = f"{parts.scheme}://{parts.netloc}" if parts and parts.netloc else ""
        _store_origins[id(svc)] = found
    return found


async def page(request: Request, name: str) -> HTMLResponse:
    if not VENDOR.is_dir():
        raise NotFound("the UI's libraries are not installed: run make install")
    store = await store_origin(request)
    headers = PAGE_HEADERS
    if store:
        headers = {**PAGE_HEADERS, "Content-Security-Policy": _csp(PAGE_SCRIPTS, store)}
    return HTMLResponse(_html(name), headers=headers)


@router.get("/", include_in_schema=False)
async def index(request: Request) -> HTMLResponse:
    return await page(request, "index.html")


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    return await page(request, "docs.html")


def static_files() -> UiFiles:
    return UiFiles(directory=STATIC)
