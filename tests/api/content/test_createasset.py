"""The create-asset servlet (POST <folder>.createasset.html): single requests, chunks in
order, chunks out of order or overlapping, a new version on an existing name, and every
way to get its fields wrong (refused, nothing changed)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import Tokens
from tests.factories import bearer, make_folder, outbox_events, snapshot
from tests.s3 import ON_S3_TOO

from assetvault.adapters.database.tables import jobs
from assetvault.cli import main
from assetvault.services import Services

FOLDER = "/content/dam/photos"
URL = FOLDER + ".createasset.html"

Part = tuple[str, bytes, str | None, str | None]  # name, value, filename, content type


def multipart(parts: list[Part]) -> tuple[bytes, str]:
    """A multipart/form-data body with its parts in exactly this order."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for name, value, filename, ctype in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += disposition.encode() + b"\r\n"
        if ctype is not None:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def file_part(name: str, data: bytes, ctype: str = "image/jpeg") -> Part:
    return ("file", data, name, ctype)


def chunk_fields(offset: int, length: int, total: int) -> list[Part]:
    return [
        ("file@Offset", str(offset).encode(), None, None),
        ("chunk@Length", str(length).encode(), None, None),
        ("file@Length", str(total).encode(), None, None),
    ]


CHARSET: Part = ("_charset_", b"utf-8", None, None)


