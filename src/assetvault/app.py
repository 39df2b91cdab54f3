"""The ASGI application: every interface mounted over one set of services."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from assetvault.api import harness, health
from assetvault.api.admin import faults as admin_faults
from assetvault.api.admin import journal as admin_journal
from assetvault.api.admin import reset as admin_reset
from assetvault.api.admin import snapshots as admin_snapshots
from assetvault.api.adobe import archive as adobe_archive
from assetvault.api.adobe import events as adobe_events
from assetvault.api.adobe import imports as adobe_imports
from assetvault.api.adobe import publish as adobe_publish
from assetvault.api.adobe import routes as adobe
from assetvault.api.adobe import search as adobe_search
from assetvault.api.adobe.hot import HotRoutes
from assetvault.api.body import DrainUnreadBody
from assetvault.api.classic import routes as classic
from assetvault.api.content import routes as content
from assetvault.api.errors import StorageFullAnswer, install_error_handlers
from assetvault.api.events import routes as io_events
from assetvault.api.gate import RestoreGate
from assetvault.api.strict import StrictRequests
from assetvault.api.ui import media as ui_media
from assetvault.api.ui import routes as ui
from assetvault.api.ui import shares as ui_shares
from assetvault.runtime.supervisor import die_with_parent
from assetvault.services import Services, build_services
from assetvault.settings import Settings, load_settings

log = logging.getLogger("assetvault")


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
    # serve brought the schema up to date before it started this process.
    return create_app(load_settings(), migrate=False)


# Operations of the OpenAPI document that answer without credentials.
PUBLIC_OPERATIONS = (
    "/health",
    "/health/live",
    "/openapi.json",
    "/adobe/import/sources/authentication/callback",
    "/prod/keys/{name}",
    "/events/validate",
)


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
            # How callers authenticate, so /docs offers its Authorize control: a bearer
            # token on every operation, and the X-Api-Key the Author API also wants.
            schema["components"]["securitySchemes"] = {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token (assetvault token create)",
                },
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Api-Key",
                    "description": "the client's API key; any value unless the server "
                    "lists allowed keys (the Author API needs one)",
                },
            }
            schema["security"] = [{"bearerAuth": [], "apiKey": []}]
            for path in PUBLIC_OPERATIONS:
                for operation in schema.get("paths", {}).get(path, {}).values():
                    operation["security"] = []
            self.openapi_schema = schema
        return self.openapi_schema


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    *,
    hot_routes: bool = True,
    migrate: bool = True,
) -> FastAPI:
    """The app over ``services``. It serves requests and nothing else: the sweeps, the
    indexer, the dispatcher and the jobs run in the background and worker roles.
    ``migrate=False``: the schema is known to be current (serve migrated it first)."""
    svc = services or build_services(settings or load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watch = os.environ.get("ASSETVAULT_SLOW_CALLBACK_MS")
        if watch:
            # asyncio's own slow-callback log: every callback that holds the loop longer
            # than this is logged (debug mode; for measuring, not for production).
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = float(watch) / 1000
        if migrate:
            await svc.db.migrate()
        await svc.db.optimize()
        # What start-up built (routes, models, schema) lives as long as the process:
        # kept out of the collector's way, a full collection no longer walks it while
        # requests wait (measured: 70-110 ms pauses at a few thousand requests/s).
        gc.collect()
        gc.freeze()
        yield
        await svc.close()
        for store in (faults, journal):
            if store is not None:
                store.close()

    app = AssetvaultApp(
        title="Assetvault",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = svc
    # Fault injection and the request journal, when the server was started with them.
    faults, journal = harness.stores(svc.settings)
    app.state.faults, app.state.journal = faults, journal

    install_error_handlers(app)
    if hot_routes:
        app.add_middleware(HotRoutes)
    app.add_middleware(StorageFullAnswer)  # around the hot routes too
    if svc.settings.strict:  # before the hot route, inside the body drain
        app.add_middleware(StrictRequests, router=app.router)
    if faults is not None:  # inside the body drain: an injected early answer drains too
        app.add_middleware(harness.FaultInjection, store=faults)
    app.add_middleware(
        DrainUnreadBody,
        max_bytes=svc.settings.body_drain_max_bytes,
        max_seconds=svc.settings.body_drain_max_seconds,
    )
    # Outside the others but the journal (which records the gate's 503s too).
    app.add_middleware(RestoreGate, services=svc)
    if journal is not None:  # outside the drain: it counts the drained bytes too
        app.add_middleware(harness.RequestJournal, store=journal)
    if os.environ.get("ASSETVAULT_SLOW_CALLBACK_MS"):
        app.add_middleware(NamedRequests)  # outermost: it names the task first
    app.include_router(health.router)
    app.include_router(adobe_search.router)
    app.include_router(adobe_publish.router)
    app.include_router(adobe_archive.router)
    app.include_router(adobe_events.router)
    app.include_router(adobe_imports.author)
    app.include_router(adobe_imports.importer)
    app.include_router(adobe.router)
    app.include_router(io_events.router)
    app.include_router(adobe_events.adobe_paths)  # after the journal: as many segments
    app.include_router(classic.router)
    app.include_router(content.router)
    app.include_router(ui.router)
    app.include_router(ui_shares.manage)
    app.include_router(ui_shares.public)
    app.include_router(ui_media.router)
    app.include_router(admin_faults.router)
    app.include_router(admin_journal.router)
    app.include_router(admin_snapshots.router)
    app.include_router(admin_reset.router)
    app.mount("/ui", ui.static_files(), name="ui")
    return app
