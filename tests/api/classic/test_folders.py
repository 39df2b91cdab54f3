"""POST /api/assets/<path>: folder creation in the forms AEM accepts."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import Tokens
from tests.factories import bearer, make_folder, snapshot

from assetvault.services import Services


async def test_create_folder_as_the_upload_client_does(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    r = await make_folder(client, tokens.write, "Dir 1")
    assert r.status_code == 201
    body = r.json()
    assert body["class"] == "core/response"
    assert body["properties"]["status.code"] == 201
    assert r.headers["location"].endswith("/api/assets/Dir%201.json") or r.headers[
        "location"
    ].endswith("/api/assets/Dir 1.json")
    node = await services.tree.get("/content/dam/Dir 1")
    assert node.kind == "folder" and node.title == "Dir 1" and node.created_by == "writer"
    nested = await make_folder(client, tokens.write, "Dir 1/Sub")
    assert nested.status_code == 201
    assert (await services.tree.get("/content/dam/Dir 1/Sub")).parent_id == node.id


async def test_existing_folder_is_409_and_unchanged(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    await make_folder(client, tokens.write, "twice")
    before = await snapshot(services)
    r = await make_folder(client, tokens.write, "twice")
    assert r.status_code == 409
    assert r.json()["properties"]["status.code"] == 409
    assert await snapshot(services) == before


async def test_missing_parent_is_a_500_in_siren_form(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    before = await snapshot(services)
    r = await make_folder(client, tokens.write, "no/such/parent")
    assert r.status_code == 500
    props = r.json()["properties"]
    assert props["status.code"] == 500 and "does not exist" in props["status.message"]
    assert await snapshot(services) == before


async def test_form_query_and_star_forms(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    r = await client.post(
        "/api/assets/*",
        data={"name": "fromform", "title": "From Form"},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 201, r.text
    assert (await services.tree.get("/content/dam/fromform")).title == "From Form"
    r = await client.post("/api/assets/fromquery?jcr:title=Q", headers=bearer(tokens.write))
    assert r.status_code == 201
    assert (await services.tree.get("/content/dam/fromquery")).title == "Q"
    r = await client.post(
        "/api/assets/fromform/*",
        json={"class": ["assets/folder"], "properties": {"name": "child", "dc:title": "C"}},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 201
    assert (await services.tree.get("/content/dam/fromform/child")).title == "C"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            "not valid JSON",
        ),
        ({"json": [1, 2]}, "Siren entity object"),
        ({"json": {"class": "asset"}}, "only folders"),
        ({"json": {"class": "assetFolder", "properties": []}}, "properties must be an object"),
    ],
)
async def test_bad_bodies_are_400(
    client: httpx.AsyncClient,
    tokens: Tokens,
    services: Services,
    kwargs: dict[str, object],
    message: str,
) -> None:
    before = await snapshot(services)
    kwargs = dict(kwargs)  # shared between the parametrized runs
    headers = {**bearer(tokens.write), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    r = await client.post("/api/assets/bad", headers=headers, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 400
    assert message in r.json()["properties"]["status.message"]
    assert await snapshot(services) == before


@pytest.mark.parametrize(
    "path", ["/api/assets/*", "/api/assets", "/api/assets/a%2Fb", "/api/assets/bad:name"]
)
async def test_bad_names_are_400(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, path: str
) -> None:
    before = await snapshot(services)
    r = await client.post(path, json={"class": "assetFolder"}, headers=bearer(tokens.write))
    assert r.status_code == 400, r.text
    assert await snapshot(services) == before


async def test_location_of_non_latin1_names_is_percent_encoded(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    r = await make_folder(client, tokens.write, "文件 ü")
    assert r.status_code == 201, r.text
    assert r.headers["location"] == (
        "http://assetvault.test/api/assets/%E6%96%87%E4%BB%B6%20%C3%BC.json"
    )
    assert (await services.tree.get("/content/dam/文件 ü")).kind == "folder"


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        # AEM 6.5's form create: POST <folder>/* with name and file (a small file).
        ("/api/assets/*", {"data": {"name": "a.jpg"}, "files": {"file": ("a.jpg", b"\xff" * 10)}}),
        # The file first, no name field.
        ("/api/assets/*", {"files": {"file": ("a.jpg", b"\xff" * 10, "image/jpeg")}}),
        # Larger than the form limit (4 MiB): refused before the file is read.
        ("/api/assets/*", {"files": {"file": ("a.bin", b"\0" * (5 * 1024 * 1024))}}),
        # AEM 6.5's raw create: POST <folder>/<file> with the bytes as the body.
        (
            "/api/assets/a.jpg",
            {"content": b"\xff\xd8\xff", "headers": {"Content-Type": "image/jpeg"}},
        ),
        ("/api/assets/a.bin", {"content": b"\0" * 100}),
        # A Siren body of an asset.
        ("/api/assets/a.jpg", {"json": {"class": "asset", "properties": {"name": "a.jpg"}}}),
    ],
)
async def test_an_asset_create_is_refused_naming_direct_binary_upload(
    client: httpx.AsyncClient,
    tokens: Tokens,
    services: Services,
    path: str,
    kwargs: dict[str, object],
) -> None:
    """Asset creation is not part of this API on AEM as a Cloud Service: whatever form
    the create takes, the answer says where assets go (and nothing is made, not even a
    folder of the file's name)."""
    before = await snapshot(services)
    kwargs = dict(kwargs)
    headers = {**bearer(tokens.write), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    r = await client.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 400, r.text
    message = r.json()["properties"]["status.message"]
    assert "direct binary upload" in message and "initiateUpload.json" in message
    assert await snapshot(services) == before


async def test_bodiless_posts_and_siren_typed_bodies_still_make_folders(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    bare = await client.post(
        "/api/assets/bare", headers={**bearer(tokens.write), "Content-Type": "image/jpeg"}
    )
    assert bare.status_code == 201, bare.text
    typed = await client.post(
        "/api/assets/typed",
        content=b'{"class": "assetFolder", "properties": {"jcr:title": "Typed"}}',
        headers={**bearer(tokens.write), "Content-Type": "application/vnd.siren+json"},
    )
    assert typed.status_code == 201, typed.text
    assert (await services.tree.get("/content/dam/typed")).title == "Typed"
