"""Every route of the app, found by walking its routers (not a list kept by hand), refuses
a request without credentials, and every write refuses a read token: a route added
later without its guard fails here. The few public routes are named with the reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
from starlette.routing import BaseRoute, Mount

from assetvault.app import create_app
from assetvault.services import Services
from tests.conftest import Tokens
from tests.factories import bearer, snapshot

# Routes that answer without a token, each for a reason a client relies on.
PUBLIC = {
    ("GET", "/health"): "the health check of load balancers",
    ("GET", "/health/live"): "the liveness check",
    ("GET", "/openapi.json"): "the API description, as /docs reads it",
    ("GET", "/docs"): "the API documentation page",
    ("GET", "/"): "the web UI's page; its data comes from the guarded API",
    ("GET", "/adobe/import/sources/authentication/callback"): (
        "the OAuth provider's redirect: its one-time state is the credential"
    ),
    ("GET", "/prod/keys/{name}"): "the public keys of event signatures",
    ("GET", "/events/validate"): "the webhook validation link Adobe I/O Events sends",
    ("GET", "/s/{secret}"): "a share link's page: static, its secret is the credential",
    ("GET", "/s/{secret}/info{rest:path}"): "a share link: its secret is the credential",
    ("GET", "/s/{secret}/original{rest:path}"): "a share link: its secret is the credential",
    ("GET", "/s/{secret}/thumbnail{rest:path}"): "a share link: its secret is the credential",
    ("GET", "/s/{secret}/preview{rest:path}"): "a share link: its secret is the credential",
}
# A read token may run these although they are POSTs: they change nothing.
# POSTs that only read: a search, a ZIP of originals (a download), and a media URL (a
# read-only grant for a binary the token may read already).
READ_POSTS = {"/adobe/assets/search", "/adobe/assets/archive", "/media-urls"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE", "COPY", "MOVE"}

ASSET = "urn:aaid:aem:0f8e3b4e-0000-4000-8000-000000000000"
_PLACEHOLDERS = {"assetId": ASSET, "relatedAssetId": ASSET, "number": "1", "upload_id": "0" * 32}


def _routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def _concrete(path: str, method: str) -> str:
    if path == "/api/assets{rest:path}":
        return "/api/assets/enumerated/a.jpg"
    if path == "/content/{rest:path}":
        if method == "POST":
            return "/content/dam/enumerated.initiateUpload.json"
        return "/content/dam/enumerated/a.jpg"
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: _PLACEHOLDERS.get(m.group(1), "x"), path)


def _operations() -> list[tuple[str, str]]:
    app = create_app(services=None)  # routes only: no request is served by this one
    found: list[tuple[str, str]] = []
    for route in _routes(app.routes):
        if isinstance(route, Mount):
            assert route.path == "/ui", f"a mount nobody checked: {route.path}"
            continue  # the UI's static files: scripts and styles, no data
        for method in sorted(getattr(route, "methods", None) or ()):
            if method == "HEAD" and "GET" in (getattr(route, "methods", None) or ()):
                continue  # the GET's twin
            found.append((method, route.path))  # type: ignore[attr-defined]
    return found


OPERATIONS = _operations()
GUARDED = [op for op in OPERATIONS if op not in PUBLIC]
WRITES = [
    (method, path)
    for method, path in GUARDED
    if method in WRITE_METHODS
    and path not in READ_POSTS
    and path != "/binary-upload/{upload_id}/{number}"
]


def test_the_walk_finds_every_interface() -> None:
    prefixes = {path.split("/")[1] for _, path in OPERATIONS}
    assert {"adobe", "api", "content", "events", "binary-upload"} <= prefixes
    assert len(OPERATIONS) > 50
    for op in PUBLIC:
        assert op in OPERATIONS, f"{op} is named public but is no route any more"


def _body(method: str) -> dict[str, Any]:
    return {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}


async def test_without_credentials_every_route_refuses(
    client: httpx.AsyncClient, services: Services
) -> None:
    before = await snapshot(services)
    wrong = []
    for method, path in GUARDED:
        r = await client.request(
            method, _concrete(path, method), headers={"X-Api-Key": "test"}, **_body(method)
        )
        # The part PUT's credential is its signed URI: an unsigned one is forbidden.
        expected = {401, 403} if path.startswith("/binary-upload/") else {401}
        if r.status_code not in expected:
            wrong.append((method, path, r.status_code, r.text[:200]))
    assert wrong == []
    assert await snapshot(services) == before


async def test_a_read_token_cannot_write_on_any_route(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    before = await snapshot(services)
    wrong = []
    for method, path in WRITES:
        r = await client.request(
            method,
            _concrete(path, method),
            headers={**bearer(tokens.read), "X-Api-Key": "test"},
            **_body(method),
        )
        if r.status_code != 403:
            wrong.append((method, path, r.status_code, r.text[:200]))
    assert wrong == []
    assert await snapshot(services) == before
