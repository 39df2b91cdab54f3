"""GET /adobe/assets/{assetId}/versions, an Assetvault extension (docs/author-api.md)."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from assetvault.metadata.service import iso
from assetvault.services import Services
from tests.api.adobe.conftest import adobe
from tests.api.adobe.test_assets import is_problem
from tests.conftest import Tokens
from tests.factories import bearer, make_asset, snapshot, upload

# Fixed, so that every pytest-xdist worker collects the same test ids.
UNKNOWN = "urn:aaid:aem:6f1c0e52-3b8a-4d2e-9c47-5a0b8e1d2f93"


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


async def versions(client: httpx.AsyncClient, token: str, asset_id: str) -> httpx.Response:
    return await client.get(f"/adobe/assets/{asset_id}/versions", headers=adobe(token))


async def test_an_asset_never_replaced_lists_only_its_current_original(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    node = await make_asset(services, "a.txt", b"alpha", "text/plain")
    r = await versions(client, tokens.read, node.urn)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    [current] = r.json()["items"]
    assert r.json()["assetId"] == node.urn
    assert current == {
        "name": "current",
        "label": None,
        "comment": None,
        "size": 5,
        "sha1": sha1(b"alpha"),
        "mimeType": "text/plain",
        "created": current["created"],
        "createdBy": "writer",
        "current": True,
    }
    assert current["created"] == iso(node.modified_at)


async def test_two_replacements_with_versions_kept_list_oldest_first(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    first = await upload(client, tokens.write, "/content/dam", "doc.txt", b"one")
    asset_id = first.json()["assetId"]
    for data, label, comment in ((b"two!", "v1", "first draft"), (b"three", None, None)):
        fields = {"createVersion": "true"}
        if label:
            fields |= {"versionLabel": label, "versionComment": comment or ""}
        r = await upload(client, tokens.write, "/content/dam", "doc.txt", data, **fields)
        assert r.status_code == 200, r.text
        assert r.json()["assetId"] == asset_id
    # A replacement that keeps no version adds none.
    r = await upload(client, tokens.write, "/content/dam", "doc.txt", b"fourth")
    assert r.json()["assetId"] == asset_id

    r = await versions(client, tokens.read, asset_id)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["name"], i["current"]) for i in items] == [
        ("1.0", False),
        ("1.1", False),
        ("current", True),
    ]
    old, middle, current = items
    assert (old["label"], old["comment"], old["size"], old["sha1"]) == (
        "v1",
        "first draft",
        3,
        sha1(b"one"),
    )
    assert (middle["label"], middle["comment"], middle["size"], middle["sha1"]) == (
        None,
        None,
        4,
        sha1(b"two!"),
    )
    assert (current["size"], current["sha1"]) == (6, sha1(b"fourth"))
    assert {i["mimeType"] for i in items} == {"text/plain"}
    assert old["createdBy"] == middle["createdBy"] == current["createdBy"]
    assert old["created"] <= middle["created"] <= current["created"]
    got = await client.get("/content/dam/doc.txt", headers=bearer(tokens.read))
    assert got.content == b"fourth"


async def test_if_none_match_answers_304_until_a_new_version(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    asset_id = (await upload(client, tokens.write, "/content/dam", "e.txt", b"e1")).json()[
        "assetId"
    ]
    first = await versions(client, tokens.read, asset_id)
    etag = first.headers["etag"]
    url = f"/adobe/assets/{asset_id}/versions"
    again = await client.get(url, headers={**adobe(tokens.read), "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    await upload(client, tokens.write, "/content/dam", "e.txt", b"e2", createVersion="true")
    after = await client.get(url, headers={**adobe(tokens.read), "If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert [i["name"] for i in after.json()["items"]] == ["1.0", "current"]


@pytest.mark.parametrize(
    ("asset_id", "status"),
    [("not-a-urn", 400), ("urn:aaid:aem:not-a-uuid", 400), (UNKNOWN, 404)],
)
async def test_bad_and_unknown_ids(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, asset_id: str, status: int
) -> None:
    before = await snapshot(services)
    assert is_problem(await versions(client, tokens.read, asset_id), status)
    assert await snapshot(services) == before


async def test_a_folder_has_no_versions(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    root = await services.tree.get("/content/dam")
    assert is_problem(await versions(client, tokens.read, root.urn), 404)


async def test_auth_and_negotiation(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    node = await make_asset(services, "s.txt", b"secret", "text/plain")
    url = f"/adobe/assets/{node.urn}/versions"
    assert is_problem(await client.get(url), 401)
    bad = await client.get(url, headers={**adobe(tokens.read), "Authorization": "Bearer nope"})
    assert is_problem(bad, 401)
    no_key = await client.get(url, headers={"Authorization": f"Bearer {tokens.read}"})
    assert is_problem(no_key, 403)
    r = await client.get(url, headers={**adobe(tokens.read), "Accept": "text/html"})
    assert is_problem(r, 406)
