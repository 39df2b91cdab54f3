"""Direct binary upload with the blobs on S3 (Ceph RGW): the parts go straight to the
object store through presigned URLs of one multipart upload, never through the API, and
complete refuses there what the store could not refuse as the parts arrived."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tests.api.adobe.conftest import adobe
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
)
from tests.s3 import FollowToStore, S3Server

from assetvault.adapters.blobs.s3 import S3BlobStore, direct_blob_key
from assetvault.app import create_app
from assetvault.services import Services

pytestmark = pytest.mark.s3

FOLDER = "/content/dam/photos"
MIB = 2**20


@pytest.fixture
def blobs_backend() -> str:
    return "s3"


class BodyCounter:
    """ASGI middleware counting the request body bytes the API receives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.received = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@pytest.fixture
def counter(services: Services) -> BodyCounter:
    return BodyCounter(create_app(services=services))


@pytest.fixture
async def client(counter: BodyCounter, s3_server: S3Server) -> AsyncIterator[httpx.AsyncClient]:
    transport = FollowToStore(httpx.ASGITransport(app=counter), s3_server.endpoint)
    async with httpx.AsyncClient(transport=transport, base_url="http://assetvault.test") as c:
        yield c


@pytest.fixture
async def folder(client: httpx.AsyncClient, tokens: Tokens) -> str:
    assert (await make_folder(client, tokens.write, "photos")).status_code == 201
    return FOLDER


def store(services: Services) -> S3BlobStore:
    assert isinstance(services.blobs, S3BlobStore)
    return services.blobs


async def multipart_uploads(services: Services) -> list[str]:
    s = store(services)
    page = s.client.list_multipart_uploads(Bucket=s.bucket, Prefix=s.prefix)
    return [u["Key"] for u in page.get("Uploads", [])]


async def test_parts_go_to_the_store_and_processing_records_the_sha1(
    client: httpx.AsyncClient,
    tokens: Tokens,
    folder: str,
    services: Services,
    counter: BodyCounter,
    s3_server: S3Server,
) -> None:
    data = os.urandom(40 * MIB + 123)
    r = await initiate(client, tokens.write, folder, [("big.bin", len(data))])
    assert r.status_code == 201, r.text
    file = r.json()["files"][0]
    assert len(file["uploadURIs"]) == 3
    assert all(u.startswith(s3_server.endpoint + "/") for u in file["uploadURIs"])
    assert all("X-Amz-Signature=" in u and "uploadId=" in u for u in file["uploadURIs"])
    # S3 refuses parts under 5 MiB but the last: the client is told so.
    assert file["minPartSize"] == 5 * MIB and file["maxPartSize"] == 256 * MIB
    for part in await put_parts(client, file, data):
        assert part.status_code == 200, part.text
    c = await complete(client, tokens.write, folder, file, len(data))
    assert c.status_code == 200, c.text
    body = c.json()
    assert body["fileSize"] == len(data) and body["sha1"] is None
    assert counter.received < 64 * 1024  # forms only: no part passed through the API

    node = await services.tree.get(f"{folder}/big.bin")
    assert (node.size, node.sha1, node.asset_state) == (len(data), None, "processing")
    ticket = services.uploads.tokens.read_upload_token(file["uploadToken"])
    assert node.blob_key == direct_blob_key(ticket.upload_id)
    got = await client.get(f"{folder}/big.bin", headers=bearer(tokens.read))
    assert got.status_code == 200 and hashlib.sha1(got.content).digest() == (
        hashlib.sha1(data).digest()
    )
    assert await multipart_uploads(services) == []  # completed
    await process_all(services)
    node = await services.tree.get(f"{folder}/big.bin")
    assert node.sha1 == hashlib.sha1(data).hexdigest()
    meta = await client.get(f"/adobe/assets/{node.urn}/metadata", headers=adobe(tokens.read))
    assert meta.json()["repositoryMetadata"]["dam:sha1"] == node.sha1
    events = [e for e in await outbox_events(services) if e.path == node.path]
    assert events[0].type == "asset.created" and events[0].data["sha1"] is None
    done = [e for e in events if e.type == "asset.processing_completed"]
    assert done and done[-1].data["sha1"] == node.sha1


