from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from assetvault.app import create_app
from assetvault.services import Services, build_services
from tests.factories import make_settings


@dataclass
class Tokens:
    read: str
    write: str
    admin: str


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    svc = build_services(make_settings(tmp_path / "data"))
    await svc.db.migrate()
    yield svc
    await svc.close()


@pytest.fixture
async def tokens(services: Services) -> Tokens:
    return Tokens(
        read=await services.auth.create_token("reader", "read"),
        write=await services.auth.create_token("writer", "write"),
        admin=await services.auth.create_token("admin", "admin"),
    )


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://assetvault.test") as c:
        yield c
