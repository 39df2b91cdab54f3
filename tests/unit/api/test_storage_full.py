"""A full disk or database is answered 507 in the interface's format, by a middleware
that keeps the connection usable; anything else still reaches the last-resort handler."""

from __future__ import annotations

import errno
import sqlite3

import httpx
import pytest
from fastapi import FastAPI

from assetvault.api.errors import StorageFullAnswer, install_error_handlers, storage_full


class Wrapped(Exception):
    """Stands for a driver error wrapped by the database toolkit (it keeps ``orig``)."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__(str(orig))
        self.orig = orig


def full_sqlite() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database or disk is full")
    exc.sqlite_errorcode = 13  # type: ignore[attr-defined]
    return exc


class DiskFull(Exception):
    sqlstate = "53100"  # PostgreSQL's disk_full


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        full_sqlite(),
        Wrapped(full_sqlite()),
        DiskFull("could not extend file"),
    ],
)
def test_full_storage_is_recognised(exc: BaseException) -> None:
    assert storage_full(exc)


def test_a_cause_is_followed() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("writing the part failed") from inner
    except RuntimeError as outer:
        assert storage_full(outer)


@pytest.mark.parametrize("exc", [OSError(errno.EACCES, "denied"), ValueError("x"), KeyError()])
def test_other_failures_are_not(exc: BaseException) -> None:
    assert not storage_full(exc)


def app_raising(exc: BaseException) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(StorageFullAnswer)

    @app.post("/adobe/thing")
    @app.post("/api/assets/thing")
    async def thing() -> None:
        raise exc

    return app


async def test_a_full_disk_is_507_in_each_interfaces_format() -> None:
    app = app_raising(OSError(errno.ENOSPC, "No space left on device"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        adobe = await client.post("/adobe/thing")
        classic = await client.post("/api/assets/thing")
    assert adobe.status_code == 507
    assert adobe.headers["content-type"].startswith("application/problem+json")
    assert adobe.json()["status"] == 507
    assert "nothing was changed" in adobe.json()["detail"]
    assert classic.status_code == 507
    assert classic.json()["properties"]["status.code"] == 507


async def test_any_other_failure_is_still_a_500() -> None:
    app = app_raising(OSError(errno.EACCES, "denied"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.post("/adobe/thing")
    assert r.status_code == 500
