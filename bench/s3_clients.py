"""Which S3 client the blob store uses: boto3 (in threads) against obstore (async), on a
real S3 server (Ceph RGW, started by scripts/ceph-rgw.sh unless BENCH_S3_ENDPOINT names
one with access key "testkey" / secret "testsecret").

Measured from an asyncio loop, as the server would call them: a 1 GiB object put as a
stream of 1 MiB chunks (multipart, 16 MiB parts, 4 in flight) and read back as a stream;
1,000 small objects (4 KiB) put and got 16 at a time. Each round runs both clients, in
alternating order; the median of BENCH_S3_ROUNDS (default 3) is printed.

Then the store built on the pick (adapters/blobs/s3.py) doing the same 1 GiB: its put
also hashes (SHA-256 + SHA-1) and copies the object server-side to its content address.

    .venv/bin/python bench/s3_clients.py
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import obstore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from obstore.store import S3Store

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))
GIB = 1 << 30
CHUNK = 1 << 20
PART = 16 << 20
SMALL = 4096
SMALL_COUNT = 1000
CONCURRENCY = 16
BLOCK = os.urandom(64 << 20)


def chunks(total: int) -> Iterator[bytes]:
    view = memoryview(BLOCK)
    sent = 0
    while sent < total:
        n = min(CHUNK, total - sent)
        start = sent % len(BLOCK)
        yield bytes(view[start : start + n])
        sent += n


async def achunks(total: int) -> AsyncIterator[bytes]:
    for c in chunks(total):
        yield c


class _GeneratorFile(io.RawIOBase):
    def __init__(self, it: Iterator[bytes]) -> None:
        self.it, self.rest = it, b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        out = [self.rest]
        have = len(self.rest)
        while n < 0 or have < n:
            try:
                c = next(self.it)
            except StopIteration:
                break
            out.append(c)
            have += len(c)
        data = b"".join(out)
        if n >= 0:
            data, self.rest = data[:n], data[n:]
        else:
            self.rest = b""
        return data


def boto_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testkey",
        aws_secret_access_key="testsecret",
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


async def boto_big(s3: Any, bucket: str) -> tuple[float, float]:
    cfg = TransferConfig(multipart_chunksize=PART, multipart_threshold=PART, max_concurrency=4)
    t = time.perf_counter()
    await asyncio.to_thread(
        s3.upload_fileobj, _GeneratorFile(chunks(GIB)), bucket, "big", Config=cfg
    )
    put = time.perf_counter() - t
    t = time.perf_counter()
    body = (await asyncio.to_thread(s3.get_object, Bucket=bucket, Key="big"))["Body"]
    got = 0
    while data := await asyncio.to_thread(body.read, CHUNK):
        got += len(data)
    assert got == GIB
    get = time.perf_counter() - t
    await asyncio.to_thread(s3.delete_object, Bucket=bucket, Key="big")
    return put, get


async def obstore_big(store: S3Store) -> tuple[float, float]:
    t = time.perf_counter()
    await obstore.put_async(store, "big", achunks(GIB), chunk_size=PART, max_concurrency=4)
    put = time.perf_counter() - t
    t = time.perf_counter()
    got = 0
    async for data in await obstore.get_async(store, "big"):
        got += len(data)
    assert got == GIB
    get = time.perf_counter() - t
    await obstore.delete_async(store, "big")
    return put, get


async def store_big(endpoint: str) -> tuple[float, float]:
    from assetvault.adapters.blobs.s3 import S3BlobStore

    store = S3BlobStore(boto_client(endpoint), "bench-store")
    try:
        t = time.perf_counter()
        info = await store.put(achunks(GIB))
        put = time.perf_counter() - t
        t = time.perf_counter()
        got = 0
        async for data in store.read(info.key):
            got += len(data)
        assert got == GIB
        get = time.perf_counter() - t
        await store.delete(info.key)
        return put, get
    finally:
        store.close()


async def gathered(n: int, one: Callable[[int], Coroutine[Any, Any, None]]) -> float:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def run(i: int) -> None:
        async with sem:
            await one(i)

    t = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(n)))
    return time.perf_counter() - t


async def boto_small(s3: Any, bucket: str) -> tuple[float, float]:
    """On a pool of CONCURRENCY threads, as the blob store runs them."""
    body = os.urandom(SMALL)
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(CONCURRENCY)

    def put_one(i: int) -> None:
        s3.put_object(Bucket=bucket, Key=f"s/{i}", Body=body)

    def get_one(i: int) -> None:
        assert len(s3.get_object(Bucket=bucket, Key=f"s/{i}")["Body"].read()) == SMALL

    async def put(i: int) -> None:
        await loop.run_in_executor(pool, put_one, i)

    async def get(i: int) -> None:
        await loop.run_in_executor(pool, get_one, i)

    return await gathered(SMALL_COUNT, put), await gathered(SMALL_COUNT, get)


async def obstore_small(store: S3Store) -> tuple[float, float]:
    body = os.urandom(SMALL)

    async def put(i: int) -> None:
        await obstore.put_async(store, f"s/{i}", body)

    async def get(i: int) -> None:
        r = await obstore.get_async(store, f"s/{i}")
        assert len(await r.bytes_async()) == SMALL

    return await gathered(SMALL_COUNT, put), await gathered(SMALL_COUNT, get)


async def measure(endpoint: str, rounds: int) -> dict[str, list[float]]:
    s3 = boto_client(endpoint)
    for bucket in ("bench-boto3", "bench-obstore", "bench-store"):
        s3.create_bucket(Bucket=bucket)
    store = S3Store(
        "bench-obstore",
        endpoint=endpoint,
        access_key_id="testkey",
        secret_access_key="testsecret",
        region="us-east-1",
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )
    out: dict[str, list[float]] = {}

    def note(name: str, values: tuple[float, float]) -> None:
        for what, v in zip(("put", "get"), values, strict=True):
            out.setdefault(f"{name} {what}", []).append(v)

    for r in range(rounds):
        order = ["boto3", "obstore"] if r % 2 == 0 else ["obstore", "boto3"]
        for name in order:
            if name == "boto3":
                note("boto3 1 GiB", await boto_big(s3, "bench-boto3"))
                note("boto3 1000 x 4 KiB", await boto_small(s3, "bench-boto3"))
            else:
                note("obstore 1 GiB", await obstore_big(store))
                note("obstore 1000 x 4 KiB", await obstore_small(store))
        note("S3BlobStore 1 GiB", await store_big(endpoint))
    return out


def main() -> None:
    rounds = int(os.environ.get("BENCH_S3_ROUNDS", "3"))
    endpoint = os.environ.get("BENCH_S3_ENDPOINT")
    scratch = None
    if endpoint is None:
        scratch = tempfile.mkdtemp(prefix="bench-rgw-")
        script = str(ROOT / "scripts" / "ceph-rgw.sh")
        env = {**os.environ, "CEPH_RGW_OSD_BYTES": str(3 * GIB)}
        started = subprocess.run(
            ["bash", script, "start", scratch], capture_output=True, text=True, env=env
        )
        if started.returncode != 0:
            sys.exit(f"could not start Ceph RGW:\n{started.stderr}")
        endpoint = started.stdout.strip().splitlines()[-1]
    try:
        results = asyncio.run(measure(endpoint, rounds))
    finally:
        if scratch is not None:
            subprocess.run(["bash", str(ROOT / "scripts" / "ceph-rgw.sh"), "stop", scratch])
    for name, values in results.items():
        med = statistics.median(values)
        rate = f"{GIB / med / 1e6:7.0f} MB/s" if "GiB" in name else f"{SMALL_COUNT / med:7.0f} /s"
        print(f"{name:28s} {med:7.2f} s  {rate}  ({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
