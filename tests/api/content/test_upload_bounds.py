"""Bounds on the work one direct-upload request can ask for: the URIs and bytes of an
initiate, the event loop while it is signed, and the bytes a part URI takes."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import httpx
import pytest
from tests.conftest import Tokens
from tests.factories import complete, initiate, snapshot

from assetvault.services import Services

GiB = 1024**3


def siren_status(r: httpx.Response) -> int:
    body = r.json()
    assert body["class"] == "core/response", body
    assert body["properties"]["status.code"] == r.status_code
    return r.status_code


def uris_fit(files: list[dict[str, Any]], sizes: list[int]) -> None:
    """What @adobe/aem-upload checks: each file splits over its URIs in parts no larger
    than maxPartSize."""
    for file, size in zip(files, sizes, strict=True):
        assert math.ceil(size / len(file["uploadURIs"])) <= file["maxPartSize"], file["fileName"]


@pytest.mark.parametrize(
    "files",
    [
        [(f"f{i}.bin", 10 * GiB) for i in range(1000)],  # the probe: 10 TiB, 640,000 URIs
        [("a.bin", 1024 * GiB), ("b.bin", 1)],  # one byte over the bytes per initiate
        [(f"f{i}.bin", 2 * GiB) for i in range(513)],
    ],
)
async def test_initiates_over_the_bounds_are_413_at_once(
    client: httpx.AsyncClient, tokens: Tokens, services: Services, files: list[tuple[str, int]]
) -> None:
    before = await snapshot(services)
    started = time.perf_counter()
    r = await initiate(client, tokens.write, "/content/dam", files)
    assert siren_status(r) == 413
    assert "at most" in r.json()["properties"]["status.message"]
    assert time.perf_counter() - started < 5 and len(r.content) < 1000
    assert await snapshot(services) == before


async def test_many_files_share_the_uri_budget_with_larger_parts(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    budget = services.settings.upload_max_initiate_uris
    sizes = [GiB] * 1000  # at the preferred 16 MiB: 64,000 URIs
    r = await initiate(
        client, tokens.write, "/content/dam", [(f"f{i}", s) for i, s in enumerate(sizes)]
    )
    assert r.status_code == 201, r.text
    files = r.json()["files"]
    assert sum(len(f["uploadURIs"]) for f in files) <= budget
    uris_fit(files, sizes)
    # The largest single file fits on its own.
    biggest = services.settings.upload_max_file_size
    r = await initiate(client, tokens.write, "/content/dam", [("huge.bin", biggest)])
    assert r.status_code == 201
    (file,) = r.json()["files"]
    assert len(file["uploadURIs"]) <= budget
    uris_fit([file], [biggest])


async def test_uris_are_refused_when_even_the_largest_parts_are_too_many(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    services.settings.upload_max_initiate_uris = 20
    services.settings.upload_max_part_size = 64 * 1024**2
    ok = [(f"f{i}", 64 * 1024**2) for i in range(20)]
    r = await initiate(client, tokens.write, "/content/dam", ok)
    assert r.status_code == 201 and sum(len(f["uploadURIs"]) for f in r.json()["files"]) == 20
    r = await initiate(client, tokens.write, "/content/dam", [*ok[:19], ("big", 128 * 1024**2)])
    assert siren_status(r) == 413
    r = await initiate(client, tokens.write, "/content/dam", [(f"f{i}", 0) for i in range(21)])
    assert siren_status(r) == 413


async def test_health_stays_fast_while_the_largest_initiate_runs(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    """Signing is done off the event loop: /health answers while an initiate at the
    bounds (raised here to 50,000 URIs, so signing takes about a second) is signed."""
    s = services.settings
    s.upload_preferred_part_size = s.upload_min_part_size
    s.upload_max_initiate_uris = 50_000
    files = [(f"f{i}.bin", 10 * GiB) for i in range(5)]  # 10,000 parts each
    signing = threading.Event()
    tokens_of = services.uploads.tokens
    part_token = tokens_of.part_token

    def watched(*args: Any) -> str:
        signing.set()
        return part_token(*args)

    tokens_of.part_token = watched  # type: ignore[method-assign]
    task = asyncio.create_task(initiate(client, tokens.write, "/content/dam", files))
    while not signing.is_set():
        assert not task.done(), task.result().text
        await asyncio.sleep(0.001)
    sent = time.perf_counter()
    health = await client.get("/health")
    took = time.perf_counter() - sent
    still_signing = not task.done()
    r = await task
    assert r.status_code == 201 and sum(len(f["uploadURIs"]) for f in r.json()["files"]) == 50_000
    assert health.status_code == 200
    assert still_signing, "/health was answered only after the initiate"
    assert took < 1.0


async def _stream(total: int, chunk: int = 1024 * 1024) -> Any:
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        sent += n
        yield b"x" * n


def staged(services: Services) -> list[Any]:
    return [p for p in services.blobs.uploads_dir.rglob("*") if p.is_file()]


async def test_a_part_takes_no_more_than_the_file_declared(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    r = await initiate(client, tokens.write, "/content/dam", [("small.bin", 10)])
    (uri,) = r.json()["files"][0]["uploadURIs"]
    before = await snapshot(services)
    for body in (b"x" * (50 * 1024**2), _stream(50 * 1024**2), b"x" * 11, _stream(11, 3)):
        r = await client.put(uri, content=body)
        assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
        assert "announced with 10 bytes" in r.json()["detail"]
        assert await snapshot(services) == before and not staged(services)
    assert (await client.put(uri, content=b"x" * 10)).status_code == 201


async def test_parts_share_what_the_file_declared(
    client: httpx.AsyncClient, tokens: Tokens, services: Services
) -> None:
    """Whatever the order, a part holds at most the declared size less what the other
    parts already hold; a retried part is measured without its own earlier bytes."""
    mib = 1024**2
    services.settings.upload_preferred_part_size = mib
    size = 3 * mib
    r = await initiate(client, tokens.write, "/content/dam", [("three.bin", size)])
    file = r.json()["files"][0]
    first, second, third = file["uploadURIs"]
    assert (await client.put(third, content=b"c" * mib)).status_code == 201
    r = await client.put(first, content=_stream(2 * mib + 1))
    assert r.status_code == 413 and "other parts hold 1048576" in r.json()["detail"]
    assert (await client.put(first, content=b"a" * mib)).status_code == 201
    assert (await client.put(first, content=b"a" * mib)).status_code == 201  # a retry
    assert (await client.put(second, content=b"b" * (mib + 1))).status_code == 413
    assert (await client.put(second, content=b"b" * mib)).status_code == 201
    received = await services.blobs.received(file["uploadURIs"][0].split("/")[-2])
    assert sum(received.values()) == size
    r = await complete(client, tokens.write, "/content/dam", file, size)
    assert r.status_code == 200 and r.json()["fileSize"] == size
