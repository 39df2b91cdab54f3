"""Downloads with blobs on S3 (Ceph RGW): every binary route answers a GET with a 302 to a
presigned GET of the object, which the store answers with the bytes and the headers the
API would have sent (docs/deploy.md). Documents (HTML, SVG, XML) are still streamed by
the API under its CSP sandbox; HEAD, 304, 416 and If-Range are answered by the API;
without a valid token there is no redirect; ``blobs_redirect=false`` streams everything.

The client here does not follow redirects: each test follows the Location itself, with
a plain HTTP client and without the API's credentials, as a browser or AEM client does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from assetvault.adapters.blobs.s3 import S3Location
from assetvault.app import create_app
from assetvault.services import Services
from assetvault.tree.models import Node
from tests.api.adobe.conftest import adobe
from tests.api.test_binary import ROUTES, WEB, BinaryRoute
from tests.conftest import Tokens
from tests.factories import make_asset, one_chunk, outbox_events
from tests.s3 import S3Server

pytestmark = pytest.mark.s3

DATA = bytes(range(256)) * 400  # 102,400 bytes


@pytest.fixture
def blobs_backend() -> str:
    return "s3"


@pytest.fixture
async def direct(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI; redirects are seen, not followed."""
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url="http://assetvault.test") as c:
        yield c


@pytest.fixture
async def store_client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the object store: no credentials of the API's, nothing followed."""
    async with httpx.AsyncClient() as c:
        yield c


async def asset_with_web(services: Services, name: str, mime: str, data: bytes = DATA) -> Node:
    """An asset whose original, web rendition and kept version 1.0 are all ``data`` of
    type ``mime``."""
    node: Node = await make_asset(services, name, data, mime)
    blob = await services.blobs.put(one_chunk(data))
    await services.tree.store_original(
        "/content/dam", name, blob, mime_type=mime, user="writer", create_version=True
    )
    await services.changes.put_rendition(
        node.path, WEB, blob, mime, replace_only=False, create_only=True, user="writer"
    )
    return node


# Every binary route but the Author API's web rendition, which serves WebP or JPEG only.
ANY_TYPE = [r for r in ROUTES if r.route != "/adobe/assets/{assetId}"]
WEB_RENDITION = next(r for r in ROUTES if r.route == "/adobe/assets/{assetId}")


def auth(route: BinaryRoute, tokens: Tokens) -> dict[str, str]:
    headers = adobe(tokens.read) if route.adobe else {"Authorization": f"Bearer {tokens.read}"}
    return {**headers, "Accept": "*/*"}


def assert_redirect(r: httpx.Response, s3_server: S3Server, seconds: int = 300) -> str:
    assert r.status_code == 302, (r.request.url, r.text)
    location = r.headers["location"]
    where, endpoint = urlparse(location), urlparse(s3_server.endpoint)
    assert (where.scheme, where.netloc) == (endpoint.scheme, endpoint.netloc)
    assert parse_qs(where.query)["X-Amz-Expires"] == [str(seconds)]
    assert r.headers["cache-control"] == "private, no-store"
    assert r.content == b"" and "etag" not in r.headers
    return location


async def test_every_route_redirects_to_the_bytes_with_the_api_s_headers(
    direct: httpx.AsyncClient,
    store_client: httpx.AsyncClient,
    tokens: Tokens,
    services: Services,
    s3_server: S3Server,
) -> None:
    for mime, kind in (("image/png", "inline"), ("application/octet-stream", "attachment")):
        node = await asset_with_web(services, f"file-{kind}.bin", mime)
        for route in ANY_TYPE:
            r = await direct.get(route.url(node), headers=auth(route, tokens))
            location = assert_redirect(r, s3_server)
            got = await store_client.get(location)
            where = (route.url(node), mime)
            assert got.status_code == 200 and got.content == DATA, where
            assert got.headers["content-type"] == mime, where
            assert got.headers["content-length"] == str(len(DATA)), where
            assert got.headers["cache-control"] == "private, max-age=300", where
            disposition = got.headers.get("content-disposition")
            if route.named:
                assert disposition and disposition.startswith(f"{kind};"), where
                assert disposition.endswith(
                    f"filename*=UTF-8''{node.name}"
                ) or disposition.endswith("x.jpeg"), where
            elif kind == "attachment":
                assert disposition == "attachment", where
            else:
                assert disposition is None, where
    # The Author API's web rendition, asked for as JPEG.
    photo = await asset_with_web(services, "photo.jpg", "image/jpeg")
    r = await direct.get(
        WEB_RENDITION.url(photo), headers={**adobe(tokens.read), "Accept": "image/jpeg"}
    )
    got = await store_client.get(assert_redirect(r, s3_server))
    assert got.content == DATA and got.headers["content-type"] == "image/jpeg"


