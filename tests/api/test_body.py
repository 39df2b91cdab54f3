"""Every route that reads a body, found by enumerating the app's routes: hostile JSON
(deep nesting, non-finite numbers, lone surrogates) is a 400 naming the place, a body
over the limit is a 413, both in the interface's own error format, and nothing changes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from starlette.routing import BaseRoute

from assetvault.app import create_app
from assetvault.services import Services
from assetvault.tree.models import Node
from tests.api.adobe.conftest import adobe
from tests.conftest import Tokens
from tests.factories import bearer, initiate, make_asset, snapshot

WRITE_METHODS = {"POST", "PUT", "PATCH"}


@dataclass(frozen=True)
class JsonCase:
    """One way a route takes JSON text: ``wrap`` places a value's text in a body whose
    own nesting is ``base`` levels deep at that place, a JSON pointer to it."""

    name: str
    route: tuple[str, str]  # (method, route path) as the app declares it
    method: str
    url: Callable[[Node], str]
    wrap: Callable[[bytes], bytes]
    base: int
    pointer: str
    ctype: str = "application/json"
    adobe: bool = False
    form_field: str | None = None  # the JSON is the value of this form field
    multipart_field: str | None = None  # ... or of this part of a multipart body
    admin: bool = False  # the route needs an admin token


CASES = [
    JsonCase(
        "patch metadata",
        ("PATCH", "/adobe/assets/{assetId}/metadata"),
        "PATCH",
        lambda a: f"/adobe/assets/{a.urn}/metadata",
        lambda v: b'[{"op": "add", "path": "/x", "value": ' + v + b"}]",
        2,
        "/0/value",
        ctype="application/json-patch+json",
        adobe=True,
    ),
    JsonCase(
        "relations",
        ("POST", "/adobe/assets/{assetId}/relations"),
        "POST",
        lambda a: f"/adobe/assets/{a.urn}/relations",
        lambda v: b'{"items": [{"relationType": "derived", "relatedAssetId": ' + v + b"}]}",
        3,
        "/items/0/relatedAssetId",
        adobe=True,
    ),
    JsonCase(
        "search",
        ("POST", "/adobe/assets/search"),
        "POST",
        lambda a: "/adobe/assets/search?allowUnsafeSearch=true",
        lambda v: b'{"query": [{"match": {"text": ' + v + b"}}]}",
        4,
        "/query/0/match/text",
        adobe=True,
    ),
    JsonCase(
        "search request part",
        ("POST", "/adobe/assets/search"),
        "POST",
        lambda a: "/adobe/assets/search?allowUnsafeSearch=true",
        lambda v: b'{"query": [{"match": {"text": ' + v + b"}}]}",
        4,
        "/query/0/match/text",
        ctype="multipart/form-data",
        adobe=True,
        multipart_field="request",
    ),
    JsonCase(
        "publish",
        ("POST", "/adobe/assets/publish"),
        "POST",
        lambda a: "/adobe/assets/publish",
        lambda v: b'{"assets": [' + v + b'], "target": "AEM_PUBLISH"}',
        2,
        "/assets/0",
        adobe=True,
    ),
    JsonCase(
        "unpublish",
        ("POST", "/adobe/assets/unpublish"),
        "POST",
        lambda a: "/adobe/assets/unpublish",
        lambda v: b'{"assets": [' + v + b"]}",
        2,
        "/assets/0",
        adobe=True,
    ),
    JsonCase(
        "event registration",
        ("POST", "/adobe/events/registrations"),
        "POST",
        lambda a: "/adobe/events/registrations",
        lambda v: b'{"name": "n", "delivery_type": "journal", "events_of_interest": [' + v + b"]}",
        2,
        "/events_of_interest/0",
        adobe=True,
        admin=True,
    ),
    JsonCase(
        "event registration update",
        ("PUT", "/adobe/events/registrations/{registrationId}"),
        "PUT",
        lambda a: "/adobe/events/registrations/0b5c4f34-3b0e-4a39-9d0e-1d2a3c4b5e6f",
        lambda v: b'{"name": "n", "delivery_type": "journal", "events_of_interest": [' + v + b"]}",
        2,
        "/events_of_interest/0",
        adobe=True,
        admin=True,
    ),
    JsonCase(
        "event registration patch",
        ("PATCH", "/adobe/events/registrations/{registrationId}"),
        "PATCH",
        lambda a: "/adobe/events/registrations/0b5c4f34-3b0e-4a39-9d0e-1d2a3c4b5e6f",
        lambda v: b'[{"op": "add", "path": "/name", "value": ' + v + b"}]",
        2,
        "/0/value",
        ctype="application/json-patch+json",
        adobe=True,
        admin=True,
    ),
    JsonCase(
        "event registration at Adobe's path",
        ("POST", "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations"),
        "POST",
        lambda a: "/events/o/p/w/registrations",
        lambda v: b'{"name": "n", "delivery_type": "journal", "events_of_interest": [' + v + b"]}",
        2,
        "/events_of_interest/0",
        adobe=True,
        admin=True,
    ),
    JsonCase(
        "event registration update at Adobe's path",
        ("PUT", "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations/{registrationId}"),
        "PUT",
        lambda a: "/events/o/p/w/registrations/0b5c4f34-3b0e-4a39-9d0e-1d2a3c4b5e6f",
        lambda v: b'{"name": "n", "delivery_type": "journal", "events_of_interest": [' + v + b"]}",
        2,
        "/events_of_interest/0",
        adobe=True,
        admin=True,
    ),
    JsonCase(
        "event registration patch at Adobe's path",
        (
            "PATCH",
            "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations/{registrationId}",
        ),
        "PATCH",
        lambda a: "/events/o/p/w/registrations/0b5c4f34-3b0e-4a39-9d0e-1d2a3c4b5e6f",
        lambda v: b'[{"op": "add", "path": "/name", "value": ' + v + b"}]",
        2,
        "/0/value",
        ctype="application/json-patch+json",
        adobe=True,
        admin=True,
    ),
    JsonCase(
        "share link",
        ("POST", "/share-links"),
        "POST",
        lambda a: "/share-links",
        lambda v: b'{"target": ' + v + b"}",
        1,
        "/target",
    ),
    JsonCase(
        "media URL",
        ("POST", "/media-urls"),
        "POST",
        lambda a: "/media-urls",
        lambda v: b'{"path": ' + v + b"}",
        1,
        "/path",
    ),
    JsonCase(
        "ZIP of many originals",
        ("POST", "/adobe/assets/archive"),
        "POST",
        lambda a: "/adobe/assets/archive",
        lambda v: b'{"paths": [' + v + b"]}",
        2,
        "/paths/0",
    ),
    JsonCase(
        "classic metadata",
        ("PUT", "/api/assets{rest:path}"),
        "PUT",
        lambda a: "/api/assets/x.jpg",
        lambda v: b'{"class": "asset", "properties": {"x": ' + v + b"}}",
        2,
        "/properties/x",
    ),
    JsonCase(
        "classic folder",
        ("POST", "/api/assets{rest:path}"),
        "POST",
        lambda a: "/api/assets/made",
        lambda v: b'{"class": "assetFolder", "properties": {"x": ' + v + b"}}",
        2,
        "/properties/x",
    ),
    JsonCase(
        "classic comment annotation",
        ("POST", "/api/assets{rest:path}"),
        "POST",
        lambda a: "/api/assets/x.jpg/comments/*",
        lambda v: b'{"x": ' + v + b"}",
        1,
        "/x",
        ctype="application/x-www-form-urlencoded",
        form_field="annotationData",
    ),
]

CASES += [
    JsonCase(
        f"import {name}",
        ("POST", route),
        "POST",
        lambda a, url=url: url,  # type: ignore[misc]
        lambda v: b'{"folder": "/content/dam", "assetMetadata": {"x": ' + v + b"}}",
        2,
        "/assetMetadata/x",
        adobe=True,
    )
    for name, route, url in [
        ("fromUrl", "/adobe/assets/import/fromUrl", "/adobe/assets/import/fromUrl"),
        ("from-url", "/adobe/import/from-url", "/adobe/import/from-url"),
        ("source", "/adobe/import/sources", "/adobe/import/sources"),
        (
            "source start",
            "/adobe/import/sources/{importSourceName}/start",
            "/adobe/import/sources/s/start",
        ),
        (
            "item start",
            "/adobe/import/sources/{importSourceName}/{itemId}/start",
            "/adobe/import/sources/s/id:1/start",
        ),
    ]
]

CASES += [
    JsonCase(
        f"admin {name}",
        ("POST", route),
        "POST",
        lambda a, url=url: url,  # type: ignore[misc]
        lambda v, field=field: b'{"' + field.encode() + b'": ' + v + b"}",  # type: ignore[misc]
        1,
        f"/{field}",
        admin=True,
    )
    for name, route, url, field in [
        ("snapshot save", "/_assetvault/snapshots", "/_assetvault/snapshots", "name"),
        (
            "snapshot restore",
            "/_assetvault/snapshots/{name}/restore",
            "/_assetvault/snapshots/x/restore",
            "file",
        ),
        ("reset", "/_assetvault/reset", "/_assetvault/reset", "keepTokens"),
        ("fault rule", "/_assetvault/faults", "/_assetvault/faults", "path"),
    ]
]

# Write routes that take no JSON at all: direct-upload forms and raw part bytes. A new
# write route must be added to CASES or here, or test_every_write_route_is_covered fails.
NOT_JSON = {
    ("POST", "/content/{rest:path}"),
    ("PUT", "/binary-upload/{upload_id}/{number}"),
    # A version restore takes no body: the version is named by its path.
    ("POST", "/adobe/assets/{assetId}/versions/{versionName}/restore"),
    # A snapshot file (a tar) sent to the admin API; tests/api/admin/test_snapshots.py.
    ("PUT", "/_assetvault/snapshots/{name}/archive"),
}


def app_routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    found: list[BaseRoute] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        found.extend(app_routes(inner.routes) if inner is not None else [route])
    return found


def write_routes(services: Services) -> set[tuple[str, str]]:
    app = create_app(services=services)
    return {
        (method, route.path)  # type: ignore[attr-defined]
        for route in app_routes(app.router.routes)
        for method in getattr(route, "methods", None) or ()
        if method in WRITE_METHODS
    }


async def test_every_write_route_is_covered(services: Services) -> None:
    covered = {c.route for c in CASES} | NOT_JSON
    assert write_routes(services) == covered


@pytest.fixture
async def asset(services: Services) -> Node:
    return await make_asset(services, "x.jpg", b"\xff\xd8\xff not much of a jpeg", "image/jpeg")


async def send(
    client: httpx.AsyncClient, tokens: Tokens, case: JsonCase, asset: Node, text: bytes
) -> httpx.Response:
    token = tokens.admin if case.admin else tokens.write
    headers = adobe(token) if case.adobe else bearer(token)
    headers["If-Match"] = "*"
    url = case.url(asset)
    body = case.wrap(text)
    if case.form_field:
        data = httpx.QueryParams({"message": "hi", case.form_field: body.decode("latin-1")})
        content = str(data).encode()
        return await client.post(
            url, content=content, headers={**headers, "Content-Type": case.ctype}
        )
    if case.multipart_field:
        files = {"file": ("q.pdf", b"%PDF-1.4 not parsed before the request part", "a/pdf")}
        form = {case.multipart_field: body.decode("utf-8", "surrogatepass")}
        return await client.request(case.method, url, files=files, data=form, headers=headers)
    headers["Content-Type"] = case.ctype
    return await client.request(case.method, url, content=body, headers=headers)


def refusal(r: httpx.Response, status: int) -> str:
    """The error message, checked to be in the route's own format."""
    assert r.status_code == status, r.text
    body = r.json()
    if r.url.path.startswith(("/adobe", "/_assetvault", "/events", "/share-links", "/media-urls")):
        assert r.headers["content-type"] == "application/problem+json"
        assert body["status"] == status
        return str(body["detail"])
    assert body["class"] == "core/response", body
    assert body["properties"]["status.code"] == status
    return str(body["properties"]["status.message"])


