"""A kept version's binary (GET /adobe/assets/{id}/versions/{name}/as/{seoName}) and its
restore (POST .../versions/{name}/restore): Assetvault extensions (docs/author-api.md),
on both database backends (the services fixture)."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from assetvault.services import Services
from tests.api.adobe.conftest import adobe
from tests.api.adobe.test_assets import is_problem
from tests.conftest import Tokens
from tests.factories import bearer, outbox_events, snapshot, upload

UNKNOWN = "urn:aaid:aem:6f1c0e52-3b8a-4d2e-9c47-5a0b8e1d2f93"


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


async def versioned(client: httpx.AsyncClient, token: str, name: str = "doc.txt") -> str:
    """An asset whose original was replaced twice with versions kept: 1.0 holds b"one",
    1.1 b"two!", the current original b"three"."""
    first = await upload(client, token, "/content/dam", name, b"one", mimeType="text/plain")
    asset_id = first.json()["assetId"]
    for data, label in ((b"two!", "v1"), (b"three", None)):
        fields = {"createVersion": "true", "mimeType": "text/plain"}
        fields |= {"versionLabel": label} if label else {}
        r = await upload(client, token, "/content/dam", name, data, **fields)
        assert r.status_code == 200 and r.json()["assetId"] == asset_id, r.text
    return str(asset_id)


def binary_url(asset_id: str, name: str, seo: str = "doc.txt") -> str:
    return f"/adobe/assets/{asset_id}/versions/{name}/as/{seo}"


async def test_a_kept_version_is_served_whole_and_by_range(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    asset_id = await versioned(client, tokens.write)
    got = await client.get(binary_url(asset_id, "1.1"), headers=adobe(tokens.read))
    assert got.status_code == 200, got.text
    assert got.content == b"two!"
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["etag"] == f'"{sha1(b"two!")}"'
    assert got.headers["x-content-type-options"] == "nosniff"
    # text/plain is off the passive list: an attachment, as its original would be.
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''doc.txt"
    part = await client.get(
        binary_url(asset_id, "1.0"), headers={**adobe(tokens.read), "Range": "bytes=1-"}
    )
    assert part.status_code == 206
    assert part.content == b"ne" and part.headers["content-range"] == "bytes 1-2/3"
    again = await client.get(
        binary_url(asset_id, "1.1"),
        headers={**adobe(tokens.read), "If-None-Match": got.headers["etag"]},
    )
    assert again.status_code == 304


async def test_a_version_of_an_active_type_is_sandboxed(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    page = b"<script>alert(1)</script>"
    r = await upload(client, tokens.write, "/content/dam", "p.html", page, mimeType="text/html")
    asset_id = r.json()["assetId"]
    await upload(client, tokens.write, "/content/dam", "p.html", b"<p>2</p>", createVersion="true")
    got = await client.get(binary_url(asset_id, "1.0", "p.html"), headers=adobe(tokens.read))
    assert got.status_code == 200 and got.content == page
    assert got.headers["content-security-policy"] == "sandbox"
    assert got.headers["content-disposition"].startswith("attachment;")


async def test_restore_makes_a_new_current_original_and_keeps_every_version(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    asset_id = await versioned(client, tokens.write)
    position = (await outbox_events(services))[-1].seq
    url = f"/adobe/assets/{asset_id}/versions/1.0/restore"
    r = await client.post(url, headers=adobe(tokens.write))
    assert r.status_code == 200, r.text
    # Through the write path: one outbox row, and processing runs again.
    rows = await outbox_events(services, position)
    assert [(e.type, e.path) for e in rows] == [("asset.original_replaced", "/content/dam/doc.txt")]
    assert rows[0].data["restoredFrom"] == "1.0"
    assert rows[0].data["versionKept"] is True
    assert rows[0].data["previousSha1"] == sha1(b"three")
    items = r.json()["items"]
    assert r.json()["assetId"] == asset_id
    assert [(i["name"], i["sha1"], i["current"]) for i in items] == [
        ("1.0", sha1(b"one"), False),
        ("1.1", sha1(b"two!"), False),
        ("1.2", sha1(b"three"), False),  # the original before the restore, kept
        ("current", sha1(b"one"), True),
    ]
    assert items[2]["comment"] == "kept when version 1.0 was restored"
    assert items[2]["createdBy"] == "writer"
    got = await client.get("/content/dam/doc.txt", headers=bearer(tokens.read))
    assert got.content == b"one"
    listed = await client.get(f"/adobe/assets/{asset_id}/versions", headers=adobe(tokens.read))
    assert listed.json() == r.json()
    node = await services.tree.get("/content/dam/doc.txt")
    assert node.asset_state == "processing" and node.sha1 == sha1(b"one")


async def test_restore_checks_if_match(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    asset_id = await versioned(client, tokens.write)
    url = f"/adobe/assets/{asset_id}/versions/1.1/restore"
    before = await snapshot(services)
    stale = await client.post(url, headers={**adobe(tokens.write), "If-Match": '"nope-1"'})
    assert is_problem(stale, 412)
    assert await snapshot(services) == before
    meta = await client.get(f"/adobe/assets/{asset_id}/metadata", headers=adobe(tokens.read))
    fresh = await client.post(
        url, headers={**adobe(tokens.write), "If-Match": meta.headers["etag"]}
    )
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["items"][-1]["sha1"] == sha1(b"two!")


@pytest.mark.parametrize(
    ("asset_id", "version", "status"),
    [
        ("not-a-urn", "1.0", 400),
        (UNKNOWN, "1.0", 404),
        (None, "9.9", 404),
        (None, "current", 404),
        (None, "..", 404),
    ],
)
async def test_bad_ids_and_unknown_versions_change_nothing(
    client: httpx.AsyncClient,
    tokens: Tokens,
    services: Services,
    asset_id: str | None,
    version: str,
    status: int,
) -> None:
    real = await versioned(client, tokens.write)
    target = asset_id or real
    before = await snapshot(services)
    restore = f"/adobe/assets/{target}/versions/{version}/restore"
    assert is_problem(await client.post(restore, headers=adobe(tokens.write)), status)
    got = await client.get(binary_url(target, version), headers=adobe(tokens.read))
    assert is_problem(got, status)
    assert await snapshot(services) == before


async def test_a_folder_has_no_versions_to_restore(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    root = await services.tree.get("/content/dam")
    r = await client.post(
        f"/adobe/assets/{root.urn}/versions/1.0/restore", headers=adobe(tokens.write)
    )
    assert is_problem(r, 404)


async def test_auth(client: httpx.AsyncClient, tokens: Tokens, services: Services) -> None:
    asset_id = await versioned(client, tokens.write)
    restore = f"/adobe/assets/{asset_id}/versions/1.0/restore"
    before = await snapshot(services)
    assert is_problem(await client.post(restore), 401)
    assert is_problem(await client.post(restore, headers=adobe("nope")), 401)
    assert is_problem(await client.post(restore, headers=bearer(tokens.write)), 403)
    assert is_problem(await client.post(restore, headers=adobe(tokens.read)), 403)
    assert await snapshot(services) == before
    read = binary_url(asset_id, "1.0")
    assert is_problem(await client.get(read), 401)
    assert is_problem(await client.get(read, headers=bearer(tokens.read)), 403)
    assert (await client.get(read, headers=adobe(tokens.read))).content == b"one"
    refused = await client.get(read, headers={**adobe(tokens.read), "Accept": "image/png"})
    assert is_problem(refused, 406)
    json_only = {**adobe(tokens.write), "Accept": "text/html"}
    assert is_problem(await client.post(restore, headers=json_only), 406)
    assert await snapshot(services) == before
