"""What only the S3 store does: its URL, its leftovers after a process dies between two
steps (multipart uploads begun, temporary objects, a complete that stored its blob but
not its record), constant memory and a free event loop. On moto and on Ceph RGW; the
port's contract is test_port.py."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assetvault.adapters.blobs.base import PartTooLarge
from assetvault.adapters.blobs.s3 import S3BlobStore, S3Location
from assetvault.services import blob_store_from_url
from tests.unit.adapters.blobs.conftest import (
    MIB,
    S3,
    S3_MIN_PART,
    UPLOAD,
    make_store,
    read_all,
    stream,
)


@pytest.fixture(params=S3)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> S3BlobStore:
    made = make_store(request, tmp_path)
    assert isinstance(made, S3BlobStore)
    return made


@pytest.fixture
def rgw(request: pytest.FixtureRequest, tmp_path: Path) -> S3BlobStore:
    """On the real server only: moto runs in this process, so it would count in the
    memory and event-loop measurements."""
    made = make_store(request, tmp_path, "rgw")
    assert isinstance(made, S3BlobStore)
    return made


def test_the_url_names_bucket_prefix_endpoint_and_region() -> None:
    where = S3Location.parse(
        "s3://assets/dam/prod/?endpoint=http://127.0.0.1:7480&region=eu-west-1"
    )
    assert (where.bucket, where.prefix) == ("assets", "dam/prod/")
    assert (where.endpoint, where.region, where.path_style) == (
        "http://127.0.0.1:7480",
        "eu-west-1",
        True,  # an S3-compatible server by address: path-style
    )
    aws = S3Location.parse("s3://bucket")
    assert (aws.prefix, aws.endpoint, aws.path_style) == ("", None, False)
    assert S3Location.parse("s3://b?endpoint=http://h&addressing=virtual").path_style is False
    for bad in (
        "s3:///nobucket",
        "http://bucket/x",
        "s3://b?endpont=http://h",
        "s3://b?addressing=x",
    ):
        with pytest.raises(ValueError):
            S3Location.parse(bad)


def test_the_settings_url_chooses_the_store(tmp_path: Path) -> None:
    store = blob_store_from_url("s3://bkt/pre?endpoint=http://127.0.0.1:1&region=x", tmp_path)
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix, store.temp_dir) == ("bkt", "pre/", tmp_path)
    store.close()
    with pytest.raises(ValueError):
        blob_store_from_url("ftp://host/x")


@pytest.mark.s3
async def test_objects_are_laid_out_under_the_prefix(rgw: S3BlobStore) -> None:
    info = await rgw.put(stream(b"laid out"))
    await rgw.write_part(UPLOAD, 1, stream(b"part"), 100)
    names = [name for name, _ in await rgw.objects()]
    assert f"blobs/{info.key}" in names
    assert any(n.startswith(f"uploads/{UPLOAD}/part-1.") for n in names)
    listed = rgw.client.list_objects_v2(Bucket=rgw.bucket)["Contents"]
    assert all(o["Key"].startswith(rgw.prefix) for o in listed if rgw.prefix in o["Key"])


@pytest.mark.s3
async def test_a_part_write_that_died_mid_stream_is_aborted_by_the_sweep(
    rgw: S3BlobStore,
) -> None:
    """A process that dies while a part goes up leaves a multipart upload begun: S3 keeps
    (and bills) its parts until it is aborted. (Not on moto: it dates every multipart
    upload to 2010.)"""
    store = rgw
    key = f"{store.prefix}uploads/{UPLOAD}/part-1.dead"
    begun = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)
    store.client.upload_part(
        Bucket=store.bucket, Key=key, UploadId=begun["UploadId"], PartNumber=1, Body=b"x" * 100
    )

    def pending() -> list[Any]:
        return store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix).get(
            "Uploads", []
        )

    assert await store.sweep(0) == 0  # begun less than a day ago: perhaps a long stream
    assert len(pending()) == 1
    store.abandoned_multipart_seconds = 0
    assert await store.sweep(3600) == 0  # and younger than the staging limit
    assert len(pending()) == 1
    assert await store.sweep(0) == 1
    assert pending() == []


async def test_a_refused_part_leaves_no_multipart_upload_behind(store: S3BlobStore) -> None:
    big = os.urandom(2 * S3_MIN_PART + MIB)  # refused after two parts went up
    with pytest.raises(PartTooLarge):
        await store.write_part(UPLOAD, 1, stream(big, MIB), 2 * S3_MIN_PART + 10)
    listed = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    assert listed.get("Uploads", []) == []
    assert await store.objects() == []


async def test_a_put_that_died_before_its_copy_leaves_nothing_after_the_grace(
    store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(S3_MIN_PART + 1)  # past one part: uploaded, then copied into place

    async def die(*args: object) -> None:
        raise KeyboardInterrupt  # the process dies between the upload and the copy

    monkeypatch.setattr(store, "_copy", die)
    with pytest.raises(KeyboardInterrupt):
        await store.put(stream(data, MIB))
    monkeypatch.undo()
    assert [k async for k in store.keys_older_than(3600)] == []
    assert [n for n, _ in await store.objects() if n.startswith("tmp/")] == []
    info = await store.put(stream(data, MIB))  # and a put of the same bytes still works
    assert info.key == hashlib.sha256(data).hexdigest()


async def test_a_temporary_object_left_by_a_dead_process_goes_after_the_grace(
    store: S3BlobStore,
) -> None:
    store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}tmp/dead", Body=b"x")
    assert [k async for k in store.keys_older_than(3600)] == []  # not a blob
    assert ("tmp/dead", 1) in await store.objects()  # young: perhaps still going
    assert [k async for k in store.keys_older_than(0)] == []
    assert ("tmp/dead", 1) not in await store.objects()


async def test_a_complete_that_died_before_its_record_is_finished_by_its_retry(
    store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(200_000)
    await store.write_part(UPLOAD, 1, stream(data), 10**6)
    put_object = store.client.put_object

    def die_on_record(**kwargs: Any) -> Any:
        if kwargs["Key"].endswith("assembled.json"):
            raise KeyboardInterrupt  # the blob is stored; its record is not
        return put_object(**kwargs)

    monkeypatch.setattr(store.client, "put_object", die_on_record)
    with pytest.raises(KeyboardInterrupt):
        await store.assemble(UPLOAD, len(data))
    monkeypatch.undo()
    assert await store.staged_blob_keys() == set()
    info = await store.assemble(UPLOAD, len(data))
    assert info.key == hashlib.sha256(data).hexdigest()
    assert await store.staged_blob_keys() == {info.key}
    assert [k async for k in store.keys_older_than(0)] == [info.key]  # stored once
    assert await read_all(store, info.key) == data


async def test_racing_completes_of_one_upload_store_one_blob(store: S3BlobStore) -> None:
    data = os.urandom(300_000)
    for n in (1, 2, 3):
        await store.write_part(UPLOAD, n, stream(data[(n - 1) * 100_000 : n * 100_000]), 10**6)
    first, second = await asyncio.gather(
        store.assemble(UPLOAD, len(data)), store.assemble(UPLOAD, len(data))
    )
    assert first == second
    assert [k async for k in store.keys_older_than(0)] == [first.key]


async def test_a_replayed_part_leaves_one_object(store: S3BlobStore) -> None:
    for _ in range(3):
        await store.write_part(UPLOAD, 1, stream(b"a" * 10), 100)
    parts = [n for n, _ in await store.objects() if n.startswith(f"uploads/{UPLOAD}/part-")]
    assert len(parts) == 1


async def test_a_refused_part_size_leaves_the_first_one(store: S3BlobStore) -> None:
    await store.write_part(UPLOAD, 1, stream(b"a" * 10), 100)
    with pytest.raises(Exception, match="already received with 10 bytes"):
        await store.write_part(UPLOAD, 1, stream(b"b" * 12), 100)
    assert await store.received(UPLOAD) == {1: 10}
    info = await store.assemble(UPLOAD, 10)
    assert await read_all(store, info.key) == b"a" * 10


async def test_local_copies_and_scratch_go_in_the_temporary_directory(
    store: S3BlobStore, tmp_path: Path
) -> None:
    store.temp_dir = tmp_path / "blob-temp"
    store.temp_dir.mkdir()
    info = await store.put(stream(b"copied"))
    async with store.local_copy(info.key) as path, store.scratch() as d:
        assert path.is_relative_to(store.temp_dir) and d.is_relative_to(store.temp_dir)
    assert list(store.temp_dir.iterdir()) == []


@pytest.mark.s3
async def test_a_large_put_keeps_memory_constant_and_the_loop_free(rgw: S3BlobStore) -> None:
    """64 MiB through 5 MiB parts: a few parts in memory at most, and the event loop
    answers within a fraction of a second throughout."""
    size = 64 * MIB
    block = os.urandom(MIB)

    async def source() -> AsyncIterator[bytes]:
        for _ in range(size // MIB):
            yield bytes(block)  # a new object each time, as a request body's chunks are

    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - before - 0.01)

    tracemalloc.start()
    try:
        tick = asyncio.ensure_future(ticker())
        info = await rgw.put(source())
        done.set()
        await tick
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == size
    assert peak < 8 * S3_MIN_PART, f"peak {peak / MIB:.1f} MiB"  # 3 going up, 1 coming
    assert max(lags) < 0.5, f"the loop was held {max(lags):.2f} s"