def nested(n: int) -> bytes:
    return b"[" * n + b"]" * n


async def test_nesting_is_bounded_before_parsing(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, asset: Node
) -> None:
    limit = services.settings.json_max_depth
    for case in CASES:
        depths = sorted({0, 1, limit - case.base, limit - case.base + 1, 900, 5_000, 100_000})
        for n in depths:
            before = await snapshot(services)
            r = await send(client, tokens, case, asset, nested(n) if n else b"1")
            if case.base + n > limit:
                detail = refusal(r, 400)
                assert f"nests {case.base + n} levels deep" in detail, (case.name, n, detail)
                assert await snapshot(services) == before, (case.name, n)
            else:  # within the bound: the route's own answer, never a depth refusal
                assert r.status_code < 500, (case.name, n, r.text)
                assert "levels deep" not in r.text, (case.name, n)


UNSTORABLE = [  # (the value's text, where below the case's pointer the fault is)
    (b"1e999", ""),
    (b"-1e999", ""),
    (b"1E400", ""),
    (b"NaN", ""),
    (b"Infinity", ""),
    (b"-Infinity", ""),
    (b"[0, 2e308]", "/1"),
    (b'"\\ud800"', ""),
    (b'"a\\udfffb"', ""),
    (b'{"ok": "\\udc00\\ud800"}', "/ok"),
    (b'{"\\ud800": 1}', "/\\ud800"),
]


