"""The worker loop: claim a job, run it, commit its result together with the job's new
state. Leases are extended while a job runs, so only a dead worker's jobs run again.

Idle, a worker sleeps until a commit queues a job (the ``jobs`` topic of
runtime/wake.py) or the next job it knows of becomes due (a retry's time, the end of a
lease), at the latest after the safety net's time (``wake_safety_seconds``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import traceback
from datetime import UTC, datetime
from typing import Protocol

from assetvault.adapters.queue.base import Job
from assetvault.assets.service import DELETE_ASSET
from assetvault.imports.service import IMPORT_RUN
from assetvault.processing.service import PROCESS_ASSET, Apply, ProcessingFailed
from assetvault.runtime.wake import JOBS
from assetvault.services import Services
from assetvault.tree.writes import Change

log = logging.getLogger("assetvault.worker")

REAP_EVERY_SECONDS = 5.0
# The shortest idle sleep: a due time already past (a job another worker is claiming)
# is looked at again this soon, not at once.
MIN_IDLE_SECONDS = 0.05

# Who runs what: the processing workers (sandboxed media work, short jobs) and the
# background role's import runners (waiting on outside sources, for hours if a source
# trickles) claim disjoint kinds, so a slow source never holds processing capacity.
PROCESSING_KINDS = frozenset({PROCESS_ASSET, DELETE_ASSET})
IMPORT_KINDS = frozenset({IMPORT_RUN})


class Handler(Protocol):
    async def run(self, job: Job) -> Apply: ...

    async def failed(self, ch: Change, job: Job, reason: str) -> None: ...


class LeaseLost(Exception):
    pass


class Worker:
    """Runs jobs of ``kinds`` (every kind by default), one at a time."""

    def __init__(
        self,
        services: Services,
        name: str | None = None,
        kinds: frozenset[str] = PROCESSING_KINDS | IMPORT_KINDS,
    ) -> None:
        self.services = services
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        handlers: dict[str, Handler] = {
            PROCESS_ASSET: services.processing,
            DELETE_ASSET: services.assets,
            IMPORT_RUN: services.imports,
        }
        self.handlers = {kind: handlers[kind] for kind in sorted(kinds)}
        self.lease = services.settings.job_lease_seconds
        self._next_reap = 0.0
        # Rounds run by ``run_forever`` (what a test counts).
        self.rounds = 0

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of job this worker claims: those it has a handler for."""
        return frozenset(self.handlers)

    async def idle_seconds(self) -> float:
        """How long an idle worker sleeps unless a commit wakes it: until the next job
        it knows of is due, or the safety net."""
        wait = self.services.settings.wake_safety_seconds
        due = await self.services.queue.next_due()
        if due is not None:
            wait = min(wait, (due - datetime.now(UTC)).total_seconds())
        return max(wait, MIN_IDLE_SECONDS)

    async def run_forever(self, stop: asyncio.Event) -> None:
        # Listening before the first look at the queue: a commit after it wakes the wait.
        jobs = await self.services.wakeups.listen(JOBS)
        while not stop.is_set():
            self.rounds += 1
            try:
                did = await self.run_once()
                if not did and not await jobs.wait(await self.idle_seconds(), stop=stop):
                    # A timer ran out: a lease may have ended, so dead jobs are looked
                    # for at once.
                    self._next_reap = 0.0
            except Exception:
                log.exception("worker loop error")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    async def run_once(self) -> bool:
        """Reap dead jobs, then run one due job. False when there was nothing to do."""
        queue = self.services.queue
        now = time.monotonic()
        if now >= self._next_reap:
            self._next_reap = now + REAP_EVERY_SECONDS
            async with self.services.writes.change(None) as ch:
                for dead in await queue.reap(ch.conn, self.kinds):
                    await self._handler(dead).failed(
                        ch, dead, "processing stopped during every attempt (crash or limit)"
                    )
        job = await queue.claim(self.name, self.lease, self.kinds)
        if job is None:
            return False
        await self._run(job)
        return True

    def _handler(self, job: Job) -> Handler:
        return self.handlers[job.kind]

    async def _keep_lease(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            if not await self.services.queue.extend(job, self.name, self.lease):
                return

    async def _run(self, job: Job) -> None:
        queue = self.services.queue
        handler = self._handler(job)
        keeper = asyncio.create_task(self._keep_lease(job))
        try:
            apply = await handler.run(job)
        except ProcessingFailed as exc:
            await self._fail(job, handler, str(exc), retry=False)
            return
        except Exception as exc:
            log.warning(
                "job %s (%s) attempt %d failed:\n%s",
                job.id,
                job.kind,
                job.attempts,
                traceback.format_exc(),
            )
            await self._fail(job, handler, f"{type(exc).__name__}: {exc}", retry=True)
            return
        finally:
            keeper.cancel()
        try:
            async with self.services.writes.change(_acting_user(job)) as ch:
                await apply(ch)
                if not await queue.succeed(ch.conn, job, self.name):
                    raise LeaseLost(job.id)
        except LeaseLost:
            log.warning("job %s lost its lease; its result was dropped", job.id)

    async def _fail(self, job: Job, handler: Handler, reason: str, *, retry: bool) -> None:
        async with self.services.writes.change(_acting_user(job)) as ch:
            if await ch.fail_job(job, self.name, reason, retry=retry):
                await handler.failed(ch, job, reason)


def _acting_user(job: Job) -> str | None:
    """Who asked for the job's change (e.g. a forced delete), or None for the system."""
    user = job.payload.get("user")
    return user if isinstance(user, str) else None
