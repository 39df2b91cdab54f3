"""A PostgreSQL server for the tests: the one on 127.0.0.1:5432 when it answers (or the
URL in ASSETVAULT_TEST_PG_URL), else a throwaway cluster started here and removed after.

Each test gets its own database, copied from a template migrated once per session.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# One template per test run: runs of other checkouts may share the server, at other
# schema revisions.
TEMPLATE = f"assetvault_test_template_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed (scripts/bootstrap.sh installs it)"
        )
    return found[-1]


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """initdb + pg_ctl in a temporary directory, as the postgres user when run as root."""
    base = Path(tempfile.mkdtemp(prefix="assetvault-pg-"))
    data = base / "data"
    port = 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, _bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            _bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "log"),
            "-w",
            "-o",
            f"-p {port} -h 127.0.0.1 -k {base} -F",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    url = os.environ.get("ASSETVAULT_TEST_PG_URL")
    if url:
        yield url
    elif _answers("127.0.0.1", 5432):
        yield DEFAULT_URL
    else:
        with throwaway_cluster() as started:
            yield started


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def create_template(admin_url: str) -> None:
    """A database with the schema migrated, to copy for every test."""
    from assetvault.adapters.database.engine import Database

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    db = Database(
        with_database(admin_url, TEMPLATE).replace("postgresql://", "postgresql+asyncpg://")
    )
    try:
        await db.migrate()
    finally:
        await db.dispose()


async def create_test_database(admin_url: str) -> str:
    name = f"assetvault_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        for attempt in range(20):  # the template must have no other session while copied
            try:
                await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
                break
            except asyncpg.ObjectInUseError:
                time.sleep(0.05 * (attempt + 1))
    finally:
        await conn.close()
    return with_database(admin_url, name).replace("postgresql://", "postgresql+asyncpg://")


async def drop_database(admin_url: str, url: str) -> None:
    await drop_named(admin_url, url.rsplit("/", 1)[1])


async def drop_named(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()