async def test_unstorable_values_are_refused_by_name(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, asset: Node
) -> None:
    for case in CASES:
        for literal, below in UNSTORABLE:
            before = await snapshot(services)
            r = await send(client, tokens, case, asset, literal)
            detail = refusal(r, 400)
            assert f"{case.pointer}{below}:" in detail, (case.name, literal, detail)
            assert await snapshot(services) == before, (case.name, literal)


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 65536):
        yield data[i : i + 65536]


async def test_bodies_over_the_limit_are_413(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, asset: Node
) -> None:
    limit = services.settings.json_max_bytes
    for case in CASES:
        if case.form_field or case.multipart_field:
            continue  # their bodies are forms: the form limit below
        filler = b'"' + b"a" * (limit - len(case.wrap(b'""')) + 1) + b'"'
        body = case.wrap(filler)
        assert len(body) == limit + 1
        token = tokens.admin if case.admin else tokens.write
        headers = adobe(token) if case.adobe else bearer(token)
        headers.update({"Content-Type": case.ctype, "If-Match": "*"})
        before = await snapshot(services)
        for content in (body, _chunks(body)):  # by Content-Length, and while streaming
            r = await client.request(case.method, case.url(asset), content=content, headers=headers)
            assert "larger than the limit" in refusal(r, 413), case.name
        assert await snapshot(services) == before, case.name
        r = await client.request(case.method, case.url(asset), content=body[1:], headers=headers)
        assert r.status_code != 413, case.name  # at the limit: read, and answered on its merits

    big_name = "n" * (services.settings.form_max_bytes // 2)
    r = await initiate(client, tokens.write, "/content/dam", [(big_name, 1), (big_name, 1)])
    assert "larger than the limit" in refusal(r, 413)
