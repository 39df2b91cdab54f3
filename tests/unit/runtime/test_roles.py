"""The background role's tasks: each kept running on its own, and the start-up sweep's
rule now that it runs while the server serves (docs/runtime.md)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from assetvault.runtime import roles
from assetvault.runtime.roles import Task, run_tasks, startup_sweep
from assetvault.services import Services
from tests.factories import make_assets


async def test_a_failing_task_is_started_again_while_the_others_go_on() -> None:
    stop = asyncio.Event()
    runs: list[float] = []
    ticks: list[float] = []
    once: list[int] = []

    async def flaky(stop: asyncio.Event) -> None:
        runs.append(time.monotonic())
        if len(runs) <= 3:
            raise RuntimeError("boom")
        await stop.wait()

    async def returns_early(stop: asyncio.Event) -> None:
        return  # a long-running task that ends is started again too

    async def steady(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    async def at_start(stop: asyncio.Event) -> None:
        once.append(1)
        if len(once) == 1:
            raise RuntimeError("first attempt fails")

    early = Task("returns early", returns_early)
    tasks = [Task("flaky", flaky), Task("steady", steady), Task("once", at_start, once=True)]
    running = asyncio.create_task(
        run_tasks([*tasks, early], stop, first_backoff=0.02, max_backoff=0.05)
    )
    deadline = time.monotonic() + 10
    while len(runs) < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert len(runs) == 4  # three failures, each followed by a new start
    assert runs[1] - runs[0] >= 0.02 and runs[3] - runs[2] >= 0.04  # after a growing backoff
    # The steady task kept going while the flaky one failed and waited.
    assert any(runs[0] < t < runs[3] for t in ticks)
    assert len([t for t in ticks if runs[0] < t < runs[3]]) >= 5
    assert once == [1, 1]  # a one-shot task: again after it failed, never after it succeeded


def blob_path(services: Services, key: str) -> Path:
    return services.settings.data_dir / "blobs" / key[:2] / key[2:4] / key


async def stored(services: Services, data: bytes, age: float = 0.0) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    key = (await services.blobs.put(chunks())).key
    if age:
        then = time.time() - age
        os.utime(blob_path(services, key), (then, then))
    return key


async def test_the_start_up_sweep_removes_only_what_is_older_than_the_start(
    services: Services,
) -> None:
    """It runs while requests and jobs store blobs: those are younger than the server's
    start and stay, however unreferenced they are yet; what a past run left goes."""
    [asset] = await make_assets(services, [("kept.jpg", {})])
    assert asset.blob_key is not None
    os.utime(blob_path(services, asset.blob_key), (time.time() - 60, time.time() - 60))
    crashed = await stored(services, b"left by a crash", age=30)
    started = time.time() - 5
    in_flight = await stored(services, b"stored by a request, not committed yet")
    reused = await stored(services, b"an old blob a request stores again", age=30)
    await stored(services, b"an old blob a request stores again")  # touched: in flight again

    await startup_sweep(services, None)  # other workers ran at the start: the grace holds
    assert blob_path(services, crashed).exists()

    await startup_sweep(services, started)
    assert not blob_path(services, crashed).exists()
    assert blob_path(services, in_flight).exists()
    assert blob_path(services, reused).exists()
    assert blob_path(services, asset.blob_key).exists()


async def test_the_start_up_sweep_makes_the_signing_keys(services: Services) -> None:
    """Made after ready now, not before serving: they exist once the sweep ran."""
    keys = services.settings.data_dir / "event-keys"
    assert not list(keys.glob("private-*.pem"))
    made = "SELECT count(*) FROM shared_secrets WHERE name LIKE 'event-key-private/%'"
    async with services.db.reader() as r:
        assert (await r.fetch_one(made) or [None])[0] == 0
    await startup_sweep(services, None)
    async with services.db.reader() as r:
        in_database = (await r.fetch_one(made) or [None])[0]
    if services.db.is_sqlite:  # the embedded default: files in its data directory
        assert len(list(keys.glob("private-*.pem"))) == 2 and in_database == 0
    else:  # PostgreSQL: in the database, the same for every machine; no file
        assert in_database == 2 and not keys.exists()


def test_the_background_role_holds_the_indexer_only_with_embedded_search(
    services: Services,
) -> None:
    names = [t.name for t in roles.background_tasks(services, import_runners=2)]
    expected = [
        "start-up sweep",
        "event dispatcher",
        "import warm-up",
        "import runner 0",
        "import runner 1",
    ]
    if services.embedded_search is not None:
        expected.insert(1, "search indexer")
    assert names == [*expected, "periodic sweep"]
