"""The worker loop: claim a job, run it, commit its result together with the job's new
state. Leases are extended while a job runs, so only a dead worker's jobs run again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import traceback
from typing import Protocol

from assetvault.adapters.queue.base import Job
from assetvault.assets.service import DELETE_ASSET
from assetvault.imports.service import IMPORT_RUN
from assetvault.processing.service import PROCESS_ASSET, Apply, ProcessingFailed
from assetvault.services import Services
from assetvault.tree.writes import Change

log = logging.getLogger("assetvault.worker")

IDLE_POLL_SECONDS = 0.25
REAP_EVERY_SECONDS = 5.0

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
        self.kinds = frozenset(self.handlers)
        self.lease = services.settings.job_lease_seconds
        self._next_reap = 0.0

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                did = await self.run_once()
            except Exception:
                log.exception("worker loop error")
                did = False
            if not did:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), IDLE_POLL_SECONDS)

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
            if await self.services.queue.fail(ch.conn, job, self.name, reason, retry=retry):
                await handler.failed(ch, job, reason)


def _acting_user(job: Job) -> str | None:
    """Who asked for the job's change (e.g. a forced delete), or None for the system."""
    user = job.payload.get("user")
    return user if isinstance(user, str) else None
