"""A PostgreSQL server for the tests: the one on 127.0.0.1:5432 when it answers (or the
URL in ASSETVAULT_TEST_PG_URL), else a throwaway cluster started here and removed after.

Each test gets its own database, copied from a template migrated once per session (per
test process: each xdist worker has its own template). The copies are made ahead of need
and dropped after use on a thread of their own (``DatabasePool``): a CREATE DATABASE or a
DROP DATABASE takes 0.05-1 s of the server's I/O, which no test needs to wait for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


async def _copy_template(conn: asyncpg.Connection, name: str) -> None:
    for attempt in range(20):  # the template must have no other session while copied
        try:
            await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
            return
        except asyncpg.ObjectInUseError:
            await asyncio.sleep(0.05 * (attempt + 1))
    raise RuntimeError(f"the template {TEMPLATE} stayed in use: {name} was not created")


class DatabasePool:
    """Copies of the template made ahead on a thread (with its own event loop), so a test
    takes a ready one; a used database is dropped on that thread while the next test runs.
    ``close`` drops what is left and waits for every drop."""

    def __init__(self, admin_url: str, ahead: int = 2) -> None:
        self.admin_url = admin_url
        self.ahead = ahead
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="test-database-pool", daemon=True
        )
        self._thread.start()
        self._drops: list[concurrent.futures.Future[None]] = []
        self._ready: asyncio.Queue[str | BaseException] | None = None
        self._filler: asyncio.Task[None] | None = None
        self._call(self._start()).result()

    def _call(self, coro: Any) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _start(self) -> None:
        self._ready = asyncio.Queue(maxsize=self.ahead)
        self._filler = asyncio.create_task(self._fill())

    async def _fill(self) -> None:
        assert self._ready is not None
        conn = await asyncpg.connect(self.admin_url)
        try:
            while True:
                name = f"assetvault_test_{uuid.uuid4().hex[:12]}"
                try:
                    await _copy_template(conn, name)
                except Exception as e:  # handed to the test that asks next
                    await self._ready.put(e)
                    return
                await self._ready.put(name)
        finally:
            await conn.close()

    async def _take(self) -> str:
        assert self._ready is not None
        got = await self._ready.get()
        if isinstance(got, BaseException):
            self._ready.put_nowait(got)  # every later test fails the same way
            raise got
        return got

    def take(self) -> concurrent.futures.Future[str]:
        """The name of a fresh copy of the template (waits while none is ready)."""
        return self._call(self._take())

    def give_back(self, name: str) -> None:
        """Drop ``name`` in the background (close waits for it)."""
        self._drops.append(self._call(drop_named(self.admin_url, name)))

    async def _stop(self) -> list[str]:
        assert self._ready is not None and self._filler is not None
        self._filler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._filler
        left = []
        while not self._ready.empty():
            got = self._ready.get_nowait()
            if isinstance(got, str):
                left.append(got)
        return left

    def close(self) -> None:
        for name in self._call(self._stop()).result():
            self.give_back(name)
        errors = [f.exception() for f in self._drops]
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        if any(errors):
            raise next(e for e in errors if e)


_pool: DatabasePool | None = None


@contextlib.contextmanager
def database_pool(admin_url: str) -> Iterator[DatabasePool]:
    """The pool ``create_test_database`` takes from while this block runs."""
    global _pool
    pool = DatabasePool(admin_url)
    _pool = pool
    try:
        yield pool
    finally:
        _pool = None
        pool.close()


async def create_test_database(admin_url: str) -> str:
    """A database of its own for one test, a copy of the migrated template."""
    if _pool is not None and _pool.admin_url == admin_url:
        name = await asyncio.wrap_future(_pool.take())
    else:
        name = f"assetvault_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(admin_url)
        try:
            await _copy_template(conn, name)
        finally:
            await conn.close()
    return with_database(admin_url, name).replace("postgresql://", "postgresql+asyncpg://")


async def drop_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    if _pool is not None and _pool.admin_url == admin_url:
        _pool.give_back(name)
    else:
        await drop_named(admin_url, name)


async def drop_named(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()
