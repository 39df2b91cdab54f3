"""The blob store port's contract, held by every store: the local directory, S3 on moto
(in-process, fast), S3 on Ceph RGW (a real server, marked ``s3``), and the in-memory fake
the service tests use (tests/fakes.py), so the fake cannot drift from the real thing.
What only one store does (its files, its locks, its crash leftovers) is tested beside it
(test_local.py, test_s3.py)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import httpx
import pytest

from assetvault.adapters.blobs.base import (
    BlobBackend,
    BlobMissing,
    PartConflict,
    PartsIncomplete,
    PartTooLarge,
)
from assetvault.adapters.blobs.local import LocalBlobStore
from assetvault.adapters.blobs.s3 import S3BlobStore
from tests.unit.adapters.blobs.conftest import (
    MIB,
    REAL,
    S3_MIN_PART,
    UPLOAD,
    chunks,
    make_store,
    read_all,
    stream,
)


@pytest.fixture(params=["fake", *REAL])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobBackend:
    """Every store, the fake included."""
    return make_store(request, tmp_path)


@pytest.fixture(params=REAL)
def real(request: pytest.FixtureRequest, tmp_path: Path) -> BlobBackend:
    """The stores a deployment runs on (rules the fake does not model)."""
    return make_store(request, tmp_path)


# -- blobs ---------------------------------------------------------------------------------


async def test_put_read_size_delete(store: BlobBackend) -> None:
    info = await store.put(chunks(b"hello ", b"world"))
    assert info.key == hashlib.sha256(b"hello world").hexdigest()
    assert (info.size, info.sha1) == (11, hashlib.sha1(b"hello world").hexdigest())
    assert await store.size(info.key) == 11
    assert await read_all(store, info.key, 2, 6) == b"llo w"
    assert await read_all(store, info.key) == b"hello world"
    await store.delete(info.key)
    assert await store.size(info.key) is None


async def test_put_is_content_addressed_and_deduplicated_past_one_part(
    real: BlobBackend,
) -> None:
    """Larger than a part of the S3 stores' multipart uploads, so it goes up in parts."""
    data = os.urandom(2 * S3_MIN_PART + 17)
    first = await real.put(stream(data, MIB))
    assert first.key == hashlib.sha256(data).hexdigest()
    assert first.sha1 == hashlib.sha1(data).hexdigest()
    assert first.size == len(data)
    assert await real.put(stream(data, MIB)) == first
    assert [k async for k in real.keys_older_than(0)] == [first.key]  # stored once
    assert await read_all(real, first.key) == data


async def test_read_returns_the_requested_range(store: BlobBackend) -> None:
    data = os.urandom(3 * MIB)
    info = await store.put(stream(data))
    assert await read_all(store, info.key, 1000, 2_500_000) == data[1000:2_500_001]
    assert await read_all(store, info.key, 3 * MIB - 5) == data[-5:]
    assert await read_all(store, info.key) == data


async def test_empty_blob(store: BlobBackend) -> None:
    info = await store.put(chunks())
    assert (info.key, info.size) == (hashlib.sha256(b"").hexdigest(), 0)
    assert await store.size(info.key) == 0
    assert await read_all(store, info.key) == b""


async def test_local_copy_and_scratch(store: BlobBackend, tmp_path: Path) -> None:
    info = await store.put(chunks(b"original"))
    async with store.local_copy(info.key) as path:
        assert path.read_bytes() == b"original"
    with pytest.raises(BlobMissing):
        async with store.local_copy("f" * 64):
            pass
    async with store.scratch() as d:
        assert d.is_dir() and not list(d.iterdir())
        (d / "r.png").write_bytes(b"rendition")
        (d / "left.tmp").write_bytes(b"not stored")
        made = await store.put_file(d / "r.png")
        assert not (d / "r.png").exists()  # taken over
    assert not d.exists()
    assert made.key == hashlib.sha256(b"rendition").hexdigest()
    assert await read_all(store, made.key) == b"rendition"
    (tmp_path / "again").write_bytes(b"rendition")
    assert await store.put_file(tmp_path / "again") == made  # stored once