async def test_a_replayed_part_and_a_replayed_complete(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    data = os.urandom(6 * MIB)
    r = await initiate(client, tokens.write, folder, [("again.bin", len(data))])
    file = r.json()["files"][0]
    [uri] = file["uploadURIs"]
    assert (await client.put(uri, content=b"x" * len(data))).status_code == 200
    assert (await client.put(uri, content=data)).status_code == 200  # the same part again
    first = await complete(client, tokens.write, folder, file, len(data))
    assert first.status_code == 200, first.text
    before = await snapshot(services)
    again = await complete(client, tokens.write, folder, file, len(data))
    assert again.status_code == 409 and "already used" in again.text
    assert await snapshot(services) == before
    got = await client.get(f"{folder}/again.bin", headers=bearer(tokens.read))
    assert got.content == data


async def test_a_complete_cut_off_before_its_row_finds_the_object_again(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    data = b"cut off" * 1000
    r = await initiate(client, tokens.write, folder, [("cut.bin", len(data))])
    file = r.json()["files"][0]
    await put_parts(client, file, data)
    ticket = services.uploads.tokens.read_upload_token(file["uploadToken"])
    assert ticket.store_upload is not None
    # The multipart upload completed, then the process died before the row.
    await store(services).complete_direct(
        ticket.upload_id, ticket.store_upload, len(data), ticket.max_part_size
    )
    c = await complete(client, tokens.write, folder, file, len(data))
    assert c.status_code == 200, c.text
    got = await client.get(f"{folder}/cut.bin", headers=bearer(tokens.read))
    assert got.content == data
    # The record that kept the object from the sweep went with the complete.
    assert await store(services).staged_blob_keys() == set()


@pytest.mark.parametrize(
    ("sizes", "declared", "why"),
    [
        ((7 * MIB, 5 * MIB), 12 * MIB, "a part may hold at most"),
        ((6 * MIB, 6 * MIB), 11 * MIB, "more than the"),
    ],
)
async def test_too_much_is_413_at_complete_and_the_upload_is_aborted(
    client: httpx.AsyncClient,
    tokens: Tokens,
    folder: str,
    services: Services,
    sizes: tuple[int, int],
    declared: int,
    why: str,
) -> None:
    services.settings.upload_max_part_size = 6 * MIB
    services.settings.upload_preferred_part_size = 6 * MIB
    r = await initiate(client, tokens.write, folder, [("over.bin", declared)])
    file = r.json()["files"][0]
    assert len(file["uploadURIs"]) == 2 and file["maxPartSize"] == 6 * MIB
    for uri, size in zip(file["uploadURIs"], sizes, strict=True):
        # The store cannot refuse a part larger than announced: it takes it.
        assert (await client.put(uri, content=os.urandom(size))).status_code == 200
    assert len(await multipart_uploads(services)) == 1
    before = await snapshot(services)
    c = await complete(client, tokens.write, folder, file, declared)
    assert c.status_code == 413, c.text
    assert why in c.json()["properties"]["status.message"]
    assert await snapshot(services) == before
    assert await multipart_uploads(services) == []  # aborted: its parts are gone
    late = await client.put(file["uploadURIs"][0], content=b"late")
    assert late.status_code == 404
    again = await complete(client, tokens.write, folder, file, declared)
    assert again.status_code == 400 and "initiate it again" in again.text
    missing = await client.get(f"{folder}/over.bin", headers=bearer(tokens.read))
    assert missing.status_code == 404


async def test_a_part_too_small_for_the_store_is_400(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    services.settings.upload_preferred_part_size = 6 * MIB
    data = os.urandom(12 * MIB)
    r = await initiate(client, tokens.write, folder, [("small.bin", len(data))])
    file = r.json()["files"][0]
    first, second = file["uploadURIs"]
    await client.put(first, content=data[: 1 * MIB])  # under S3's 5 MiB, not the last
    await client.put(second, content=data[1 * MIB :])
    before = await snapshot(services)
    c = await complete(client, tokens.write, folder, file, len(data))
    assert c.status_code == 400, c.text
    assert await snapshot(services) == before


async def test_the_sweep_aborts_abandoned_uploads_and_removes_unreferenced_objects(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    data = b"abandoned" * 100
    # One upload left with its parts sent, never completed.
    r = await initiate(client, tokens.write, folder, [("left.bin", len(data))])
    await put_parts(client, r.json()["files"][0], data)
    # One completed in the store whose row never came (its process died).
    r = await initiate(client, tokens.write, folder, [("lost.bin", len(data))])
    lost = r.json()["files"][0]
    await put_parts(client, lost, data)
    ticket = services.uploads.tokens.read_upload_token(lost["uploadToken"])
    assert ticket.store_upload is not None
    blob = await store(services).complete_direct(
        ticket.upload_id, ticket.store_upload, len(data), ticket.max_part_size
    )
    # And one completed as it should be.
    r = await initiate(client, tokens.write, folder, [("kept.bin", len(data))])
    kept = r.json()["files"][0]
    await put_parts(client, kept, data)
    assert (await complete(client, tokens.write, folder, kept, len(data))).status_code == 200

    # While their tokens last, the sweep leaves them all.
    await services.maintenance.sweep(0, services.settings.upload_token_ttl_seconds)
    assert len(await multipart_uploads(services)) == 1
    assert await services.blobs.size(blob.key) == len(data)
    # Past the tokens' life: the upload is aborted, the object nothing refers to removed.
    report = await services.maintenance.sweep(0, 0)
    assert report.blobs_removed == 1
    assert await multipart_uploads(services) == []
    assert await services.blobs.size(blob.key) is None
    got = await client.get(f"{folder}/kept.bin", headers=bearer(tokens.read))
    assert got.content == data


async def test_processing_fails_an_object_that_is_not_the_size_announced(
    client: httpx.AsyncClient, tokens: Tokens, folder: str, services: Services
) -> None:
    data = b"as announced" * 100
    r = await initiate(client, tokens.write, folder, [("changed.bin", len(data))])
    file = r.json()["files"][0]
    await put_parts(client, file, data)
    assert (await complete(client, tokens.write, folder, file, len(data))).status_code == 200
    node = await services.tree.get(f"{folder}/changed.bin")
    # Someone with write access to the bucket replaces the object before processing.
    s = store(services)
    assert node.blob_key is not None
    s.client.put_object(Bucket=s.bucket, Key=s._blob_key(node.blob_key), Body=b"other")
    await process_all(services)
    node = await services.tree.get(f"{folder}/changed.bin")
    assert node.asset_state == "failed" and node.sha1 is None
    assert node.processing_error is not None and "holds 5 bytes" in node.processing_error
