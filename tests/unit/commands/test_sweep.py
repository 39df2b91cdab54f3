"""``assetvault sweep`` and the periodic sweep of the server prune the outbox rows every
consumer has read, on each database backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assetvault.cli import main
from assetvault.runtime.roles import sweep_once
from assetvault.services import Services, build_services
from assetvault.tree import repository as tree_repo
from tests.databases import migrated_database
from tests.factories import make_assets, make_settings, outbox_events


@pytest.fixture(params=["sqlite", "postgresql"])
async def data(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """A data directory (and its database) as a server left it: changes made, every
    consumer of the deployment caught up."""
    data_dir = tmp_path / "data"
    async with migrated_database(request, data_dir, request.param) as database_url:
        svc = build_services(make_settings(data_dir, database_url=database_url))
        try:
            await consume_changes(svc)
        finally:
            await svc.close()
        yield {"data_dir": data_dir, "database_url": database_url}


async def consume_changes(svc: Services) -> None:
    await make_assets(svc, [("a.jpg", {}), ("b.jpg", {})])
    await svc.tree.create_folder("/content/dam", "f", user="u")
    dispatcher = svc.dispatcher()
    while await dispatcher.materialize():
        pass
    if svc.embedded_search is not None:  # SQLite's default: the embedded index
        assert svc.embedded_search.indexer is not None
        await svc.embedded_search.indexer.catch_up()


async def outbox_state(data: dict[str, Any]) -> tuple[int, int]:
    """(rows left in the outbox, its floor)."""
    svc = build_services(make_settings(data["data_dir"], database_url=data["database_url"]))
    try:
        async with svc.db.reader() as r:
            floor = await tree_repo.outbox_floor(r)
        return len(await outbox_events(svc)), floor
    finally:
        await svc.close()


async def test_the_sweep_command_prunes_the_consumed_outbox(
    data: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if data["database_url"]:
        monkeypatch.setenv("ASSETVAULT_DATABASE_URL", data["database_url"])
    args = ["sweep", "--data-dir", str(data["data_dir"])]
    # Within the retention (a day by default) every row stays.
    assert await asyncio.to_thread(main, args) == 0
    assert capsys.readouterr().out.strip().endswith(", 0 outbox row(s)")
    rows, floor = await outbox_state(data)
    assert rows == 3 and floor == 0

    monkeypatch.setenv("ASSETVAULT_OUTBOX_RETENTION_SECONDS", "0")
    assert await asyncio.to_thread(main, args) == 0
    assert capsys.readouterr().out.strip().endswith(", 3 outbox row(s)")
    rows, floor = await outbox_state(data)
    assert rows == 0 and floor > 0


async def test_the_periodic_sweep_prunes_the_consumed_outbox(data: dict[str, Any]) -> None:
    svc = build_services(
        make_settings(
            data["data_dir"], database_url=data["database_url"], outbox_retention_seconds=0
        )
    )
    try:
        await sweep_once(svc)
    finally:
        await svc.close()
    rows, floor = await outbox_state(data)
    assert rows == 0 and floor > 0
