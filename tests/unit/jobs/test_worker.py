"""The worker's idle wait, on each database backend: it sleeps while no job is queued, a
commit that queues one wakes it at once, and a retry runs when it becomes due."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from assetvault.adapters.queue import table
from assetvault.adapters.queue.base import Job
from assetvault.jobs.worker import Worker
from assetvault.processing.service import Apply
from assetvault.services import Services
from assetvault.tree.writes import Change

KIND = "test-record"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Far away: whatever a test sees sooner, a wake-up or a due time explains.
    return {"wake_safety_seconds": 60.0}


class Recorder:
    """A job handler that notes when it runs, failing (to be retried) the first
    ``failing`` times."""

    def __init__(self, failing: int = 0) -> None:
        self.failing = failing
        self.at: list[float] = []

    async def run(self, job: Job) -> Apply:
        self.at.append(time.monotonic())
        if len(self.at) <= self.failing:
            raise RuntimeError("not this time")

        async def apply(ch: Change) -> None:
            return None

        return apply

    async def failed(self, ch: Change, job: Job, reason: str) -> None:
        return None


async def until(check: Callable[[], bool], seconds: float = 10.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not in time"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


@pytest.fixture
def recorder() -> Recorder:
    return Recorder(failing=1)


@pytest.fixture
async def worker(services: Services, recorder: Recorder) -> AsyncIterator[Worker]:
    """A worker's own loop in a task, with ``recorder`` as the handler of KIND."""
    worker = Worker(services, name="idle-test")
    worker.handlers[KIND] = recorder
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    try:
        await until(lambda: worker.rounds > 0)
        yield worker
    finally:
        stop.set()
        await task


async def enqueue(services: Services) -> None:
    async with services.writes.change(None) as ch:
        await ch.enqueue(KIND, {}, max_attempts=3)


async def test_an_idle_worker_sleeps_until_a_job_is_queued(
    services: Services, worker: Worker, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.sleep(0.3)  # its first round (the reap) is done
    rounds, looks = worker.rounds, services.db.transactions
    await asyncio.sleep(2.0)
    # It used to look at the queue every 0.25 s.
    assert worker.rounds - rounds <= 1
    assert services.db.transactions - looks <= 2
    monkeypatch.setattr(table, "BACKOFF_BASE_SECONDS", 0.5)
    queued = time.monotonic()
    await enqueue(services)
    await until(lambda: len(recorder.at) == 1)
    assert recorder.at[0] - queued < 1.0  # woken by the commit
    # The failed attempt is queued again for 0.5 s later: the worker waits for that
    # time, not for the safety net.
    await until(lambda: len(recorder.at) == 2)
    assert 0.45 <= recorder.at[1] - recorder.at[0] < 2.0
