"""POST /adobe/assets/archive, an Assetvault extension (docs/author-api.md): many
originals as one streamed ZIP, with a download's auth and headers and safe names."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from assetvault.services import Services
from tests.api.adobe.test_assets import is_problem
from tests.conftest import Tokens
from tests.factories import make_asset, make_folder, outbox_events, snapshot

URL = "/adobe/assets/archive"


def auth(token: str) -> dict[str, str]:
    # As a download: the bearer token alone, no X-Api-Key.
    return {"Authorization": f"Bearer {token}"}


async def archive(client: httpx.AsyncClient, token: str, paths: object) -> httpx.Response:
    return await client.post(URL, json={"paths": paths}, headers=auth(token))


def members(r: httpx.Response) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert z.testzip() is None
        return {i.filename: z.read(i) for i in z.infolist()}


@pytest.fixture
async def tree(client: httpx.AsyncClient, services: Services, tokens: Tokens) -> None:
    """/content/dam/{a.txt, shots/{a.txt, A.TXT, deep/x.png}, other/shots.txt ...}"""
    for folder in ("shots", "shots/deep", "other", "other/shots", "empty"):
        assert (await make_folder(client, tokens.write, folder)).status_code == 201
    await make_asset(services, "a.txt", b"top a", "text/plain")
    await make_asset(services, "a.txt", b"shots a", "text/plain", "/content/dam/shots")
    await make_asset(services, "A.TXT", b"shots A", "text/plain", "/content/dam/shots")
    await make_asset(services, "x.png", b"\x89PNG deep", "image/png", "/content/dam/shots/deep")
    await make_asset(services, "o.txt", b"other o", "text/plain", "/content/dam/other/shots")


async def test_assets_and_folders_come_as_one_zip_with_a_downloads_headers(
    client: httpx.AsyncClient, tokens: Tokens, tree: None
) -> None:
    r = await archive(client, tokens.read, ["/content/dam/shots", "/content/dam/a.txt"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''assets.zip"
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-length" not in r.headers, "streamed as it is made"
    assert members(r) == {
        "shots/A.TXT": b"shots A",
        # The same name but for case: numbered, as a case-blind file system would merge them.
        "shots/a1.txt": b"shots a",
        "shots/deep/x.png": b"\x89PNG deep",
        "a.txt": b"top a",
    }


async def test_a_single_folder_is_named_after_it(
    client: httpx.AsyncClient, tokens: Tokens, tree: None
) -> None:
    r = await archive(client, tokens.read, ["/content/dam/shots/deep/"])
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''deep.zip"
    assert members(r) == {"deep/x.png": b"\x89PNG deep"}


async def test_the_same_name_from_two_places_is_numbered_and_an_asset_named_twice_goes_in_once(
    client: httpx.AsyncClient, tokens: Tokens, tree: None
) -> None:
    paths = [
        "/content/dam/a.txt",
        "/content/dam/shots/a.txt",
        "/content/dam/shots",  # holds shots/a.txt again: not twice
        "/content/dam/other/shots",  # a second directory "shots"
        "/content/dam/a.txt",
    ]
    r = await archive(client, tokens.read, paths)
    assert members(r) == {
        "a.txt": b"top a",
        "a1.txt": b"shots a",
        "shots/A.TXT": b"shots A",
        "shots/deep/x.png": b"\x89PNG deep",
        "shots1/o.txt": b"other o",
    }


async def test_the_root_brings_every_asset_at_its_path(
    client: httpx.AsyncClient, tokens: Tokens, tree: None
) -> None:
    r = await archive(client, tokens.read, ["/content/dam"])
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''assets.zip"
    names = set(members(r))
    assert {"a.txt", "shots/deep/x.png", "other/shots/o.txt"} <= names
    assert len(names) == 5 and not any(n.startswith("/") for n in names)


async def test_each_member_sent_is_a_download_event(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, tree: None
) -> None:
    before = await outbox_events(services)
    r = await archive(client, tokens.read, ["/content/dam/shots/deep", "/content/dam/a.txt"])
    assert r.status_code == 200
    new = (await outbox_events(services))[len(before) :]
    assert sorted((e.type, e.path, e.user) for e in new) == [
        ("asset.downloaded", "/content/dam/a.txt", "reader"),
        ("asset.downloaded", "/content/dam/shots/deep/x.png", "reader"),
    ]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}],
    ids=["none", "bad-bearer", "bad-basic"],
)
async def test_without_a_valid_token_nothing_is_sent(
    client: httpx.AsyncClient, headers: dict[str, str], tree: None
) -> None:
    r = await client.post(URL, json={"paths": ["/content/dam/a.txt"]}, headers=headers)
    assert is_problem(r, 401)
    assert b"top a" not in r.content


async def test_a_revoked_token_is_refused(
    client: httpx.AsyncClient, services: Services, tokens: Tokens, tree: None
) -> None:
    assert (await archive(client, tokens.read, ["/content/dam/a.txt"])).status_code == 200
    await services.auth.revoke("reader")
    r = await archive(client, tokens.read, ["/content/dam/a.txt"])
    assert is_problem(r, 401)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"paths": []}, 400),
        ({"paths": "/content/dam/a.txt"}, 400),
        ({"paths": [7]}, 400),
        ({"paths": ["/etc/passwd"]}, 400),
        ({"paths": ["/content/damage/a.txt"]}, 400),
        ({"paths": ["/content/dam/../dam/a.txt"]}, 400),
        ({"paths": ["/content/dam/shots/./a.txt"]}, 400),
        ({"paths": ["/content/dam//a.txt"]}, 400),
        ({"paths": ["content/dam/a.txt"]}, 400),
        ({"paths": ["/content/dam/a\\b.txt"]}, 400),
        ({"paths": ["/content/dam/a.txt"], "zip64": True}, 400),
        ({"paths": ["/content/dam/a.txt", "/content/dam/missing.txt"]}, 404),
        ({"paths": ["/content/dam/a.txt"] * 1001}, 413),
    ],
)
async def test_a_bad_request_is_a_problem_before_any_byte(
    client: httpx.AsyncClient,
    tokens: Tokens,
    services: Services,
    tree: None,
    body: dict[str, object],
    status: int,
) -> None:
    before = await snapshot(services)
    events = len(await outbox_events(services))
    r = await client.post(URL, json=body, headers=auth(tokens.read))
    assert is_problem(r, status), r.text
    assert await snapshot(services) == before
    assert len(await outbox_events(services)) == events, "no download was recorded"


async def test_only_json_is_taken(client: httpx.AsyncClient, tokens: Tokens, tree: None) -> None:
    form = {**auth(tokens.read), "Content-Type": "application/x-www-form-urlencoded"}
    r = await client.post(URL, content=b"paths=/content/dam/a.txt", headers=form)
    assert is_problem(r, 415)
