"""Direct binary upload through the HTTP interface, and every way to get it wrong."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
from tests.conftest import Tokens
from tests.factories import (
    bearer,
    complete,
    initiate,
    make_folder,
    outbox_events,
    process_all,
    put_parts,
    snapshot,
    tampered,
    upload,
)
from tests.s3 import ON_S3_TOO

from assetvault.services import Services

FOLDER = "/content/dam/photos"


@pytest.fixture
async def folder(client: httpx.AsyncClient, tokens: Tokens) -> str:
    assert (await make_folder(client, tokens.write, "photos")).status_code == 201
    return FOLDER


def on_s3(services: Services) -> bool:
    return getattr(services.blobs, "root", None) is None


def completed_sha1(services: Services, data: bytes) -> str | None:
    """What complete answers as the SHA-1: on S3 the parts went to the store and the
    server has read none of them (processing records it later)."""
    return None if on_s3(services) else hashlib.sha1(data).hexdigest()


def siren_status(response: httpx.Response) -> int:
    props = response.json()["properties"]
    assert response.json()["class"] == "core/response"
    assert isinstance(props["status.message"], str) and props["status.message"]
    return int(props["status.code"])


async def test_initiate_answers_what_the_upload_client_validates(
    client: httpx.AsyncClient, tokens: Tokens, folder: str
) -> None:
    r = await initiate(client, tokens.write, folder, [("a.jpg", 40 * 2**20), ("b.pdf", 10)])
    assert r.status_code == 201
    body = r.json()
    assert isinstance(body["completeURI"], str)
    assert body["completeURI"].endswith("/content/dam/photos.completeUpload.json")
    assert [f["fileName"] for f in body["files"]] == ["a.jpg", "b.pdf"]
    big, small = body["files"]
    assert big["mimeType"] == "image/jpeg" and small["mimeType"] == "application/pdf"
    assert len(big["uploadURIs"]) == 3  # 16 MiB parts
    assert len(small["uploadURIs"]) == 1
    for f in body["files"]:
        assert isinstance(f["uploadToken"], str)
        assert 1 <= f["minPartSize"] <= f["maxPartSize"]
        assert all(u.startswith("http://assetvault.test/") for u in f["uploadURIs"])


@ON_S3_TOO
async def test_upload_round_trip(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    data = os.urandom(3 * 2**20 + 5)
    r = await upload(client, tokens.write, folder, "pic.jpg", data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["path"] == "/content/dam/photos/pic.jpg"
    assert body["assetId"].startswith("urn:aaid:aem:")
    assert body["sha1"] == completed_sha1(services, data)
    got = await client.get("/content/dam/photos/pic.jpg", headers=bearer(tokens.read))
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/jpeg"
    node = await services.tree.get("/content/dam/photos/pic.jpg")
    assert node.created_by == "writer" and node.asset_state == "processing"
    assert node.sha1 == completed_sha1(services, data)
    # Processing reads the original and records its SHA-1 where the server had not.
    await process_all(services)
    node = await services.tree.get("/content/dam/photos/pic.jpg")
    assert node.sha1 == hashlib.sha1(data).hexdigest()
    assert node.asset_state in ("processed", "failed")  # random bytes named .jpg


async def test_asset_exists_only_after_complete(
    client: httpx.AsyncClient, tokens: Tokens, folder: str
) -> None:
    r = await initiate(client, tokens.write, folder, [("late.bin", 4)])
    file = r.json()["files"][0]
    await put_parts(client, file, b"data")
    missing = await client.get("/content/dam/photos/late.bin", headers=bearer(tokens.read))
    assert missing.status_code == 404
    assert (await complete(client, tokens.write, folder, file, 4)).status_code == 200
    found = await client.get("/content/dam/photos/late.bin", headers=bearer(tokens.read))
    assert found.content == b"data"


@ON_S3_TOO
async def test_overwrite_version_and_replace(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    first = (await upload(client, tokens.write, folder, "doc.txt", b"one")).json()
    second = (await upload(client, tokens.write, folder, "doc.txt", b"two")).json()
    assert second["assetId"] == first["assetId"] and second["created"] is False
    node = await services.tree.get("/content/dam/photos/doc.txt")
    assert await services.tree.versions(node) == []

    third = await upload(
        client,
        tokens.write,
        folder,
        "doc.txt",
        b"three",
        createVersion="true",
        versionLabel="v2",
        versionComment="second draft",
    )
    assert third.json()["assetId"] == first["assetId"]
    node = await services.tree.get("/content/dam/photos/doc.txt")
    [version] = await services.tree.versions(node)
    assert version.sha1 == completed_sha1(services, b"two")
    # On S3 the job of the replaced original still reads it and records its SHA-1 on
    # the version kept of it.
    await process_all(services)
    [version] = await services.tree.versions(node)
    assert (version.label, version.comment, version.sha1) == (
        "v2",
        "second draft",
        hashlib.sha1(b"two").hexdigest(),
    )
    assert version.name == "1.0"
    got = await client.get("/content/dam/photos/doc.txt", headers=bearer(tokens.read))
    assert got.content == b"three"

    replaced = (
        await upload(client, tokens.write, folder, "doc.txt", b"four", replace="true")
    ).json()
    assert replaced["assetId"] != first["assetId"] and replaced["created"] is True
    node = await services.tree.get("/content/dam/photos/doc.txt")
    assert await services.tree.versions(node) == []


async def test_probe_initiate_is_harmless(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    before = await snapshot(services)
    for _ in range(3):
        assert (await initiate(client, tokens.write, folder, [("x.jpg", 100)])).status_code == 201
    assert await snapshot(services) == before


# -- bad input: a clear error in Siren form, and nothing changes -------------------------


def _form(pairs: list[tuple[str, str]]) -> str:
    return str(httpx.QueryParams(pairs))


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("", 400, "fileName is required"),
        (_form([("fileSize", "10")]), 400, "fileName is required"),
        (_form([("fileName", "a.jpg")]), 400, "each fileName needs a fileSize"),
        (_form([("fileName", "a.jpg"), ("fileSize", "-1")]), 400, "negative"),
        (_form([("fileName", "a.jpg"), ("fileSize", "ten")]), 400, "whole number"),
        (_form([("fileName", "a.jpg"), ("fileSize", str(2**41))]), 413, "larger than"),
        (_form([("fileName", "a*b.jpg"), ("fileSize", "1")]), 400, "not allowed"),
        (_form([("fileName", ".."), ("fileSize", "1")]), 400, "not a valid name"),
        (_form([("fileName", "a/b.jpg"), ("fileSize", "1")]), 400, "not allowed"),
        (_form([("fileName", ""), ("fileSize", "1")]), 400, "empty"),
    ],
)
async def test_bad_initiate(
    client: httpx.AsyncClient,
    tokens: Tokens,
    folder: str,
    services: Services,
    body: str,
    status: int,
    message: str,
) -> None:
    before = await snapshot(services)
    r = await client.post(
        f"{folder}.initiateUpload.json",
        content=body,
        headers={**bearer(tokens.write), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == status, r.text
    assert siren_status(r) == status
    assert message in r.json()["properties"]["status.message"]
    assert await snapshot(services) == before


async def test_initiate_on_missing_folder_is_404(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    before = await snapshot(services)
    r = await initiate(client, tokens.write, "/content/dam/nowhere", [("a.jpg", 1)])
    assert r.status_code == 404 and siren_status(r) == 404
    assert await snapshot(services) == before


@pytest.mark.parametrize(
    "raw",
    [
        "/content/dam/photos/../x.initiateUpload.json",
        "/content/dam/photos/%2e%2e/x.initiateUpload.json",
        "/content/dam/photos%2Fsub.initiateUpload.json",
        "/content/dam/photos%2fsub.initiateUpload.json",
        "/content/dam/photos%5Csub.initiateUpload.json",
        "/content/dam//photos.initiateUpload.json",
        "/content/dam/photos/%ff.initiateUpload.json",
    ],
)
async def test_paths_that_would_escape_or_alias_are_refused(
    services: Services, tokens: Tokens, folder: str, raw: str
) -> None:
    from tests.api.rawasgi import raw_request

    before = await snapshot(services)
    status, body = await raw_request(
        services,
        "POST",
        raw,
        body=b"fileName=a.jpg&fileSize=1",
        headers={
            "authorization": f"Bearer {tokens.write}",
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 400, body
    assert body["class"] == "core/response"
    assert await snapshot(services) == before


async def test_double_encoded_path_does_not_resolve(
    services: Services, tokens: Tokens, folder: str
) -> None:
    from tests.api.rawasgi import raw_request

    status, _ = await raw_request(
        services,
        "POST",
        "/content/dam/photos%252Fsub.initiateUpload.json",
        body=b"fileName=a.jpg&fileSize=1",
        headers={
            "authorization": f"Bearer {tokens.write}",
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    # Decoded once, the folder is literally named "photos%2Fsub", which does not exist.
    assert status == 404


def _retoken(uri: str, token: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(query=f"token={token}"))


async def test_tampered_expired_or_misdirected_part_uri_is_403(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    r = await initiate(client, tokens.write, folder, [("a.bin", 40 * 2**20)])
    uris = r.json()["files"][0]["uploadURIs"]
    token = parse_qs(urlsplit(uris[0]).query)["token"][0]
    before = await snapshot(services)
    assert (await client.put(_retoken(uris[0], tampered(token)), content=b"x")).status_code == 403
    # Part 1's token used for part 2's URI.
    other = uris[1].split("?")[0] + "?token=" + token
    assert (await client.put(other, content=b"x")).status_code == 403
    assert (await client.put(uris[0].split("?")[0], content=b"x")).status_code == 403
    assert await snapshot(services) == before


async def test_expired_tokens_are_refused(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    r = await initiate(client, tokens.write, folder, [("a.bin", 3)])
    file = r.json()["files"][0]
    await put_parts(client, file, b"abc")
    services.uploads.tokens.ttl = -1  # every token issued so far is now too old
    before = await snapshot(services)
    part = await client.put(file["uploadURIs"][0], content=b"abc")
    assert part.status_code == 403 and "expired" in part.json()["detail"]
    c = await complete(client, tokens.write, folder, file, 3)
    assert c.status_code == 400 and "expired" in c.json()["properties"]["status.message"]
    assert await snapshot(services) == before


async def test_part_larger_than_max_part_size_is_413(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    services.settings.upload_max_part_size = 1000
    services.settings.upload_min_part_size = 10
    r = await initiate(client, tokens.write, folder, [("a.bin", 1500)])
    file = r.json()["files"][0]
    assert file["maxPartSize"] == 1000
    before = await snapshot(services)
    declared = await client.put(file["uploadURIs"][0], content=b"x" * 1001)
    assert declared.status_code == 413

    async def chunked() -> object:  # no Content-Length: caught while streaming
        for _ in range(11):
            yield b"y" * 100

    streamed = await client.put(file["uploadURIs"][0], content=chunked())
    assert streamed.status_code == 413
    assert await snapshot(services) == before


@ON_S3_TOO
async def test_complete_with_missing_parts_creates_nothing(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    data = os.urandom(40 * 2**20)
    r = await initiate(client, tokens.write, folder, [("big.bin", len(data))])
    file = r.json()["files"][0]
    part = 16 * 2**20
    await client.put(file["uploadURIs"][0], content=data[:part])
    await client.put(file["uploadURIs"][2], content=data[2 * part :])  # part 2 missing
    before = await snapshot(services)
    c = await complete(client, tokens.write, folder, file, len(data))
    assert c.status_code == 400
    assert "do not add up" in c.json()["properties"]["status.message"]
    assert await snapshot(services) == before
    missing = await client.get("/content/dam/photos/big.bin", headers=bearer(tokens.read))
    assert missing.status_code == 404
    # The client can still send the missing part and complete.
    await client.put(file["uploadURIs"][1], content=data[part : 2 * part])
    c = await complete(client, tokens.write, folder, file, len(data))
    assert c.status_code == 200
    assert c.json()["sha1"] == completed_sha1(services, data)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"uploadToken": "not-a-token"}, "not valid"),
        ({"fileSize": "4"}, "issued for 3 bytes"),
        ({"fileName": "other.bin"}, "issued for the file"),
        ({"createVersion": "true", "replace": "true"}, "cannot both be true"),
        ({"createVersion": "maybe"}, "true or false"),
        ({"fileSize": "three"}, "whole number"),
    ],
)
async def test_bad_complete(
    client: httpx.AsyncClient,
    tokens: Tokens,
    folder: str,
    services: Services,
    fields: dict[str, str],
    message: str,
) -> None:
    r = await initiate(client, tokens.write, folder, [("a.bin", 3)])
    file = r.json()["files"][0]
    await put_parts(client, file, b"abc")
    before = await snapshot(services)
    c = await complete(client, tokens.write, folder, file, 3, **fields)
    assert c.status_code == 400, c.text
    assert message in c.json()["properties"]["status.message"]
    assert await snapshot(services) == before


async def test_token_for_another_folder_is_refused(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    await make_folder(client, tokens.write, "other")
    r = await initiate(client, tokens.write, folder, [("a.bin", 3)])
    file = r.json()["files"][0]
    await put_parts(client, file, b"abc")
    before = await snapshot(services)
    c = await complete(client, tokens.write, "/content/dam/other", file, 3)
    assert c.status_code == 400 and "issued for /content/dam/photos" in c.text
    assert await snapshot(services) == before


async def test_upload_into_the_root_folder(client: httpx.AsyncClient, tokens: Tokens) -> None:
    r = await upload(client, tokens.write, "/content/dam", "top.txt", b"top")
    assert r.status_code == 200 and r.json()["path"] == "/content/dam/top.txt"


async def test_unicode_and_space_names(client: httpx.AsyncClient, tokens: Tokens) -> None:
    assert (await make_folder(client, tokens.write, "Ünï cödé")).status_code == 201
    folder = "/content/dam/%C3%9Cn%C3%AF%20c%C3%B6d%C3%A9"
    r = await upload(client, tokens.write, folder, "naïve café 文件.txt", b"hi")
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/content/dam/Ünï cödé/naïve café 文件.txt"
    got = await client.get(
        "/content/dam/%C3%9Cn%C3%AF%20c%C3%B6d%C3%A9/na%C3%AFve%20caf%C3%A9%20%E6%96%87%E4%BB%B6.txt",
        headers=bearer(tokens.read),
    )
    assert got.content == b"hi"


async def test_a_used_upload_token_is_refused_as_used(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    r = await initiate(client, tokens.write, folder, [("once.bin", 4)])
    file = r.json()["files"][0]
    await put_parts(client, file, b"once")
    assert (await complete(client, tokens.write, folder, file, 4)).status_code == 200
    before = await snapshot(services)
    for fields in ({}, {"createVersion": "true"}, {"replace": "true"}):
        again = await complete(client, tokens.write, folder, file, 4, **fields)
        assert again.status_code == 409, again.text
        assert "already used" in again.json()["properties"]["status.message"]
    assert await snapshot(services) == before


@ON_S3_TOO
async def test_racing_completes_of_one_upload_make_one_asset(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    import asyncio

    r = await initiate(client, tokens.write, folder, [("race.bin", 4)])
    file = r.json()["files"][0]
    await put_parts(client, file, b"race")
    answers = await asyncio.gather(
        *(complete(client, tokens.write, folder, file, 4) for _ in range(4))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1, [a.text for a in answers]
    assert statuses == [200, 409, 409, 409]
    assert all("already used" in a.text for a in answers if a.status_code == 409)
    node = await services.tree.get(f"{folder}/race.bin")
    assert await services.tree.versions(node) == []
    created = [e for e in await outbox_events(services) if e.path == node.path]
    assert [e.type for e in created] == ["asset.created"]


async def test_a_mime_type_that_is_no_media_type_is_refused(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    """Complete's mimeType becomes the original's Content-Type: the class of
    tests/unit/test_mediatypes.py is a 400 and stores nothing."""
    from tests.unit.test_mediatypes import HOSTILE

    r = await initiate(client, tokens.write, folder, [("a.bin", 3)])
    file = r.json()["files"][0]
    await put_parts(client, file, b"abc")
    before = await snapshot(services)
    for mime in [m for m in HOSTILE if m not in ("", "application/octet-stream")]:
        c = await complete(client, tokens.write, folder, file, 3, mimeType=mime)
        assert c.status_code == 400, (mime, c.text)
        assert "mimeType must be a media type" in c.json()["properties"]["status.message"]
        assert await snapshot(services) == before, mime
    c = await complete(client, tokens.write, folder, file, 3, mimeType="text/plain")
    assert c.status_code == 200 and c.json()["mimeType"] == "text/plain"