async def test_a_range_goes_through_the_redirect(
    direct: httpx.AsyncClient,
    store_client: httpx.AsyncClient,
    tokens: Tokens,
    services: Services,
    s3_server: S3Server,
) -> None:
    node = await asset_with_web(services, "data.bin", "application/octet-stream")
    url = f"/content/dam/{node.name}"
    for header, start, end in (
        ("bytes=100-199", 100, 199),
        ("bytes=-5", len(DATA) - 5, len(DATA) - 1),
    ):
        r = await direct.get(url, headers={**auth(ROUTES[0], tokens), "Range": header})
        # A client resends its Range to the Location (RFC 9110 keeps request headers).
        got = await store_client.get(assert_redirect(r, s3_server), headers={"Range": header})
        assert got.status_code == 206 and got.content == DATA[start : end + 1]
        assert got.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    location = assert_redirect(r, s3_server)
    # Signed for this object with these headers, and for GET only (HEAD is the API's).
    assert "response-cache-control=private" in location
    forged = location.replace("response-cache-control=private", "response-cache-control=public")
    assert (await store_client.get(forged)).status_code == 403
    assert (await store_client.head(location)).status_code == 403
    assert (await store_client.get(location)).status_code == 200
    # What the API can decide, it decides itself: no URL for an unsatisfiable range...
    r = await direct.get(url, headers={**auth(ROUTES[0], tokens), "Range": "bytes=999999-"})
    assert r.status_code == 416 and "location" not in r.headers
    # ...nor for a range under If-Range (the store would judge it by its own ETag).
    head = await direct.head(url, headers=auth(ROUTES[0], tokens))
    assert head.status_code == 200 and "location" not in head.headers
    etag = head.headers["etag"]
    r = await direct.get(
        url, headers={**auth(ROUTES[0], tokens), "Range": "bytes=0-9", "If-Range": etag}
    )
    assert r.status_code == 206 and r.content == DATA[:10]
    r = await direct.get(
        url, headers={**auth(ROUTES[0], tokens), "Range": "bytes=0-9", "If-Range": '"old"'}
    )
    assert r.status_code == 200 and r.content == DATA
    r = await direct.get(url, headers={**auth(ROUTES[0], tokens), "If-None-Match": etag})
    assert r.status_code == 304 and "location" not in r.headers


@pytest.mark.parametrize(
    "mime",
    ["text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/rss+xml"],
)
async def test_documents_are_streamed_under_the_sandbox(
    direct: httpx.AsyncClient, tokens: Tokens, services: Services, mime: str
) -> None:
    page = b"<html><script>alert(document.domain)</script></html>"
    node = await asset_with_web(services, "page.jpg", mime, page)
    for route in ANY_TYPE:
        r = await direct.get(route.url(node), headers=auth(route, tokens))
        where = (route.url(node), mime)
        assert r.status_code == 200 and r.content == page, where
        assert r.headers["content-security-policy"] == "sandbox", where
        assert r.headers["x-content-type-options"] == "nosniff", where
        assert r.headers["content-disposition"].startswith("attachment"), where