async def post(
    client: httpx.AsyncClient,
    token: str | None,
    parts: list[Part],
    *,
    url: str = URL,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body, ctype = multipart(parts)
    h = {"Content-Type": ctype, **(headers or {})}
    if token is not None:
        h.update(bearer(token))
    return await client.post(url, content=body, headers=h)


async def send_file(
    client: httpx.AsyncClient, token: str, name: str, data: bytes, chunk: int | None = None
) -> list[httpx.Response]:
    """As @adobe/httptransfer sends a file: one request, or sequential chunks."""
    if chunk is None or chunk >= len(data):
        return [await post(client, token, [CHARSET, file_part(name, data)])]
    answers = []
    for offset in range(0, len(data), chunk):
        piece = data[offset : offset + chunk]
        parts = [CHARSET, *chunk_fields(offset, len(piece), len(data)), file_part(name, piece)]
        headers = {"x-chunked-content-type": "image/jpeg", "x-chunked-total-size": str(len(data))}
        answers.append(await post(client, token, parts, headers=headers))
    return answers


def sling(response: httpx.Response) -> dict[str, str]:
    """The values of Sling's HTML post response, by element id."""
    assert response.headers["content-type"].startswith("text/html")
    found = dict(re.findall(r'id="(\w+)">([^<]*)<', response.text))
    return found


@pytest.fixture
async def folder(client: httpx.AsyncClient, tokens: Tokens) -> str:
    assert (await make_folder(client, tokens.write, "photos")).status_code == 201
    return FOLDER


async def queued_processing(services: Services, node_id: str) -> int:
    async with services.db.read() as conn:
        rows = (
            await conn.execute(select(jobs.c.payload).where(jobs.c.kind == "process-asset"))
        ).all()
    return sum(1 for (payload,) in rows if node_id in str(payload))


async def test_a_single_request_makes_the_asset(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    data = os.urandom(300_001)
    (r,) = await send_file(client, tokens.write, "pic.jpg", data)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{folder}/pic.jpg"
    page = sling(r)
    assert page["Status"] == "201" and page["Message"] == "Created"
    assert page["Path"] == f"{folder}/pic.jpg" and page["ParentLocation"] == folder
    assert "created(&quot;/content/dam/photos/pic.jpg&quot;)" in page["ChangeLog"]
    got = await client.get(f"{folder}/pic.jpg", headers=bearer(tokens.read))
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/jpeg"
    node = await services.tree.get(f"{folder}/pic.jpg")
    assert node.created_by == "writer" and node.sha1 == hashlib.sha1(data).hexdigest()
    # The write path's own traces: an outbox row and the processing job.
    events = [e.type for e in await outbox_events(services) if e.path == node.path]
    assert events == ["asset.created", "asset.downloaded"]  # the GET above: a download
    assert await queued_processing(services, node.id) == 1


async def test_the_answer_is_json_when_the_client_prefers_it(
    client: httpx.AsyncClient, tokens: Tokens, folder: str
) -> None:
    r = await post(
        client,
        tokens.write,
        [CHARSET, file_part("j.jpg", b"jpeg")],
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["status.code"] == 201 and body["status.message"] == "Created"
    assert body["path"] == f"{folder}/j.jpg" and body["isCreate"] is True
    assert body["changes"] == [{"type": "created", "argument": f"{folder}/j.jpg"}]


async def test_chunks_in_order_make_the_asset_when_the_last_lands(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    data = os.urandom(250_000)
    size = 100_000
    answers = []
    for offset in range(0, len(data), size):
        piece = data[offset : offset + size]
        parts = [CHARSET, *chunk_fields(offset, len(piece), len(data)), file_part("big.jpg", piece)]
        r = await post(
            client,
            tokens.write,
            parts,
            headers={"x-chunked-content-type": "image/jpeg", "x-chunked-total-size": "250000"},
        )
        answers.append(r)
        if offset + size < len(data):
            assert r.status_code == 200, r.text
            assert sling(r)["Status"] == "200"
            # Nothing is in the tree before the last chunk.
            missing = await client.get(f"{folder}/big.jpg", headers=bearer(tokens.read))
            assert missing.status_code == 404
    assert [a.status_code for a in answers] == [200, 200, 201]
    got = await client.get(f"{folder}/big.jpg", headers=bearer(tokens.read))
    assert got.content == data
    node = await services.tree.get(f"{folder}/big.jpg")
    assert node.size == len(data)
    assert await queued_processing(services, node.id) == 1
    # The staging area went with the last chunk.
    root: Path = services.blobs.uploads_dir  # type: ignore[attr-defined]
    assert list(root.iterdir()) == []


async def test_the_last_chunk_sent_again_replaces_itself(
    client: httpx.AsyncClient, tokens: Tokens, folder: str
) -> None:
    """An answer lost on the way: the client sends the same chunk again."""
    data = os.urandom(30)
    first = [CHARSET, *chunk_fields(0, 10, 30), file_part("r.jpg", data[:10])]
    second = [CHARSET, *chunk_fields(10, 10, 30), file_part("r.jpg", data[10:20])]
    third = [CHARSET, *chunk_fields(20, 10, 30), file_part("r.jpg", data[20:])]
    for parts, status in [(first, 200), (second, 200), (second, 200), (third, 201)]:
        r = await post(client, tokens.write, parts)
        assert r.status_code == status, r.text
    got = await client.get(f"{folder}/r.jpg", headers=bearer(tokens.read))
    assert got.content == data


@ON_S3_TOO
async def test_chunks_out_of_order_or_overlapping_are_refused(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    data = os.urandom(40)
    r = await post(client, tokens.write, [*chunk_fields(0, 10, 40), file_part("o.jpg", data[:10])])
    assert r.status_code == 200
    before = await snapshot(services)
    wrong = [
        (20, 10),  # a gap: bytes 10..19 are missing
        (5, 10),  # overlaps the first chunk
        (1, 9),  # inside the first chunk
    ]
    for offset, length in wrong:
        parts = [
            *chunk_fields(offset, length, 40),
            file_part("o.jpg", data[offset : offset + length]),
        ]
        r = await post(client, tokens.write, parts)
        assert r.status_code == 409, (offset, r.text)
        page = sling(r)
        assert page["Status"] == "409"
        assert "file@Offset 10" in page["Message"]
        assert await snapshot(services) == before
    # A first chunk that never came: no upload is in progress for this name.
    parts = [*chunk_fields(10, 10, 40), file_part("never.jpg", data[10:20])]
    r = await post(client, tokens.write, parts)
    assert r.status_code == 409 and "file@Offset 0" in sling(r)["Message"]
    # The upload goes on from where it was.
    for offset in (10, 20, 30):
        parts = [*chunk_fields(offset, 10, 40), file_part("o.jpg", data[offset : offset + 10])]
        r = await post(client, tokens.write, parts)
        assert r.status_code == (201 if offset == 30 else 200), r.text
    got = await client.get(f"{folder}/o.jpg", headers=bearer(tokens.read))
    assert got.content == data


async def test_an_existing_name_gets_a_new_version(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    old, new = os.urandom(1000), os.urandom(1500)
    (r,) = await send_file(client, tokens.write, "v.jpg", old)
    assert r.status_code == 201
    node = await services.tree.get(f"{folder}/v.jpg")
    answers = await send_file(client, tokens.write, "v.jpg", new, chunk=600)
    assert [a.status_code for a in answers] == [200, 200, 200]
    page = sling(answers[-1])
    assert page["Message"] == "OK" and "modified(&quot;" in page["ChangeLog"]
    after = await services.tree.get(f"{folder}/v.jpg")
    assert after.id == node.id and after.size == len(new)
    got = await client.get(f"{folder}/v.jpg", headers=bearer(tokens.read))
    assert got.content == new
    versions = await services.tree.versions(after)
    assert len(versions) == 1 and versions[0].size == len(old)


async def test_replace_asset_makes_the_asset_anew(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    (r,) = await send_file(client, tokens.write, "x.jpg", b"first")
    node = await services.tree.get(f"{folder}/x.jpg")
    parts = [CHARSET, (":replaceAsset", b"true", None, None), file_part("x.jpg", b"second")]
    r = await post(client, tokens.write, parts)
    assert r.status_code == 201, r.text
    after = await services.tree.get(f"{folder}/x.jpg")
    assert after.id != node.id and await services.tree.versions(after) == []


BAD: list[tuple[str, list[Part], int, str]] = [
    ("no file part", [CHARSET, ("other", b"x", None, None)], 400, "no file part"),
    ("two file parts", [file_part("a.jpg", b"a"), file_part("b.jpg", b"b")], 400, "more than one"),
    ("no filename", [("file", b"abc", None, "image/jpeg")], 400, "needs a filename"),
    ("empty file", [file_part("e.jpg", b"")], 400, "empty"),
    ("a name AEM refuses", [file_part("a:b.jpg", b"abc")], 400, "a:b.jpg"),
    (
        "a charset not UTF-8",
        [("_charset_", b"latin-1", None, None), file_part("c.jpg", b"c")],
        400,
        "_charset_",
    ),
    (
        "offset not a number",
        [
            ("file@Offset", b"x", None, None),
            ("chunk@Length", b"3", None, None),
            ("file@Length", b"6", None, None),
            file_part("n.jpg", b"abc"),
        ],
        400,
        "file@Offset must be a whole number",
    ),
    (
        "a negative length",
        [
            ("chunk@Length", b"-3", None, None),
            ("file@Length", b"6", None, None),
            file_part("n.jpg", b"abc"),
        ],
        400,
        "chunk@Length must be a whole number",
    ),
    (
        "a chunk without file@Length",
        [
            ("file@Offset", b"0", None, None),
            ("chunk@Length", b"3", None, None),
            file_part("n.jpg", b"abc"),
        ],
        400,
        "file@Length",
    ),
    (
        "a chunk past the file's end",
        [*chunk_fields(4, 3, 6), file_part("n.jpg", b"abc")],
        400,
        "past file@Length",
    ),
    (
        "fewer bytes than chunk@Length",
        [*chunk_fields(0, 5, 10), file_part("n.jpg", b"abc")],
        400,
        "holds 3 bytes",
    ),
    (
        "more bytes than chunk@Length",
        [*chunk_fields(0, 2, 10), file_part("n.jpg", b"abc")],
        400,
        "more than chunk@Length",
    ),
    (
        "chunk fields after the file",
        [file_part("n.jpg", b"abc"), *chunk_fields(0, 3, 6)],
        400,
        "must come before the file part",
    ),
    (
        "replaceAsset not a boolean",
        [file_part("n.jpg", b"abc"), ("replaceAsset", b"yes", None, None)],
        400,
        "replaceAsset must be true or false",
    ),
    (
        "a field given twice",
        [
            ("_charset_", b"utf-8", None, None),
            ("_charset_", b"utf-8", None, None),
            file_part("n.jpg", b"abc"),
        ],
        400,
        "more than once",
    ),
]


@pytest.mark.parametrize(("what", "parts", "status", "message"), BAD, ids=[b[0] for b in BAD])
async def test_bad_fields_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    tokens: Tokens,
    folder: str,
    services: Services,
    what: str,
    parts: list[Part],
    status: int,
    message: str,
) -> None:
    before = await snapshot(services)
    r = await post(client, tokens.write, parts)
    assert r.status_code == status, (what, r.text)
    page = sling(r)
    assert page["Status"] == str(status)
    assert message in page["Message"].replace("&#x27;", "'"), page["Message"]
    assert await snapshot(services) == before


async def test_a_bad_chunk_leaves_the_upload_as_it_was(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    data = os.urandom(20)
    r = await post(client, tokens.write, [*chunk_fields(0, 10, 20), file_part("k.jpg", data[:10])])
    assert r.status_code == 200
    before = await snapshot(services)
    short = [*chunk_fields(10, 10, 20), file_part("k.jpg", data[10:15])]
    assert (await post(client, tokens.write, short)).status_code == 400
    late = [file_part("k.jpg", data[10:]), *chunk_fields(10, 10, 20)]
    assert (await post(client, tokens.write, late)).status_code == 400
    assert await snapshot(services) == before
    good = [*chunk_fields(10, 10, 20), file_part("k.jpg", data[10:])]
    assert (await post(client, tokens.write, good)).status_code == 201
    got = await client.get(f"{folder}/k.jpg", headers=bearer(tokens.read))
    assert got.content == data


async def test_other_refusals(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    before = await snapshot(services)
    missing = await post(
        client, tokens.write, [file_part("a.jpg", b"abc")], url="/content/dam/nope.createasset.html"
    )
    assert missing.status_code == 404 and sling(missing)["Status"] == "404"
    form = await client.post(
        URL, data={"file": "abc"}, headers=bearer(tokens.write)
    )  # urlencoded, not multipart
    assert form.status_code == 400 and "multipart/form-data" in sling(form)["Message"]
    truncated, ctype = multipart([file_part("t.jpg", b"abcdef")])
    cut = await client.post(
        URL, content=truncated[:-20], headers={**bearer(tokens.write), "Content-Type": ctype}
    )
    assert cut.status_code == 400, cut.text
    # Whatever follows the closing boundary is read to a bound, not forever.
    body, ctype = multipart([file_part("t.jpg", b"abcdef")])
    tail = await client.post(
        URL,
        content=body + b"x" * (300 * 1024),
        headers={**bearer(tokens.write), "Content-Type": ctype},
    )
    assert tail.status_code == 413, tail.text
    assert await snapshot(services) == before


async def test_credentials_as_for_every_write(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    before = await snapshot(services)
    anonymous = await post(client, None, [file_part("a.jpg", b"abc")])
    assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
    assert sling(anonymous)["Status"] == "401"
    reader = await post(client, tokens.read, [file_part("a.jpg", b"abc")])
    assert reader.status_code == 403
    assert await snapshot(services) == before
    # Basic, as the AEM clients send it (the token is the password).
    basic = httpx.BasicAuth("admin", tokens.write)
    body, ctype = multipart([file_part("b.jpg", b"abc")])
    r = await client.post(URL, content=body, headers={"Content-Type": ctype}, auth=basic)
    assert r.status_code == 201


@pytest.mark.parametrize("settings_overrides", [{"upload_max_part_size": 1000}])
async def test_sizes_are_bounded_by_the_settings(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    before = await snapshot(services)
    (one,) = await send_file(client, tokens.write, "s.jpg", os.urandom(1001))
    assert one.status_code == 413 and "send larger files in chunks" in sling(one)["Message"]
    big_chunk = [*chunk_fields(0, 1001, 5000), file_part("s.jpg", os.urandom(1001))]
    r = await post(client, tokens.write, big_chunk)
    assert r.status_code == 413 and "chunk@Length" in sling(r)["Message"]
    assert await snapshot(services) == before
    answers = await send_file(client, tokens.write, "s.jpg", os.urandom(2500), chunk=1000)
    assert [a.status_code for a in answers] == [200, 200, 201]


async def test_the_sweep_removes_an_upload_left_unfinished(
    client: httpx.AsyncClient,
    tokens: Tokens,
    folder: str,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = os.urandom(20)
    r = await post(client, tokens.write, [*chunk_fields(0, 10, 20), file_part("u.jpg", data[:10])])
    assert r.status_code == 200
    root: Path = services.blobs.uploads_dir  # type: ignore[attr-defined]
    (staged,) = list(root.iterdir())
    if services.settings.database_url:
        monkeypatch.setenv("ASSETVAULT_DATABASE_URL", services.settings.database_url)
    args = ["sweep", "--data-dir", str(services.settings.data_dir)]
    # Younger than an upload token lives: kept.
    assert await asyncio.to_thread(main, args) == 0
    assert staged.exists()
    old = time.time() - services.settings.upload_token_ttl_seconds - 60
    for path in [staged, *staged.iterdir()]:
        os.utime(path, (old, old))
    assert await asyncio.to_thread(main, args) == 0
    assert not staged.exists()
    # The rest of the upload finds nothing to go on from.
    rest = [*chunk_fields(10, 10, 20), file_part("u.jpg", data[10:])]
    r = await post(client, tokens.write, rest)
    assert r.status_code == 409 and "file@Offset 0" in sling(r)["Message"]
