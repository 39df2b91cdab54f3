"""Share links (/share-links, /s/{secret}): made by a writer, used without a token,
refused after expiry and revocation, and never a way out of what they share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from assetvault.adapters.database.tables import share_links
from assetvault.app import create_app
from assetvault.services import Services, build_services
from tests.api.rawasgi import raw_request
from tests.conftest import Tokens
from tests.factories import bearer, make_asset, snapshot

SHARED = "/content/dam/shared"


async def _tree(services: Services) -> None:
    for parent, name in (
        ("/content/dam", "shared"),
        (SHARED, "sub"),
        ("/content/dam", "shared-not"),
    ):
        await services.tree.create_folder(parent, name, user="writer")
    await make_asset(services, "a.txt", b"alpha", "text/plain", SHARED)
    await make_asset(services, "page.html", b"<script>alert(1)</script>", "text/html", SHARED)
    await make_asset(services, "deep.png", b"\x89PNG-deep", "image/png", f"{SHARED}/sub")
    await make_asset(services, "secret.txt", b"outside", "text/plain", "/content/dam/shared-not")
    await make_asset(services, "top.txt", b"top", "text/plain")


async def _share(client: httpx.AsyncClient, token: str, target: str, **body: object) -> dict:
    r = await client.post("/share-links", json={"target": target, **body}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json()


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def test_a_folder_link_opens_the_folder_and_below_without_a_token(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    await _tree(services)
    made = await _share(client, tokens.write, SHARED)
    assert made["kind"] == "folder" and made["path"] == SHARED and made["state"] == "active"
    assert made["createdBy"] == "writer"
    link = _path(made["url"])
    assert link.startswith("/s/avs_")

    page = await client.get(link)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'self'" in page.headers["content-security-policy"]

    info = await client.get(f"{link}/info")
    assert info.status_code == 200
    assert info.headers["referrer-policy"] == "no-referrer"
    assert info.headers["cache-control"] == "no-store"
    body = info.json()
    assert body["kind"] == "folder" and body["name"] == "shared"
    names = {c["name"]: c["kind"] for c in body["children"]}
    assert names == {"a.txt": "asset", "page.html": "asset", "sub": "folder"}
    # What the page needs and nothing more: no ids, users or metadata.
    assert set(body["children"][0]) == {
        "name",
        "kind",
        "title",
        "size",
        "mimeType",
        "modified",
        "processed",
    }

    sub = (await client.get(f"{link}/info/sub")).json()
    assert [c["name"] for c in sub["children"]] == ["deep.png"]

    got = await client.get(f"{link}/original/a.txt")
    assert got.status_code == 200 and got.content == b"alpha"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''a.txt"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["referrer-policy"] == "no-referrer"
    deep = await client.get(f"{link}/original/sub/deep.png", headers={"Range": "bytes=4-"})
    assert deep.status_code == 206 and deep.content == b"-deep"
    # An uploaded page is sandboxed exactly as on every other download route.
    html = await client.get(f"{link}/original/page.html")
    assert html.headers["content-security-policy"] == "sandbox"
    assert html.headers["content-disposition"].startswith("attachment")


async def test_an_asset_link_opens_that_asset_only(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    await _tree(services)
    node = await services.tree.get(f"{SHARED}/a.txt")
    made = await _share(client, tokens.admin, node.urn)
    assert made["kind"] == "asset" and made["assetId"] == node.urn
    link = _path(made["url"])
    info = (await client.get(f"{link}/info")).json()
    assert info["kind"] == "asset" and info["item"]["name"] == "a.txt" and "children" not in info
    assert (await client.get(f"{link}/original")).content == b"alpha"
    below = await client.get(f"{link}/original/page.html")
    assert below.status_code == 404
    assert below.json()["detail"] == "this link shares one asset and nothing below it"
    assert (await client.get(f"{link}/thumbnail")).status_code == 404  # not processed


@pytest.mark.parametrize(
    "rest",
    [
        "/original/..%2Fshared-not%2Fsecret.txt",
        "/original/%2e%2e/shared-not/secret.txt",
        "/original/../shared-not/secret.txt",
        "/original/sub/../../shared-not/secret.txt",
        "/original/%2E%2E/top.txt",
        "/original//top.txt",
        "/original/sub%2F..%2F..%2Ftop.txt",
        "/original/..%5Ctop.txt",
        "/info/..",
        "/originalx",
    ],
)
async def test_no_spelling_of_a_path_leaves_the_shared_folder(
    client: httpx.AsyncClient, services: Services, tokens: Tokens, rest: str
) -> None:
    await _tree(services)
    link = _path((await _share(client, tokens.write, SHARED))["url"])
    status, body = await raw_request(services, "GET", link + rest, headers={})
    assert status in (400, 404), (rest, status)
    assert body["detail"]
    assert b"outside" not in repr(body).encode() and "top" not in body["detail"]


async def test_a_sibling_with_the_same_prefix_is_not_below(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    await _tree(services)
    link = _path((await _share(client, tokens.write, f"{SHARED}/sub"))["url"])
    assert (await client.get(f"{link}/original/deep.png")).status_code == 200
    assert (await client.get(f"{link}/original/a.txt")).status_code == 404


async def test_expired_and_revoked_links_are_refused_with_their_reason(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    await _tree(services)
    made = await _share(client, tokens.write, SHARED, expiresIn=60)
    link = _path(made["url"])
    assert (await client.get(f"{link}/info")).status_code == 200
    async with services.db.write() as conn:
        await conn.execute(
            update(share_links)
            .where(share_links.c.id == made["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    for rest in ("/info", "/original/a.txt"):
        r = await client.get(link + rest)
        assert r.status_code == 410
        assert r.json()["detail"].startswith("this share link expired at ")

    other = await _share(client, tokens.write, SHARED)
    other_link = _path(other["url"])
    # A second API process over the same database: a revocation holds there at once.
    second = build_services(services.settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(services=second)),
            base_url="http://assetvault.test",
        ) as elsewhere:
            assert (await elsewhere.get(f"{other_link}/original/a.txt")).status_code == 200
            r = await client.delete(f"/share-links/{other['id']}", headers=bearer(tokens.write))
            assert r.status_code == 204
            for c in (client, elsewhere):
                gone = await c.get(f"{other_link}/original/a.txt")
                assert gone.status_code == 410
                assert gone.json()["detail"] == "this share link was revoked"
            page = await elsewhere.get(other_link)  # the page loads, and says why
            assert page.status_code == 200
    finally:
        await second.close()
    unknown = await client.get("/s/avs_" + "x" * 43 + "/info")
    assert (
        unknown.status_code == 404 and unknown.json()["detail"] == "this share link does not exist"
    )
    assert "www-authenticate" not in unknown.headers  # no sign-in prompt in a browser


async def test_a_deleted_target_is_gone(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    await _tree(services)
    link = _path((await _share(client, tokens.write, f"{SHARED}/a.txt"))["url"])
    await services.changes.delete(f"{SHARED}/a.txt", user="writer")
    r = await client.get(f"{link}/original")
    assert r.status_code == 410 and r.json()["detail"] == "what this link shared no longer exists"


async def test_only_writers_make_links_and_each_sees_and_revokes_their_own(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    await _tree(services)
    before = await snapshot(services)
    r = await client.post("/share-links", json={"target": SHARED}, headers=bearer(tokens.read))
    assert r.status_code == 403
    assert (await client.post("/share-links", json={"target": SHARED})).status_code == 401
    assert (await client.get("/share-links", headers=bearer(tokens.read))).status_code == 403
    other = await services.auth.create_token("other-writer", "write")
    mine = await _share(client, tokens.write, SHARED)
    theirs = await _share(client, other, f"{SHARED}/a.txt")

    listed = (await client.get("/share-links", headers=bearer(tokens.write))).json()["items"]
    assert [i["id"] for i in listed] == [mine["id"]]
    assert "url" not in listed[0]  # the secret is shown once, when the link is made
    everyone = (await client.get("/share-links", headers=bearer(tokens.admin))).json()["items"]
    assert {i["id"] for i in everyone} == {mine["id"], theirs["id"]}

    # Another writer's link is "not found" to a writer; an admin revokes any.
    r = await client.delete(f"/share-links/{theirs['id']}", headers=bearer(tokens.write))
    assert r.status_code == 404
    assert (await client.get(_path(theirs["url"]) + "/original")).status_code == 200
    r = await client.delete(f"/share-links/{theirs['id']}", headers=bearer(tokens.admin))
    assert r.status_code == 204
    state = (await client.get("/share-links", headers=bearer(other))).json()["items"][0]
    assert state["state"] == "revoked" and state["revokedAt"]
    r = await client.delete(f"/share-links/{mine['id']}", headers=bearer(tokens.read))
    assert r.status_code == 403
    # Links live outside the tree: making and revoking them changed no node or blob.
    assert await snapshot(services) == before


async def test_the_database_holds_a_digest_not_the_secret(
    client: httpx.AsyncClient, services: Services, tokens: Tokens
) -> None:
    await _tree(services)
    made = await _share(client, tokens.write, SHARED)
    secret = _path(made["url"]).split("/")[2]
    async with services.db.read() as conn:
        rows = [tuple(r) for r in await conn.execute(select(share_links))]
    assert len(rows) == 1
    assert not any(secret in str(value) for value in rows[0])


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"target": SHARED, "expiresIn": 10**9}, 400, "expiresIn must be between 60 and"),
        ({"target": SHARED, "expiresIn": 10}, 400, "expiresIn must be between 60 and"),
        ({"target": SHARED, "expiresIn": "60"}, 400, "expiresIn must be a whole number"),
        ({"target": "/content/dam"}, 400, "the DAM root cannot be shared"),
        ({"target": "/etc/passwd"}, 400, "target must be"),
        ({"target": f"{SHARED}/nope"}, 404, "does not exist"),
        ({"target": "urn:aaid:aem:nope"}, 400, "does not end in a UUID"),
        ({"target": SHARED, "extra": 1}, 400, "unknown fields: extra"),
        ({}, 400, "target must be"),
    ],
)
async def test_bad_requests_make_no_link(
    client: httpx.AsyncClient,
    services: Services,
    tokens: Tokens,
    body: dict,
    status: int,
    detail: str,
) -> None:
    await _tree(services)
    r = await client.post("/share-links", json=body, headers=bearer(tokens.write))
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]
    assert (await client.get("/share-links", headers=bearer(tokens.write))).json()["items"] == []
