"""Lenient by default (docs/ci.md): unknown headers, query parameters and API-version
markers never fail a request on any interface; in strict mode (``serve --strict``) an
unknown query parameter or API-version marker is a 400 in the interface's own format,
and unknown headers are still ignored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from assetvault.services import Services
from tests import media
from tests.api.adobe.conftest import adobe
from tests.api.events.conftest import register
from tests.conftest import Tokens
from tests.factories import bearer, make_asset

UNKNOWN_HEADERS = {
    "X-Some-Gateway-Trace": "abc",
    "X-Request-Id": "r-1",
    "X-Api-Version": "2099-01-01",
    "Prefer": "wait=0",
}
UNKNOWN_QUERY = {"clientVersion": "9.9", "_": "1700000000"}


@pytest.fixture(params=[False, True], ids=["lenient", "strict"])
def strict(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def settings_overrides(strict: bool) -> dict[str, Any]:
    return {"strict": strict}


Call = Callable[[dict[str, str], dict[str, str]], Awaitable[httpx.Response]]


@pytest.fixture
async def asset_id(services: Services, tmp_path: Path) -> str:
    data = media.jpeg_with_metadata(tmp_path / "photo.jpg", 60, 40).read_bytes()
    node = await make_asset(services, "photo.jpg", data, "image/jpeg")
    return node.urn


@pytest.fixture
async def operations(
    client: httpx.AsyncClient, tokens: Tokens, asset_id: str
) -> dict[str, tuple[Call, int, str]]:
    """A sample of operations of each interface: (call, success status, error format)."""
    journal = await register(client, tokens.admin, types=["aem.assets.asset.deleted"])
    assert journal.status_code == 201, journal.text
    events_url = str(journal.json()["_links"]["rel:events"]["href"]).removeprefix(
        "http://assetvault.test"
    )

    def call(method: str, url: str, token: str, own: dict[str, str], **kw: Any) -> Call:
        async def run(headers: dict[str, str], query: dict[str, str]) -> httpx.Response:
            params = {**own, **query}
            return await client.request(
                method, url, params=params, headers={**adobe(token), **headers}, **kw
            )

        return run

    form = {"fileName": "new.jpg", "fileSize": "10"}
    return {
        # The Author API's hottest route (answered before the router) and another.
        "author metadata": (
            call("GET", f"/adobe/assets/{asset_id}/metadata", tokens.read, {}),
            200,
            "problem",
        ),
        "author search": (
            call(
                "POST",
                "/adobe/assets/search",
                tokens.read,
                {"allowUnsafeSearch": "true"},
                json={"query": [{"match": {"text": "*"}}]},
            ),
            200,
            "problem",
        ),
        "classic listing": (
            call("GET", "/api/assets.json", tokens.read, {"limit": "5"}),
            200,
            "siren",
        ),
        "direct binary upload": (
            call("POST", "/content/dam.initiateUpload.json", tokens.write, {}, data=form),
            201,
            "siren",
        ),
        "import jobs": (
            call("GET", "/adobe/import/jobs", tokens.read, {"limit": "10"}),
            200,
            "problem",
        ),
        "events journal": (call("GET", events_url, tokens.read, {}), 204, "problem"),
    }


def assert_format(r: httpx.Response, kind: str) -> None:
    if kind == "siren":
        body = r.json()
        assert body["class"] == "core/response"
        assert body["properties"]["status.code"] == 400
        assert "strict" in body["properties"]["status.message"]
    else:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 400
        assert "strict" in r.json()["detail"]


def journal_headers(headers: dict[str, str], name: str) -> dict[str, str]:
    # The journal asks for the organization as AEM's does.
    return (
        {**headers, "x-ims-org-id": "ASSETVAULT@AdobeOrg"} if name == "events journal" else headers
    )


async def test_unknown_headers_never_fail(
    operations: dict[str, tuple[Call, int, str]], strict: bool
) -> None:
    for name, (run, ok, _) in operations.items():
        r = await run(
            journal_headers({**UNKNOWN_HEADERS, "X-Adobe-Accept-Experimental": "1"}, name), {}
        )
        assert r.status_code == ok, (name, r.text)


async def test_unknown_query_parameters(
    operations: dict[str, tuple[Call, int, str]], strict: bool
) -> None:
    for name, (run, ok, kind) in operations.items():
        r = await run(journal_headers({}, name), UNKNOWN_QUERY)
        if strict:
            assert r.status_code == 400, (name, r.text)
            assert_format(r, kind)
            assert "clientVersion" in r.text
        else:
            assert r.status_code == ok, (name, r.text)


async def test_unknown_api_version_markers(
    operations: dict[str, tuple[Call, int, str]], strict: bool
) -> None:
    for name, (run, ok, kind) in operations.items():
        r = await run(journal_headers({"X-Adobe-Accept-Experimental": "2"}, name), {})
        if strict:
            assert r.status_code == 400, (name, r.text)
            assert_format(r, kind)
        else:
            assert r.status_code == ok, (name, r.text)


async def test_a_classic_folder_create_takes_its_properties_as_query_parameters(
    client: httpx.AsyncClient, tokens: Tokens, strict: bool
) -> None:
    r = await client.post(
        "/api/assets/made",
        params={"jcr:title": "Made", "anything": "kept"},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 201, r.text
