"""The blob stores the tests of the port and of each store run on."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from assetvault.adapters.blobs.base import BlobBackend
from assetvault.adapters.blobs.local import LocalBlobStore
from assetvault.adapters.blobs.s3 import S3BlobStore, S3Location
from tests.fakes import FakeBlobStore
from tests.s3 import S3Server

UPLOAD = "0123456789abcdef0123456789abcdef"
MIB = 1024 * 1024
S3_MIN_PART = 5 * MIB  # the smallest part S3 takes (but the last): the stores' parts test it
REAL = ["local", "moto", pytest.param("rgw", marks=pytest.mark.s3)]
S3 = ["moto", pytest.param("rgw", marks=pytest.mark.s3)]


async def stream(data: bytes, chunk: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(store: BlobBackend, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([c async for c in store.read(key, start, end)])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def moto_store(endpoint: str) -> S3BlobStore:
    """On a new bucket of moto's in-process server, with the client the URL makes."""
    bucket = f"t-{os.urandom(8).hex()}"
    where = S3Location.parse(f"s3://{bucket}/assets?endpoint={endpoint}&region=us-east-1")
    client = where.client(credentials=("moto", "moto"))
    client.create_bucket(Bucket=bucket)
    return S3BlobStore(client, bucket, where.prefix, part_bytes=S3_MIN_PART)


def rgw_store(request: pytest.FixtureRequest) -> S3BlobStore:
    """On a new prefix of the session's bucket on Ceph RGW (tests/s3.py)."""
    server: S3Server = request.getfixturevalue("s3_server")
    store = S3BlobStore.from_url(server.fresh_url())
    store.part_bytes = S3_MIN_PART
    return store


def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str | None = None
) -> BlobBackend:
    """The store ``kind`` names (default: the fixture's parameter), closed after the test."""
    kind = kind or request.param
    if kind == "local":
        return LocalBlobStore(tmp_path / "blobs")
    if kind == "fake":
        return FakeBlobStore()
    store = (
        moto_store(request.getfixturevalue("moto_endpoint"))
        if kind == "moto"
        else rgw_store(request)
    )
    request.addfinalizer(store.close)
    return store
