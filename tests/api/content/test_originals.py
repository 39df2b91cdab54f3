"""GET/HEAD /content/dam/<asset>: the original with validators and byte ranges."""

from __future__ import annotations

import os
from email.utils import parsedate_to_datetime

import httpx
import pytest
from tests.conftest import Tokens
from tests.factories import bearer, make_folder, upload
from tests.s3 import ON_S3_TOO

DATA = os.urandom(100_000)
URL = "/content/dam/files/data.bin"


@pytest.fixture
async def asset(client: httpx.AsyncClient, tokens: Tokens) -> str:
    await make_folder(client, tokens.write, "files")
    r = await upload(client, tokens.write, "/content/dam/files", "data.bin", DATA)
    assert r.status_code == 200
    return URL


@ON_S3_TOO
async def test_get_and_head(
    client: httpx.AsyncClient, tokens: Tokens, asset: str, blobs_backend: str
) -> None:
    got = await client.get(asset, headers=bearer(tokens.read))
    assert got.status_code == 200 and got.content == DATA
    assert got.headers["content-length"] == str(len(DATA))
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["etag"].startswith('"')
    parsedate_to_datetime(got.headers["last-modified"])
    head = await client.head(asset, headers=bearer(tokens.read))
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(DATA))
    if blobs_backend == "local":
        assert head.headers["etag"] == got.headers["etag"]
    # else the GET was redirected to the object store, whose ETag is its own (docs/deploy.md)


@ON_S3_TOO
@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=99990-", 99990, 99999),
        ("bytes=-5", 99995, 99999),
        ("bytes=99000-200000", 99000, 99999),
    ],
)
async def test_ranges(
    client: httpx.AsyncClient, tokens: Tokens, asset: str, header: str, start: int, end: int
) -> None:
    r = await client.get(asset, headers={**bearer(tokens.read), "Range": header})
    assert r.status_code == 206
    assert r.content == DATA[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert r.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=100000-", "bytes=200000-300000", "bytes=-0"])
async def test_unsatisfiable_range_is_416(
    client: httpx.AsyncClient, tokens: Tokens, asset: str, header: str
) -> None:
    r = await client.get(asset, headers={**bearer(tokens.read), "Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(DATA)}"
    assert r.json()["properties"]["status.code"] == 416


@ON_S3_TOO
@pytest.mark.parametrize("header", ["items=0-5", "bytes=5-1", "bytes=0-1,5-9", "bytes=abc"])
async def test_ranges_this_server_does_not_serve_get_the_whole_body(
    client: httpx.AsyncClient, tokens: Tokens, asset: str, header: str
) -> None:
    r = await client.get(asset, headers={**bearer(tokens.read), "Range": header})
    assert r.status_code == 200 and r.content == DATA


@ON_S3_TOO
async def test_conditional_requests(client: httpx.AsyncClient, tokens: Tokens, asset: str) -> None:
    # The API's validator (a GET redirected to S3 answers with the store's ETag).
    etag = (await client.head(asset, headers=bearer(tokens.read))).headers["etag"]
    for value in (etag, "*", f'"other", {etag}', f"W/{etag}"):
        r = await client.get(asset, headers={**bearer(tokens.read), "If-None-Match": value})
        assert r.status_code == 304 and r.content == b""
    r = await client.get(asset, headers={**bearer(tokens.read), "If-None-Match": '"other"'})
    assert r.status_code == 200
    stale = await client.get(
        asset, headers={**bearer(tokens.read), "Range": "bytes=0-9", "If-Range": '"stale"'}
    )
    assert stale.status_code == 200 and stale.content == DATA
    fresh = await client.get(
        asset, headers={**bearer(tokens.read), "Range": "bytes=0-9", "If-Range": etag}
    )
    assert fresh.status_code == 206 and fresh.content == DATA[:10]


@ON_S3_TOO
async def test_etag_follows_the_content(
    client: httpx.AsyncClient, tokens: Tokens, asset: str
) -> None:
    before = (await client.head(asset, headers=bearer(tokens.read))).headers["etag"]
    await upload(client, tokens.write, "/content/dam/files", "data.bin", b"new content")
    after = await client.get(asset, headers=bearer(tokens.read))
    assert after.content == b"new content" and after.headers["etag"] != before


async def test_missing_asset_and_folder_are_404(
    client: httpx.AsyncClient, tokens: Tokens, asset: str
) -> None:
    for path in ("/content/dam/files/none.bin", "/content/dam/files", "/content/dam"):
        r = await client.get(path, headers=bearer(tokens.read))
        assert r.status_code == 404, path
        assert r.json()["class"] == "core/response"
    r = await client.get("/content/other", headers=bearer(tokens.read))
    assert r.status_code == 404
