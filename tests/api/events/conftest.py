"""Event tests: a real loopback receiver, the dispatcher run in-process, and settings
that make Adobe's minutes into fractions of a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from assetvault.services import Services
from tests.api.adobe.conftest import adobe

ORG = "ASSETVAULT@AdobeOrg"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "fetch_allow": "127.0.0.1",
        "events_retry_unit_seconds": 0.05,
        "events_timeout_seconds": 2.0,
        "events_poll_seconds": 0.01,
        "aem_program_id": "12345",
        "aem_environment_id": "67890",
    }


async def register(
    client: httpx.AsyncClient,
    token: str,
    *,
    url: str | None = None,
    types: list[str] | None = None,
    delivery_type: str | None = None,
    client_id: str = "receiver-client",
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {
        "name": "test registration",
        "client_id": client_id,
        "delivery_type": delivery_type or ("webhook" if url else "journal"),
        "events_of_interest": [
            {"provider_id": "aem-assets", "event_code": t}
            for t in (types or ["aem.assets.asset.metadata_updated"])
        ],
        **extra,
    }
    if url:
        body["webhook_url"] = url
    return await client.post("/adobe/events/registrations", json=body, headers=adobe(token))


async def dispatch_until(
    services: Services, done: Callable[[], bool], seconds: float = 10.0
) -> None:
    """Run the dispatcher's rounds until ``done()`` holds (or fail after ``seconds``)."""
    dispatcher = services.dispatcher()
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the dispatcher did not get there in time")
        await dispatcher.run_once()
        await asyncio.sleep(0.02)
    await dispatcher.drain()


async def dispatch_all(services: Services) -> None:
    """Consume the whole outbox and finish every delivery due now."""
    dispatcher = services.dispatcher()
    while await dispatcher.run_once():
        await dispatcher.drain()
    await dispatcher.drain()


def journal_headers(token: str) -> dict[str, str]:
    return {**adobe(token), "x-ims-org-id": ORG}
