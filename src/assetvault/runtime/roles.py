"""The roles a process of Assetvault plays (docs/runtime.md, "Roles").

The **background role** (``assetvault background``, one process started by ``serve``)
runs as asyncio tasks of one process: the search indexer (embedded search only), the
event dispatcher, the import runners, the start-up sweep and the periodic sweep. Each is
independent: one that fails is logged and started again after a backoff while the others
go on. The indexer and the dispatcher keep their own one-at-a-time rules (the index's
writer lock, the dispatcher's lease row), so a second background process is harmless.

The **worker role** (``assetvault worker``) runs up to ``jobs`` processing jobs at once,
each in a sandboxed child forked from the process's one fork server.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from assetvault.jobs.worker import IMPORT_KINDS, PROCESSING_KINDS, Worker
from assetvault.runtime.supervisor import hold_worker_lock
from assetvault.services import Services, build_services
from assetvault.settings import Settings

log = logging.getLogger("assetvault.background")

SWEEP_EVERY_SECONDS = 600.0
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# A task that ran this long before failing starts again after the first backoff.
HEALTHY_AFTER_SECONDS = 60.0
# How long a sweep waits for a restore to end (it is tried again at the next round).
GATE_WAIT_SECONDS = 60.0


class Restored(Exception):
    """The data was restored under this process: it ends, and serve starts it again."""


def honour_gate(svc: Services, stop: asyncio.Event) -> None:
    """Every transaction of this role's process first waits while a restore runs; the
    first after one ends the process (``stop``; serve's supervisor starts another),
    since its tasks keep positions and deliveries in flight of the state before."""

    async def keeper() -> None:
        if svc.gate.closed:
            await svc.gate.wait_open()
        if svc.gate.moved():
            if not stop.is_set():
                log.warning("the data was restored: this process ends and starts again")
            stop.set()
            raise Restored("the data was restored under this process")

    svc.db.gatekeeper = keeper
    if svc.embedded_search is not None:
        svc.embedded_search.own_db.gatekeeper = keeper


@dataclass(frozen=True)
class Task:
    """One task of a role: ``run(stop)`` works until ``stop`` is set; ``once``: it is done
    when it returns (a long-running task that returns is started again)."""

    name: str
    run: Callable[[asyncio.Event], Awaitable[None]]
    once: bool = False


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def keep_running(
    task: Task,
    stop: asyncio.Event,
    *,
    first_backoff: float = BACKOFF_FIRST_SECONDS,
    max_backoff: float = BACKOFF_MAX_SECONDS,
) -> None:
    """Run ``task`` until ``stop``; after a failure, log it and start it again after a
    backoff that doubles while it keeps failing."""
    backoff = first_backoff
    while not stop.is_set():
        started = time.monotonic()
        try:
            await task.run(stop)
            if task.once:
                return
            if not stop.is_set():
                log.warning("background task %s ended; starting it again", task.name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "background task %s failed; starting it again in %.1f s", task.name, backoff
            )
        if time.monotonic() - started >= HEALTHY_AFTER_SECONDS:
            backoff = first_backoff
        await _pause(stop, backoff)
        backoff = min(backoff * 2, max_backoff)


async def run_tasks(tasks: Sequence[Task], stop: asyncio.Event, **backoff: float) -> None:
    """Every task kept running side by side until ``stop``."""
    await asyncio.gather(*(keep_running(t, stop, **backoff) for t in tasks))


# -- the sweeps ----------------------------------------------------------------------


async def sweep_once(svc: Services) -> None:
    """One round of the periodic sweep."""
    # Inside the restore gate: a restore links the blobs it needs into the store, and
    # the sweep's list of unreferenced ones must not be of the state before it.
    async with svc.gate.held(GATE_WAIT_SECONDS):
        await svc.maintenance.sweep(
            svc.settings.sweep_grace_seconds, svc.settings.upload_token_ttl_seconds
        )
    await svc.search.forget_expired()
    await svc.uploads.forget_completed(svc.settings.upload_token_ttl_seconds)
    pruned = await svc.maintenance.prune_outbox(svc.settings.outbox_retention_seconds)
    if pruned:
        log.info("periodic sweep pruned %d outbox row(s)", pruned)
    forgotten = await svc.maintenance.forget_finished_jobs(
        svc.settings.finished_jobs_retention_seconds
    )
    if forgotten:
        log.info("periodic sweep removed %d finished job(s)", forgotten)
    await svc.db.optimize()


def hold_sweep_lock(data_dir: Path) -> IO[str] | None:
    """One sweeper per data directory: the lock file, held until closed (None: another
    process sweeps)."""
    fh = open(data_dir / "sweep.lock", "w")  # noqa: SIM115 - returned to the caller
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


async def startup_sweep(svc: Services, before: float | None) -> None:
    """What a start leaves for after ready: the blobs a crash left unreferenced, the
    completed uploads' records, the signing keys when missing.

    ``before``: the wall-clock instant the server started, when no worker of another
    process was running then: every blob older than that which nothing refers to is
    garbage (a request or job of this server stores a blob after that instant, and a
    blob it reuses is touched when stored). None: the sweep's grace period, as any sweep.
    """
    grace = float(svc.settings.sweep_grace_seconds)
    if before is not None:
        grace = max(0.0, time.time() - before)
    async with svc.gate.held(GATE_WAIT_SECONDS):
        report = await svc.maintenance.sweep(
            grace_seconds=grace, upload_ttl_seconds=svc.settings.upload_token_ttl_seconds
        )
    await svc.snapshots.prepare_reset()  # the first reset then needs no migration
    await svc.uploads.forget_completed(svc.settings.upload_token_ttl_seconds)
    await asyncio.to_thread(svc.signer.paths)  # makes the signing keys if missing
    if report.blobs_removed or report.uploads_removed:
        log.info(
            "start-up sweep removed %d unreferenced blob(s) and %d abandoned upload(s)",
            report.blobs_removed,
            report.uploads_removed,
        )


def periodic_sweep(svc: Services, every: float = SWEEP_EVERY_SECONDS) -> Task:
    async def run(stop: asyncio.Event) -> None:
        lock: IO[str] | None = None
        try:
            while not stop.is_set():
                await _pause(stop, every)
                if stop.is_set():
                    return
                lock = lock or hold_sweep_lock(svc.settings.data_dir)
                if lock is not None:  # else another process of this data directory sweeps
                    await sweep_once(svc)
        finally:
            if lock is not None:
                lock.close()

    return Task("periodic sweep", run)


# -- the roles -----------------------------------------------------------------------


def background_tasks(
    svc: Services,
    *,
    import_runners: int,
    sweep_at_start: bool = True,
    alone_before: float | None = None,
) -> list[Task]:
    """The background role's tasks over ``svc`` (``alone_before``: as ``startup_sweep``'s
    ``before``)."""
    tasks: list[Task] = []
    if sweep_at_start:

        async def sweep_at_start_task(stop: asyncio.Event) -> None:
            await startup_sweep(svc, alone_before)

        tasks.append(Task("start-up sweep", sweep_at_start_task, once=True))
    search = svc.embedded_search
    if search is not None:

        async def index(stop: asyncio.Event) -> None:
            await search.new_indexer().run(stop)

        tasks.append(Task("search indexer", index))

    async def dispatch(stop: asyncio.Event) -> None:
        await svc.dispatcher().run_forever(stop)

    tasks.append(Task("event dispatcher", dispatch))
    if import_runners:

        async def import_warm_up(stop: asyncio.Event) -> None:
            from assetvault.adapters.fetch.download import warm_up

            await asyncio.to_thread(warm_up)

        tasks.append(Task("import warm-up", import_warm_up, once=True))
    for i in range(import_runners):
        tasks.append(Task(f"import runner {i}", _worker_loop(svc, IMPORT_KINDS, f"import-{i}")))
    tasks.append(periodic_sweep(svc))
    return tasks


def worker_tasks(svc: Services, jobs: int) -> list[Task]:
    """The worker role's tasks: ``jobs`` processing loops in one process."""
    return [Task(f"worker {i}", _worker_loop(svc, PROCESSING_KINDS, f"w{i}")) for i in range(jobs)]


