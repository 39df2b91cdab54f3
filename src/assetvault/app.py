"""The ASGI application: every interface mounted over one set of services."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import multiprocessing
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from assetvault.api import health
from assetvault.api.adobe import events as adobe_events
from assetvault.api.adobe import imports as adobe_imports
from assetvault.api.adobe import routes as adobe
from assetvault.api.adobe import search as adobe_search
from assetvault.api.adobe.hot import HotRoutes
from assetvault.api.body import DrainUnreadBody
from assetvault.api.classic import routes as classic
from assetvault.api.content import routes as content
from assetvault.api.errors import install_error_handlers
from assetvault.api.events import routes as io_events
from assetvault.api.ui import routes as ui
from assetvault.jobs.supervisor import die_with_parent
from assetvault.services import Services, build_services
from assetvault.settings import Settings, load_settings

log = logging.getLogger("assetvault")


SWEEP_EVERY_SECONDS = 600


_sweep_lock: IO[str] | None = None


def _hold_sweep_lock(data_dir: Path) -> bool:
    """One sweeper per data directory, whichever API process gets the lock first (and
    keeps it for its life)."""
    global _sweep_lock
    if _sweep_lock is not None:
        return True
    fh = open(data_dir / "sweep.lock", "w")  # noqa: SIM115 - held for the process
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return False
    _sweep_lock = fh
    return True


class NamedRequests:
    """Names each request's task after its method and path, so that asyncio's
    slow-callback log (debug mode, ASSETVAULT_SLOW_CALLBACK_MS) says which request held
    the loop; for measuring only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if task is not None and scope["type"] == "http":
            task.set_name(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def app_from_environment() -> FastAPI:
    """The app of one of several API processes (``serve --processes N``), which go
    with the serve process however it ends (a kill -9 included)."""
    die_with_parent()
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        sys.exit(1)  # the server died before this process could follow it
    return create_app(load_settings(), periodic_sweep=True)


async def sweep_once(svc: Services) -> None:
    """One round of the sweep an API process runs every SWEEP_EVERY_SECONDS."""
    await svc.maintenance.sweep(
        svc.settings.sweep_grace_seconds, svc.settings.upload_token_ttl_seconds
    )
    await svc.search.forget_expired()
    await svc.uploads.forget_completed(svc.settings.upload_token_ttl_seconds)
    pruned = await svc.maintenance.prune_outbox(svc.settings.outbox_retention_seconds)
    if pruned:
        log.info("periodic sweep pruned %d outbox row(s)", pruned)
    await svc.db.optimize()


class AssetvaultApp(FastAPI):
    """The app, with the OpenAPI document its interfaces publish."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = get_openapi(title=self.title, version=self.version, routes=self.routes)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    # Validation errors are answered 400 in each interface's own format.
                    operation.get("responses", {}).pop("422", None)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            for model in adobe.EXTRA_SCHEMAS:
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            self.openapi_schema = schema
        return self.openapi_schema


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    *,
    periodic_sweep: bool = False,
    hot_routes: bool = True,
) -> FastAPI:
    svc = services or build_services(settings or load_settings())

    async def sweep_forever() -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_SECONDS)
            if not _hold_sweep_lock(svc.settings.data_dir):
                continue  # another API process of this data directory sweeps
            try:
                await sweep_once(svc)
            except Exception:
                log.exception("periodic sweep failed")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watch = os.environ.get("ASSETVAULT_SLOW_CALLBACK_MS")
        if watch:
            # asyncio's own slow-callback log: every callback that holds the loop longer
            # than this is logged (debug mode; for measuring, not for production).
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = float(watch) / 1000
        await svc.db.migrate()
        await svc.db.optimize()
        # What start-up built (routes, models, schema) lives as long as the process:
        # kept out of the collector's way, a full collection no longer walks it while
        # requests wait (measured: 70-110 ms pauses at a few thousand requests/s).
        gc.collect()
        gc.freeze()
        sweeper = asyncio.create_task(sweep_forever()) if periodic_sweep else None
        yield
        if sweeper is not None:
            sweeper.cancel()
        await svc.close()

    app = AssetvaultApp(
        title="Assetvault",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = svc

    install_error_handlers(app)
    if hot_routes:
        app.add_middleware(HotRoutes)
    app.add_middleware(
        DrainUnreadBody,
        max_bytes=svc.settings.body_drain_max_bytes,
        max_seconds=svc.settings.body_drain_max_seconds,
    )
    if os.environ.get("ASSETVAULT_SLOW_CALLBACK_MS"):
        app.add_middleware(NamedRequests)  # outermost: it names the task first
    app.include_router(health.router)
    app.include_router(adobe_search.router)
    app.include_router(adobe_events.publishing)
    app.include_router(adobe_events.router)
    app.include_router(adobe_imports.author)
    app.include_router(adobe_imports.importer)
    app.include_router(adobe.router)
    app.include_router(io_events.router)
    app.include_router(classic.router)
    app.include_router(content.router)
    app.include_router(ui.router)
    app.mount("/ui", ui.static_files(), name="ui")
    return app
