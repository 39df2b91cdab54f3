from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from assetvault.adapters.blobs.s3 import S3Location
from assetvault.app import create_app
from assetvault.processing.ports import MediaTools
from assetvault.services import Services, build_services
from tests.databases import make_sqlite_template, migrated_database
from tests.factories import make_settings
from tests.pg import TEMPLATE, create_template, database_pool, drop_named, postgres_server
from tests.s3 import FollowToStore, S3Server, credentials, rgw_server

# Assetvault's pytest plugin, used by tests/plugin_example: an installed package loads it
# by its entry point already (then this finds it loaded); a checkout installed before the
# entry point existed gets it here. Only a top-level conftest may name plugins.
pytest_plugins = ["assetvault.testing.pytest_plugin"]


@dataclass
class Tokens:
    read: str
    write: str
    admin: str


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    with postgres_server() as url:
        # Requested from inside async fixtures: migrate on a thread with its own loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, create_template(url)).result()
        with database_pool(url):
            yield url
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, drop_named(url, TEMPLATE)).result()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """Ceph RGW, started once per test process when a test first asks for it (tests/s3.py);
    its credentials are in the AWS variables while it runs."""
    with rgw_server() as server, credentials(server):
        yield server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database file migrated once per test process, copied for every test."""
    return make_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings the ``services`` of a test directory's tests change (override there)."""
    return {}


@pytest.fixture
def media_tools() -> MediaTools | None:
    """The media tools of ``services``: None, the real ones (tests/api/conftest.py hands
    out the real ones that remember their work)."""
    return None


@pytest.fixture
def blobs_backend() -> str:
    """The blob store of ``services``: "local" (a directory in the data directory) or "s3"
    (a fresh prefix on Ceph RGW). A test runs on both with ``@ON_S3_TOO`` (tests/s3.py);
    ASSETVAULT_TEST_BLOBS=s3 puts every test on S3."""
    return os.environ.get("ASSETVAULT_TEST_BLOBS", "local")


@pytest.fixture(params=["sqlite", "postgresql"])
async def services(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    settings_overrides: dict[str, Any],
    media_tools: MediaTools | None,
    blobs_backend: str,
) -> AsyncIterator[Services]:
    """The service container on each database backend; every test using it runs twice.
    Its database is a copy of the migrated template (tests/databases.py)."""
    data_dir = tmp_path / "data"
    blobs_url = None
    if blobs_backend == "s3":
        blobs_url = request.getfixturevalue("s3_server").fresh_url()
    async with migrated_database(request, data_dir, request.param) as database_url:
        svc = build_services(
            make_settings(
                data_dir, database_url=database_url, blobs_url=blobs_url, **settings_overrides
            ),
            media=media_tools,
        )
        try:
            yield svc
        finally:
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
    """The app over ASGI. With blobs on S3, a download's redirect to the store is followed
    (over the network, as a client does): tests see the store's answer."""
    app = create_app(services=services)
    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=app)
    blobs_url = services.settings.blobs_url
    if blobs_url is not None and blobs_url.startswith("s3://"):
        endpoint = S3Location.parse(blobs_url).endpoint
        if endpoint is not None:
            transport = FollowToStore(transport, endpoint)
    async with httpx.AsyncClient(transport=transport, base_url="http://assetvault.test") as c:
        yield c