def _worker_loop(
    svc: Services, kinds: frozenset[str], suffix: str
) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def run(stop: asyncio.Event) -> None:
        worker = Worker(svc, kinds=kinds)
        worker.name = f"{worker.name}:{suffix}"
        await worker.run_forever(stop)

    return run


def _serve_until_signalled(settings: Settings, tasks_of: Callable[[Services], list[Task]]) -> None:
    """Build the services, migrate, run the tasks until SIGTERM or SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        svc = build_services(settings)
        try:
            await svc.db.migrate()
            honour_gate(svc, stop)
            await run_tasks(tasks_of(svc), stop)
        finally:
            await svc.close()

    asyncio.run(main())


def run_background(
    settings: Settings,
    *,
    sweep_at_start: bool = True,
    alone_before: float | None = None,
) -> None:
    """The background role until SIGTERM (``assetvault background``); its indexer task
    runs when search is embedded (``settings.search_index_here`` off: the task, not the
    service container, writes the index)."""

    def tasks(svc: Services) -> list[Task]:
        return background_tasks(
            svc,
            import_runners=settings.import_runners,
            sweep_at_start=sweep_at_start,
            alone_before=alone_before,
        )

    _serve_until_signalled(settings, tasks)


def run_worker(settings: Settings, *, jobs: int, burst: bool = False) -> None:
    """The worker role (``assetvault worker``): ``jobs`` processing jobs at once, each in
    a sandboxed child of the process's one fork server, which starts after the loop
    does (the first job would start it otherwise). ``burst``: every due job, imports
    included, then exit."""
    from assetvault.adapters.media import sandbox

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    held = hold_worker_lock(settings.data_dir)
    if burst:

        async def main() -> None:
            svc = build_services(settings)
            try:
                await svc.db.migrate()
                worker = Worker(svc)
                while await worker.run_once():
                    pass
            finally:
                await svc.close()

        asyncio.run(main())
    else:

        def tasks(svc: Services) -> list[Task]:
            async def warm_up(stop: asyncio.Event) -> None:
                await asyncio.to_thread(sandbox.warm_up)

            return [Task("sandbox warm-up", warm_up, once=True), *worker_tasks(svc, jobs)]

        _serve_until_signalled(settings, tasks)
    del held