async def test_served_file_is_the_blob_on_local_disk_and_none_elsewhere(
    store: BlobBackend,
) -> None:
    info = await store.put(chunks(b"bytes to send"))
    path = await store.served_file(info.key)
    if isinstance(store, LocalBlobStore):
        assert path is not None and path.read_bytes() == b"bytes to send"
        assert await store.served_file("f" * 64) is None
    else:  # an object store, or the fake's memory: nothing on this machine's disk
        assert path is None
    assert await read_all(store, info.key) == b"bytes to send"  # unchanged by asking


async def test_download_url_answers_the_bytes_with_the_given_headers_where_there_is_one(
    store: BlobBackend,
) -> None:
    info = await store.put(chunks(b"0123456789" * 100))
    url = await store.download_url(
        info.key,
        expires_seconds=60,
        content_type="text/plain; charset=utf-8",
        content_disposition="attachment; filename*=UTF-8''a%20b.txt",
        cache_control="private, max-age=60",
    )
    if not isinstance(store, S3BlobStore):  # the API serves these stores' bytes itself
        assert url is None
        return
    assert url is not None
    async with httpx.AsyncClient() as client:
        got = await client.get(url)
        assert got.status_code == 200 and got.content == b"0123456789" * 100
        assert got.headers["content-type"] == "text/plain; charset=utf-8"
        assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''a%20b.txt"
        assert got.headers["cache-control"] == "private, max-age=60"
        ranged = await client.get(url, headers={"Range": "bytes=5-14"})
        assert ranged.status_code == 206 and ranged.content == b"5678901234"


async def test_cached_bytes_are_a_local_blobs_cached_bytes_and_none_elsewhere(
    store: BlobBackend,
) -> None:
    info = await store.put(chunks(b"small bytes to send"))
    await read_all(store, info.key)  # now in the page cache
    if isinstance(store, LocalBlobStore):
        assert store.cached_bytes(info.key, 0, 19) == b"small bytes to send"
        assert store.cached_bytes(info.key, 6, 5) == b"bytes"
        assert store.cached_bytes(info.key, 6, 50) is None  # fewer there than asked
        assert store.cached_bytes("f" * 64, 0, 1) is None  # no such blob
    else:  # an object store, or the fake's memory: nothing on this machine's disk
        assert store.cached_bytes(info.key, 0, 19) is None


async def test_local_copy_is_the_blob_and_gone_after_the_block_where_it_is_a_copy(
    real: BlobBackend,
) -> None:
    info = await real.put(chunks(b"bytes to read"))
    async with real.local_copy(info.key) as path:
        assert path.read_bytes() == b"bytes to read"
    assert await real.size(info.key) == len(b"bytes to read")  # the blob stays
    if not isinstance(real, LocalBlobStore):  # the local store lends its own file
        assert not path.exists()


async def test_keys_older_than_lists_only_old_blobs(real: BlobBackend) -> None:
    old = await real.put(chunks(b"old"))
    # S3 keeps modification times to the second, and the store takes a whole second to
    # stand for any instant up to a second later: old is "stored by" at most 1 s after
    # its put, so 1.5 s before now needs more than 2.5 s between the two puts.
    await asyncio.sleep(3.1)
    new = await real.put(chunks(b"new"))
    assert [k async for k in real.keys_older_than(1.5)] == [old.key]
    assert sorted([k async for k in real.keys_older_than(0)]) == sorted([old.key, new.key])
    await real.touch(old.key)
    assert [k async for k in real.keys_older_than(1.5)] == []  # freshly referenced


