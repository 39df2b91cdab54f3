"""Helpers of the import tests: a service container whose SSRF guard lets the tests'
loopback servers through, and a file server answering from a dict."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assetvault.services import Services, build_services
from tests.databases import migrated_database
from tests.factories import make_settings, process_all
from tests.receivers import Received, Reply

# What the import tests change of the defaults: the loopback servers are allowed, and
# failures are retried quickly.
IMPORT_SETTINGS: dict[str, Any] = {
    "fetch_allow": "127.0.0.1",
    "import_retries": 1,
    "import_read_timeout_seconds": 2.0,
}


def files_handler(files: dict[str, Reply | bytes]):  # type: ignore[no-untyped-def]
    """Answers GET /<name> with the file (404 for anything unknown), HEAD alike."""

    def handle(r: Received) -> Reply:
        found = files.get(r.path)
        if found is None:
            return Reply(404, b"no such file")
        if isinstance(found, Reply):
            return found
        if r.headers.get("range") == "bytes=0-0":
            return Reply(
                206,
                found[:1],
                {"content-range": f"bytes 0-0/{len(found)}", "accept-ranges": "bytes"},
            )
        return Reply(200, found, {"content-type": "application/octet-stream"})

    return handle


async def import_services(
    request: pytest.FixtureRequest, tmp_path: Path, **settings: Any
) -> AsyncIterator[Services]:
    """The services on each backend (request.param), with the import settings, on a copy
    of the migrated template database."""
    data_dir = tmp_path / "data"
    async with migrated_database(request, data_dir, request.param) as database_url:
        svc = build_services(
            make_settings(data_dir, database_url=database_url, **{**IMPORT_SETTINGS, **settings})
        )
        try:
            yield svc
        finally:
            await svc.close()


def adobe(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Api-Key": "test-client"}


async def run_imports(services: Services, *, processing: bool = False) -> int:
    """Run the queued import jobs in this process (with ``processing``, also every other
    due job, e.g. the processing of the imported assets); returns how many jobs ran."""
    if processing:
        return await process_all(services)
    from sqlalchemy import func, select

    from assetvault.adapters.database.tables import jobs
    from assetvault.imports.service import IMPORT_RUN
    from assetvault.jobs.worker import Worker

    worker = Worker(services, name="test-worker")
    ran = 0
    while True:
        async with services.db.read() as conn:
            due = (
                await conn.execute(
                    select(func.count()).where(
                        jobs.c.kind == IMPORT_RUN, jobs.c.state.in_(("queued", "running"))
                    )
                )
            ).scalar_one()
        if not due:
            return ran
        # Import jobs were queued before the processing of what they import.
        assert await worker.run_once(), "an import job is due but none could be claimed"
        ran += 1


async def wait_done(
    client: httpx.AsyncClient, token: str, status_url: str, seconds: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        r = await client.get(status_url, headers=adobe(token))
        assert r.status_code == 200, r.text
        if r.json()["state"] != "PROCESSING":
            return r.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, r.json()
        await asyncio.sleep(0.2)


async def all_results(
    client: httpx.AsyncClient, token: str, result_url: str, limit: int = 50
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(result_url, params=params, headers=adobe(token))
        assert r.status_code == 200, r.text
        items.extend(r.json()["items"])
        cursor = r.json().get("cursor")
        if not cursor:
            return items
