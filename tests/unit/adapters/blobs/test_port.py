"""The blob store port's contract, held by the local store and by the in-memory fake the
service tests use (tests/fakes.py), so the fake cannot drift from the real thing."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assetvault.adapters.blobs.base import BlobBackend, BlobMissing, PartsIncomplete
from assetvault.adapters.blobs.local import LocalBlobStore
from tests.fakes import FakeBlobStore


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.fixture(params=["local", "fake"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobBackend:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return FakeBlobStore()


async def test_put_read_size_delete(store: BlobBackend) -> None:
    info = await store.put(stream(b"hello ", b"world"))
    assert info.key == hashlib.sha256(b"hello world").hexdigest()
    assert (info.size, info.sha1) == (11, hashlib.sha1(b"hello world").hexdigest())
    assert await store.size(info.key) == 11
    assert b"".join([c async for c in store.read(info.key, 2, 6)]) == b"llo w"
    assert b"".join([c async for c in store.read(info.key)]) == b"hello world"
    await store.delete(info.key)
    assert await store.size(info.key) is None


async def test_local_copy_and_scratch(store: BlobBackend) -> None:
    info = await store.put(stream(b"original"))
    async with store.local_copy(info.key) as path:
        assert path.read_bytes() == b"original"
    with pytest.raises(BlobMissing):
        async with store.local_copy("f" * 64):
            pass
    async with store.scratch() as d:
        (d / "r.png").write_bytes(b"rendition")
        made = await store.put_file(d / "r.png")
        assert not (d / "r.png").exists()  # taken over
    assert not d.exists()
    assert made.key == hashlib.sha256(b"rendition").hexdigest()
    assert await store.size(made.key) == len(b"rendition")


async def test_staging_assembles_contiguous_parts(store: BlobBackend) -> None:
    upload = "00ff"
    assert await store.write_part(upload, 2, stream(b"world"), 100) == 5
    with pytest.raises(PartsIncomplete):
        await store.assemble(upload, 11)
    assert await store.write_part(upload, 1, stream(b"hello "), 100) == 6
    assert await store.received(upload) == {1: 6, 2: 5}
    info = await store.assemble(upload, 11)
    assert info.key == hashlib.sha256(b"hello world").hexdigest()
    assert await store.assemble(upload, 11) == info  # a retried complete
    assert await store.staged_blob_keys() == {info.key}
    await store.discard(upload)
    assert await store.staged_blob_keys() == set()
    assert await store.size(info.key) == 11
