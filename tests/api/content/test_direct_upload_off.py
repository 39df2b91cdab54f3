"""direct_binary_upload = false: initiateUpload.json answers as an AEM 6.5 without direct
binary access (2xx JSON, no completeURI: what makes @adobe/httptransfer fall back to the
create-asset servlet), and the rest of direct binary upload is refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import Tokens
from tests.factories import bearer, initiate, make_folder, snapshot

from assetvault.services import Services

FOLDER = "/content/dam/photos"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"direct_binary_upload": False}


@pytest.fixture
async def folder(client: httpx.AsyncClient, tokens: Tokens) -> str:
    assert (await make_folder(client, tokens.write, "photos")).status_code == 201
    return FOLDER


async def test_initiate_answers_without_complete_uri(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    before = await snapshot(services)
    r = await initiate(client, tokens.write, folder, [("a.jpg", 282_584), ("b.pdf", 10)])
    assert r.status_code == 201
    body = r.json()
    # @adobe/httptransfer (lib/functions/aeminitiateupload.js) falls back when `files`
    # is no array or `completeURI` no string; AEM 6.5's own uploader when a file entry
    # has no completeURI.
    assert "completeURI" not in body
    assert body["folderPath"] == folder
    assert body["files"] == [
        {"fileName": "a.jpg", "mimeType": "image/jpeg"},
        {"fileName": "b.pdf", "mimeType": "application/pdf"},
    ]
    assert await snapshot(services) == before
    # Its request is checked as with direct binary upload on.
    missing = await initiate(client, tokens.write, "/content/dam/nope", [("a.jpg", 1)])
    assert missing.status_code == 404
    bad = await initiate(client, tokens.write, folder, [("a:b.jpg", 1)])
    assert bad.status_code == 400
    anonymous = await client.post(f"{folder}.initiateUpload.json", data={"fileName": "a"})
    assert anonymous.status_code == 401
    reader = await initiate(client, tokens.read, folder, [("a.jpg", 1)])
    assert reader.status_code == 403


async def test_complete_and_parts_are_refused(
    client: httpx.AsyncClient, tokens: Tokens, folder: str
) -> None:
    r = await client.post(
        f"{folder}.completeUpload.json",
        data={"uploadToken": "x", "fileName": "a.jpg", "fileSize": "1"},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 404
    assert "createasset.html" in r.json()["properties"]["status.message"]
    part = await client.put(f"/binary-upload/{'0' * 32}/1?token=x", content=b"a")
    assert part.status_code == 404


async def test_the_servlet_takes_the_upload_instead(
    client: httpx.AsyncClient, tokens: Tokens, folder: str
) -> None:
    r = await client.post(
        f"{folder}.createasset.html",
        data={"_charset_": "utf-8"},
        files={"file": ("a.jpg", b"jpeg bytes", "image/jpeg")},
        headers=bearer(tokens.write),
    )
    assert r.status_code == 201, r.text
    got = await client.get(f"{folder}/a.jpg", headers=bearer(tokens.read))
    assert got.content == b"jpeg bytes"