async def test_a_blob_stored_after_an_instant_is_not_older_than_it(real: BlobBackend) -> None:
    """What the start-up sweep asks: is a blob older than the server's start? One stored
    just after it, in the same second, is not, though an object store tells its time to
    the second (AWS and moto list whole seconds)."""
    await asyncio.sleep(1.05 - time.time() % 1)  # early in a second: the put ends in it
    before = time.time()
    info = await real.put(chunks(b"stored after the instant"))
    assert time.time() - before < 0.9, "the put took too long for this test to tell"
    assert [k async for k in real.keys_older_than(time.time() - before)] == []
    assert [k async for k in real.keys_older_than(0)] == [info.key]  # nothing is younger


async def test_keys_and_upload_ids_are_validated(real: BlobBackend) -> None:
    for key in ("../../etc/passwd", "a" * 63 + "/", "A" * 64):
        with pytest.raises(ValueError):
            await read_all(real, key)
        with pytest.raises(ValueError):
            await real.size(key)
    for upload in ("../x", "", "0a/../0b", "ABCD"):
        with pytest.raises(ValueError):
            await real.write_part(upload, 1, stream(b"x"), 10)


# -- upload staging --------------------------------------------------------------------------


async def test_staging_assembles_contiguous_parts(store: BlobBackend) -> None:
    upload = "00ff"
    assert await store.write_part(upload, 2, chunks(b"world"), 100) == 5
    with pytest.raises(PartsIncomplete):
        await store.assemble(upload, 11)
    assert await store.write_part(upload, 1, chunks(b"hello "), 100) == 6
    assert await store.received(upload) == {1: 6, 2: 5}
    info = await store.assemble(upload, 11)
    assert info.key == hashlib.sha256(b"hello world").hexdigest()
    assert await store.assemble(upload, 11) == info  # a retried complete
    assert await store.staged_blob_keys() == {info.key}
    await store.discard(upload)
    assert await store.staged_blob_keys() == set()
    assert await store.size(info.key) == 11


async def test_parts_out_of_order_and_at_once_are_joined_in_order(real: BlobBackend) -> None:
    parts = [os.urandom(300_000) for _ in range(4)]
    await real.write_part(UPLOAD, 3, stream(parts[2]), 10**6)
    await asyncio.gather(
        *(real.write_part(UPLOAD, n, stream(parts[n - 1]), 10**6) for n in (4, 1, 2))
    )
    assert await real.received(UPLOAD) == {n: 300_000 for n in range(1, 5)}
    info = await real.assemble(UPLOAD, 1_200_000)
    assert await read_all(real, info.key) == b"".join(parts)
    assert info.sha1 == hashlib.sha1(b"".join(parts)).hexdigest()


async def test_large_parts_are_joined(real: BlobBackend) -> None:
    """Parts larger than one part of the S3 stores' own multipart uploads."""
    parts = [os.urandom(S3_MIN_PART + 1000), os.urandom(S3_MIN_PART + 3), b"tail"]
    for n, part in enumerate(parts, start=1):
        assert await real.write_part(UPLOAD, n, stream(part, MIB), 20 * MIB) == len(part)
    data = b"".join(parts)
    info = await real.assemble(UPLOAD, len(data))
    assert info.key == hashlib.sha256(data).hexdigest()
    assert await read_all(real, info.key) == data


async def test_missing_part_refuses_and_keeps_what_was_received(real: BlobBackend) -> None:
    await real.write_part(UPLOAD, 1, stream(b"a" * 10), 100)
    await real.write_part(UPLOAD, 3, stream(b"c" * 10), 100)
    with pytest.raises(PartsIncomplete, match="10 bytes of 30"):
        await real.assemble(UPLOAD, 30)
    assert await real.received(UPLOAD) == {1: 10, 3: 10}
    await real.write_part(UPLOAD, 2, stream(b"b" * 10), 100)
    info = await real.assemble(UPLOAD, 30)
    assert await read_all(real, info.key) == b"a" * 10 + b"b" * 10 + b"c" * 10


async def test_parts_that_do_not_add_up_are_refused(real: BlobBackend) -> None:
    await real.write_part(UPLOAD, 1, stream(b"a" * 10), 100)
    with pytest.raises(PartsIncomplete):
        await real.assemble(UPLOAD, 9)
    with pytest.raises(PartsIncomplete):
        await real.assemble(UPLOAD, 11)
    assert await real.staged_blob_keys() == set()