@pytest.mark.parametrize("settings_overrides", [{"blobs_redirect": False}])
async def test_redirects_off_streams_from_the_api(
    direct: httpx.AsyncClient, tokens: Tokens, services: Services, settings_overrides: Any
) -> None:
    node = await asset_with_web(services, "data.bin", "image/png")
    for route in ANY_TYPE:
        r = await direct.get(route.url(node), headers=auth(route, tokens))
        assert r.status_code == 200 and r.content == DATA, route.url(node)
        assert r.headers["x-content-type-options"] == "nosniff"
        r = await direct.get(route.url(node), headers={**auth(route, tokens), "Range": "bytes=1-2"})
        assert r.status_code == 206 and r.content == DATA[1:3]


async def test_no_redirect_without_a_valid_token(
    direct: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    node = await asset_with_web(services, "data.bin", "image/png")
    for route in ROUTES:
        for headers in ({}, {"Authorization": "Bearer av_not-a-token"}):
            if route.adobe:
                headers = {**headers, "X-Api-Key": adobe(tokens.read)["X-Api-Key"]}
            r = await direct.get(route.url(node), headers={**headers, "Accept": "*/*"})
            assert r.status_code == 401, (route.url(node), headers)
            assert "location" not in r.headers and "X-Amz" not in r.text


@pytest.mark.parametrize("settings_overrides", [{"blobs_redirect_seconds": 1}])
async def test_the_url_expires(
    direct: httpx.AsyncClient,
    store_client: httpx.AsyncClient,
    tokens: Tokens,
    services: Services,
    s3_server: S3Server,
    settings_overrides: Any,
) -> None:
    node = await asset_with_web(services, "data.bin", "image/png")
    r = await direct.get(f"/content/dam/{node.name}", headers=auth(ROUTES[0], tokens))
    location = assert_redirect(r, s3_server, seconds=1)
    await asyncio.sleep(2.5)
    assert (await store_client.get(location)).status_code == 403


async def test_a_redirect_is_a_download(
    direct: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    node = await asset_with_web(services, "data.bin", "image/png")
    before = len(await outbox_events(services))
    r = await direct.get(f"/content/dam/{node.name}", headers=auth(ROUTES[0], tokens))
    assert r.status_code == 302
    events = (await outbox_events(services))[before:]
    assert [e.type for e in events] == ["asset.downloaded"]


def documented_cors_rule() -> dict[str, Any]:
    """The bucket CORS configuration docs/deploy.md gives for the web UI."""
    text = (Path(__file__).parents[2] / "docs" / "deploy.md").read_text()
    block = text.split('```json\n{"CORSRules"', 1)[1].split("```", 1)[0]
    rule: dict[str, Any] = json.loads('{"CORSRules"' + block)
    return rule


async def test_the_documented_cors_rule_lets_the_ui_s_origin_follow_the_redirect(
    direct: httpx.AsyncClient,
    store_client: httpx.AsyncClient,
    tokens: Tokens,
    services: Services,
    s3_server: S3Server,
) -> None:
    """What a browser's fetch() does after the 302, short of a browser: the preflight
    (X-Api-Key is kept, Authorization dropped), then the GET with the UI's Origin."""
    S3Location.parse(s3_server.blobs_url(s3_server.bucket)).client().put_bucket_cors(
        Bucket=s3_server.bucket, CORSConfiguration=documented_cors_rule()
    )
    node = await asset_with_web(services, "data.bin", "image/png")
    r = await direct.get(f"/content/dam/{node.name}", headers=auth(ROUTES[0], tokens))
    location = assert_redirect(r, s3_server)
    origin = "https://dam.example.net"
    preflight = await store_client.options(
        location,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key,range",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == origin
    got = await store_client.get(
        location, headers={"Origin": origin, "X-Api-Key": "ui", "Range": "bytes=0-9"}
    )
    assert got.status_code == 206 and got.content == DATA[:10]
    assert got.headers["access-control-allow-origin"] == origin
    exposed = got.headers["access-control-expose-headers"].lower()
    assert "content-disposition" in exposed and "content-range" in exposed
    other = await store_client.options(
        location,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in other.headers
