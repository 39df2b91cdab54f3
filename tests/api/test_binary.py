"""Every route that serves a binary, found by enumerating the app's routes: nosniff on
every response, and only the passive types of the allow-list inline; HTML, SVG, XML,
scripts and unknown types are attachments under CSP sandbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from assetvault.app import create_app
from assetvault.services import Services
from assetvault.settings import INLINE_MEDIA_TYPES
from assetvault.tree.models import Node
from tests.api.adobe.conftest import adobe
from tests.api.test_body import app_routes
from tests.api.wire import assert_well_formed
from tests.conftest import Tokens
from tests.factories import make_asset, one_chunk

WEB = "cq5dam.web.1280.1280.jpeg"


@dataclass(frozen=True)
class BinaryRoute:
    route: str  # the route path as the app declares it
    url: Callable[[Node], str]
    adobe: bool = True
    named: bool = False  # the response names the file (Content-Disposition always sent)


ROUTES = [
    BinaryRoute("/content/{rest:path}", lambda a: f"/content/dam/{a.name}", adobe=False),
    BinaryRoute(
        "/api/assets{rest:path}", lambda a: f"/api/assets/{a.name}/renditions/original", adobe=False
    ),
    BinaryRoute(
        "/api/assets{rest:path}", lambda a: f"/api/assets/{a.name}/renditions/{WEB}", adobe=False
    ),
    BinaryRoute(
        "/adobe/assets/{assetId}/original/as/{seoName}",
        lambda a: f"/adobe/assets/{a.urn}/original/as/{a.name}",
        named=True,
    ),
    BinaryRoute(
        "/adobe/assets/{assetId}/renditions/{renditionName}/as/{seoName}",
        lambda a: f"/adobe/assets/{a.urn}/renditions/original/as/{a.name}?attachment=false",
        named=True,
    ),
    BinaryRoute(
        "/adobe/assets/{assetId}/renditions/{renditionName}/as/{seoName}",
        lambda a: f"/adobe/assets/{a.urn}/renditions/{WEB}/as/x.jpeg",
        named=True,
    ),
    BinaryRoute("/adobe/assets/{assetId}", lambda a: f"/adobe/assets/{a.urn}"),
    BinaryRoute(
        "/adobe/assets/{assetId}/versions/{versionName}/as/{seoName}",
        lambda a: f"/adobe/assets/{a.urn}/versions/1.0/as/{a.name}",
        named=True,
    ),
]

# GET routes that answer JSON only. A new GET route must be listed here or in ROUTES.
JSON_ONLY = {
    "/openapi.json",
    "/health",
    "/health/live",
    "/api.json",
    "/adobe/assets/jobs/{jobId}/status",
    "/adobe/assets/jobs/{jobId}/result",
    "/adobe/assets/{assetId}/renditions",
    "/adobe/assets/{assetId}/versions",
    "/adobe/assets/{assetId}/metadata",
    "/adobe/assets/{assetId}/relations",
    "/adobe/assets/{assetId}/relations/{relationType}",
    "/adobe/assets/{assetId}/relationTypes",
    "/adobe/events/registrations",
    "/adobe/events/registrations/{registrationId}",
    "/events/organizations/{org}/integrations/{credential}/{registrationId}",
    "/events/validate",
    # Server-made PEM files of public keys, never user content.
    "/prod/keys/{name}",
    "/adobe/assets/import/jobs/{importJobId}/status",
    "/adobe/assets/import/jobs/{importJobId}/result",
    "/adobe/import/jobs",
    "/adobe/import/jobs/{importJobId}/status",
    "/adobe/import/jobs/{importJobId}/result",
    "/adobe/import/sources",
    "/adobe/import/sources/{importSourceName}",
    "/adobe/import/sources/{importSourceName}/authentication/oauth",
    "/adobe/import/sources/{importSourceName}/items",
    # Adobe I/O Events' own paths (docs/events.md).
    "/events/organizations/{org}/integrations/{credential}/{registrationId}/validate",
    "/events/{consumerOrgId}/registrations",
    "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations",
    "/events/{consumerOrgId}/{projectId}/{workspaceId}/registrations/{registrationId}",
    # The admin API for test harnesses (docs/ci.md) and the share links' own listing.
    "/_assetvault/faults",
    "/_assetvault/faults/{rule_id}",
    "/_assetvault/journal",
    "/_assetvault/snapshots",
    "/share-links",
    "/s/{secret}/info{rest:path}",
}
# GET routes whose bytes come from elsewhere, checked by their own tests with the same
# rules (tests/api/adobe/test_import_sources.py): a source's thumbnail; the OAuth
# callback, a page of Assetvault's own; and the share links' pages and binaries.
ELSEWHERE = {
    "/adobe/import/sources/{importSourceName}/items/{itemId}/thumbnail",
    "/adobe/import/sources/authentication/callback",
    # A share link's page and the binaries it hands out, through the same download code
    # (tests/api/ui/test_share_links.py checks their headers and sandboxing).
    "/s/{secret}",
    "/s/{secret}/original{rest:path}",
    "/s/{secret}/preview{rest:path}",
    "/s/{secret}/thumbnail{rest:path}",
    # The ZIP of a selection through a media URL: the POST's ZIP and headers
    # (tests/api/ui/test_media_urls.py).
    "/adobe/assets/archive",
    # A snapshot as one tar file, for an admin token only, always an attachment
    # (tests/api/admin/test_snapshots.py).
    "/_assetvault/snapshots/{name}/archive",
}

ACTIVE = [
    "text/html",
    "TEXT/HTML; charset=utf-8",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/xml",
    "application/xml",
    "application/rss+xml",
    "application/javascript",
    "text/javascript",
    "application/ecmascript",
    "application/json",
    "text/css",
    "text/plain",
    "application/octet-stream",
    "application/x-shockwave-flash",
    "multipart/x-mixed-replace; boundary=x",
    "image/svg+xml; charset=utf-8",
    "video/mp4+html",
    "x/unknown",
]


# GET routes of the web UI and /docs: the project's own static pages, never users' files
# (their headers and CSP: tests/api/ui).
UI_PAGES = {"/", "/docs"}


async def test_every_get_route_is_covered(services: Services) -> None:
    app = create_app(services=services)
    gets = {
        route.path  # type: ignore[attr-defined]
        for route in app_routes(app.router.routes)
        if "GET" in (getattr(route, "methods", None) or ())
    }
    assert gets == JSON_ONLY | ELSEWHERE | UI_PAGES | {r.route for r in ROUTES}


async def asset_of_type(services: Services, name: str, mime: str) -> Node:
    """An asset whose original, web rendition and kept version 1.0 all claim ``mime``."""
    page = b"<html><script>alert(document.domain)</script></html>"
    node = await make_asset(services, name, page, mime)
    blob = await services.blobs.put(one_chunk(page))
    await services.tree.store_original(
        "/content/dam", name, blob, mime_type=mime, user="writer", create_version=True
    )
    await services.changes.put_rendition(
        node.path, WEB, blob, mime, replace_only=False, create_only=True, user="writer"
    )
    return node


async def fetch(
    client: httpx.AsyncClient, tokens: Tokens, route: BinaryRoute, node: Node, **headers: str
) -> list[httpx.Response]:
    """The route's answers to GET, a range, a conditional GET and (where the interface
    has it: not the Author API) HEAD."""
    auth = adobe(tokens.read) if route.adobe else {"Authorization": f"Bearer {tokens.read}"}
    auth["Accept"] = "*/*"
    url = route.url(node)
    first = await client.get(url, headers={**auth, **headers})
    assert first.status_code == 200, (url, first.text)
    answers = [
        first,
        await client.get(url, headers={**auth, "Range": "bytes=0-3"}),
        await client.get(url, headers={**auth, "If-None-Match": first.headers["etag"]}),
    ]
    if not route.adobe:
        answers.append(await client.head(url, headers=auth))
    return answers


async def test_active_types_are_sandboxed_attachments(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    for i, mime in enumerate(ACTIVE):
        node = await asset_of_type(services, f"x{i}.jpg", mime)
        for route in ROUTES:
            answers = await fetch(client, tokens, route, node)
            assert [r.status_code for r in answers][:3] == [200, 206, 304], route.url(node)
            assert all(r.status_code == 200 for r in answers[3:]), route.url(node)
            for r in answers:
                where = (route.url(node), r.status_code, mime)
                assert r.headers["x-content-type-options"] == "nosniff", where
                assert r.headers["content-security-policy"] == "sandbox", where
                assert r.headers["content-disposition"].startswith("attachment"), where
            assert answers[0].headers["content-type"] == mime  # kept, not guessed


async def test_passive_types_are_inline_and_nosniff(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    unnamed, named = ROUTES[0], ROUTES[3]
    for i, mime in enumerate(INLINE_MEDIA_TYPES):
        node = await asset_of_type(services, f"p{i}.jpg", mime)
        # Every route with one passive type; every passive type through two routes.
        for route in ROUTES if i == 0 else [unnamed, named]:
            for r in await fetch(client, tokens, route, node):
                where = (route.url(node), r.status_code, mime)
                assert r.headers["x-content-type-options"] == "nosniff", where
                assert "content-security-policy" not in r.headers, where
                disposition = r.headers.get("content-disposition")
                if route.named:
                    assert disposition and disposition.startswith("inline;"), where
                else:
                    assert disposition is None, where


async def test_the_allow_list_is_a_setting(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    node = await asset_of_type(services, "x.png", "image/png")
    route = ROUTES[0]
    (inline, *_) = await fetch(client, tokens, route, node)
    assert "content-disposition" not in inline.headers
    services.settings.inline_media_types = ["image/jpeg"]
    (stripped, *_) = await fetch(client, tokens, route, node)
    assert stripped.headers["content-disposition"] == "attachment"
    assert stripped.headers["content-security-policy"] == "sandbox"


# Stored types that are no media types: rows written before types were checked (or
# planted), which must never reach a header. Each fits the database's column.
PLANTED = [
    "x/y\r\nSet-Cookie: a=b",
    "image/jpeg\r\n",
    "image/jp\x00eg",
    "image/jp\x0beg",
    "image/jpég",
    "image/jpeg\u2028",
    "imagejpeg",
    "image/",
    "image/" + "a" * 200,
]


async def plant_type(services: Services, node: Node, mime: str) -> None:
    """Give the asset's original, every rendition and version ``mime``, behind the
    services."""
    from sqlalchemy import update

    from assetvault.adapters.database.tables import asset_versions, nodes, renditions

    async with services.db.write() as conn:
        await conn.execute(update(nodes).where(nodes.c.id == node.id).values(mime_type=mime))
        await conn.execute(
            update(asset_versions).where(asset_versions.c.node_id == node.id).values(mime_type=mime)
        )
        await conn.execute(
            update(renditions).where(renditions.c.node_id == node.id).values(mime_type=mime)
        )


async def test_stored_types_that_are_no_media_types_are_served_as_octet_streams(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    """Every binary route, GET (whole, ranged, conditional) and HEAD: a well-formed
    response whose Content-Type is application/octet-stream, an attachment."""
    postgres = services.db.url.startswith("postgresql")
    for i, mime in enumerate(PLANTED):
        if postgres and "\x00" in mime:
            continue  # PostgreSQL's text holds no NUL: such a row cannot exist there
        node = await asset_of_type(services, f"t{i}.jpg", "image/jpeg")
        await plant_type(services, node, mime)
        for route in ROUTES:
            answers = await fetch(client, tokens, route, node)
            auth = adobe(tokens.read) if route.adobe else {"Authorization": f"Bearer {tokens.read}"}
            answers.append(await client.head(route.url(node), headers=auth))
            for r in answers:
                where = (route.url(node), r.request.method, r.status_code, mime)
                assert r.status_code in (200, 206, 304, 405), where
                assert_well_formed(r)
                if r.status_code in (200, 206):  # (the Author API has no HEAD on these)
                    assert r.headers["content-type"] == "application/octet-stream", where
                    assert r.headers["content-disposition"].startswith("attachment"), where
