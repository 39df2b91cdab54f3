from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer, create_token
from tests.pg import create_test_database, drop_database


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(data_dir=tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture
def admin_token(live_server: LiveServer) -> str:
    return create_token(live_server.data_dir, "e2e-admin", "admin")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A live server's database settings, for a test to run on each backend: the embedded
    default, or a fresh PostgreSQL database (pass them to the server and to the CLI)."""
    if request.param == "sqlite":
        yield {}
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    url = asyncio.run(create_test_database(admin_url))
    yield {"ASSETVAULT_DATABASE_URL": url}
    asyncio.run(drop_database(admin_url, url))