async def test_too_large_part_leaves_nothing(real: BlobBackend) -> None:
    with pytest.raises(PartTooLarge):
        await real.write_part(UPLOAD, 1, stream(b"x" * 1000, 100), 999)
    big = os.urandom(S3_MIN_PART + MIB)  # refused after a multipart upload began
    with pytest.raises(PartTooLarge):
        await real.write_part(UPLOAD, 2, stream(big, MIB), S3_MIN_PART + 10)
    assert await real.received(UPLOAD) == {}
    assert await real.sweep(0) == 0  # nothing was left to remove either


async def test_retried_part_replaces_and_conflicting_size_is_refused(real: BlobBackend) -> None:
    await real.write_part(UPLOAD, 1, stream(b"a" * 10), 100)
    await real.write_part(UPLOAD, 2, stream(b"b" * 10), 100)
    await real.write_part(UPLOAD, 1, stream(b"A" * 10), 100)
    with pytest.raises(PartConflict):
        await real.write_part(UPLOAD, 1, stream(b"A" * 11), 100)
    assert await real.received(UPLOAD) == {1: 10, 2: 10}
    info = await real.assemble(UPLOAD, 20)
    assert info.key == hashlib.sha256(b"A" * 10 + b"b" * 10).hexdigest()


async def test_a_completed_upload_takes_no_more_parts_and_assembles_the_same(
    real: BlobBackend,
) -> None:
    await real.write_part(UPLOAD, 1, stream(b"z" * 50), 100)
    info = await real.assemble(UPLOAD, 50)
    with pytest.raises(PartConflict):
        await real.write_part(UPLOAD, 1, stream(b"z" * 50), 100)
    assert await real.assemble(UPLOAD, 50) == info  # a retried complete
    assert await read_all(real, info.key) == b"z" * 50


async def test_an_upload_discarded_by_a_racing_complete_is_refused(real: BlobBackend) -> None:
    await real.write_part(UPLOAD, 1, stream(b"race"), 100)
    await real.assemble(UPLOAD, 4)
    await real.discard(UPLOAD)  # the winner committed its asset
    with pytest.raises(PartsIncomplete):
        await real.assemble(UPLOAD, 4)
    assert await real.received(UPLOAD) == {}


async def test_empty_upload_assembles_to_an_empty_blob(real: BlobBackend) -> None:
    info = await real.assemble(UPLOAD, 0)
    assert (info.size, info.key) == (0, hashlib.sha256(b"").hexdigest())


async def test_sweep_removes_only_stale_uploads(real: BlobBackend) -> None:
    other = "f" * 32
    await real.write_part(UPLOAD, 1, stream(b"old"), 100)
    await asyncio.sleep(2.1)
    await real.write_part(other, 1, stream(b"new"), 100)
    started = time.monotonic()
    assert await real.sweep(1.5) == 1
    assert time.monotonic() - started < 1  # else "new" may have aged too
    assert await real.received(UPLOAD) == {}
    assert await real.received(other) == {1: 3}


async def test_clear_removes_every_blob_and_staged_upload(store: BlobBackend) -> None:
    """What a reset on PostgreSQL asks of the store: nothing left, and the store still
    takes new blobs afterwards."""
    keys = [(await store.put(chunks(b"rock %d" % i))).key for i in range(5)]
    await store.write_part(UPLOAD, 1, chunks(b"part"), MIB)
    assert await store.received(UPLOAD) == {1: 4}

    assert await store.clear() == 5

    for key in keys:
        assert await store.size(key) is None
    assert [k async for k in store.keys_older_than(-3600)] == []
    assert await store.received(UPLOAD) == {}
    again = await store.put(chunks(b"rock 0"))
    assert again.key == keys[0]
    assert await read_all(store, again.key) == b"rock 0"
