"""Pruning the outbox, on each database backend: only rows older than the retention that
every consumer of the deployment has read go; which consumers count depends on the
search backend. Forgetting finished jobs: only those that ended longer ago than their
retention go, import jobs with their files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from assetvault.adapters.database.tables import import_files, import_jobs, jobs, search_index_state
from assetvault.errors import NotFound
from assetvault.maintenance import service as maintenance_service
from assetvault.runtime.roles import sweep_once
from assetvault.search.indexer import STATE
from assetvault.services import Services
from assetvault.tree import repository as tree_repo
from tests.factories import backdate_outbox, make_assets, outbox_events

DAY = 24 * 3600.0


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"search_backend": "tantivy"}


async def index_up_to_head(services: Services) -> None:
    assert services.embedded_search is not None
    assert services.embedded_search.indexer is not None
    await services.embedded_search.indexer.catch_up()


async def dispatch_up_to_head(services: Services) -> None:
    dispatcher = services.dispatcher()
    while await dispatcher.materialize():
        pass


async def seqs_left(services: Services) -> list[int]:
    return [e.seq for e in await outbox_events(services)]


async def floor(services: Services) -> int:
    async with services.db.reader() as r:
        return await tree_repo.outbox_floor(r)


async def age_everything(services: Services) -> None:
    await backdate_outbox(services, None, datetime.now(UTC) - timedelta(days=2))


async def test_old_rows_every_consumer_has_read_are_pruned(services: Services) -> None:
    await make_assets(services, [("a.jpg", {}), ("b.jpg", {})])
    await services.tree.create_folder("/content/dam", "f", user="u")
    head = (await seqs_left(services))[-1]
    await index_up_to_head(services)
    await dispatch_up_to_head(services)
    await age_everything(services)
    assert await services.maintenance.prune_outbox(DAY) == 3
    assert await seqs_left(services) == []
    assert await floor(services) == head


async def test_a_backlog_goes_in_short_transactions(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Five rows, two per transaction: three transactions, the floor raised by each.
    monkeypatch.setattr(maintenance_service, "PRUNE_BATCH", 2)
    await make_assets(services, [(f"b{i}.jpg", {}) for i in range(5)])
    head = (await seqs_left(services))[-1]
    await index_up_to_head(services)
    await dispatch_up_to_head(services)
    await age_everything(services)
    calls: list[int] = []
    prune = services.writes.prune_outbox

    async def counted(*args: Any, **kwargs: Any) -> int:
        went = await prune(*args, **kwargs)
        calls.append(went)
        return went

    monkeypatch.setattr(services.writes, "prune_outbox", counted)
    rows = len(await seqs_left(services))
    assert await services.maintenance.prune_outbox(DAY) == rows
    assert calls[:-1] == [2] * (len(calls) - 1) and calls[-1] < 2
    assert await seqs_left(services) == [] and await floor(services) == head


async def test_a_row_the_indexer_has_not_read_is_kept(services: Services) -> None:
    await make_assets(services, [("a.jpg", {})])
    await index_up_to_head(services)
    read = await seqs_left(services)
    await make_assets(services, [("b.jpg", {})])
    unread = [s for s in await seqs_left(services) if s not in read]
    await dispatch_up_to_head(services)
    await age_everything(services)
    assert await services.maintenance.prune_outbox(DAY) == len(read)
    assert await seqs_left(services) == unread
    assert await floor(services) == read[-1]


async def test_a_row_the_dispatcher_has_not_read_is_kept(services: Services) -> None:
    await make_assets(services, [("a.jpg", {})])
    await dispatch_up_to_head(services)
    read = await seqs_left(services)
    await make_assets(services, [("b.jpg", {})])
    unread = [s for s in await seqs_left(services) if s not in read]
    await index_up_to_head(services)
    await age_everything(services)
    assert await services.maintenance.prune_outbox(DAY) == len(read)
    assert await seqs_left(services) == unread


async def test_nothing_goes_before_the_dispatcher_has_read_anything(services: Services) -> None:
    await make_assets(services, [("a.jpg", {})])
    await index_up_to_head(services)
    await age_everything(services)
    before = await seqs_left(services)
    assert await services.maintenance.prune_outbox(DAY) == 0
    assert await seqs_left(services) == before and await floor(services) == 0


async def test_rows_younger_than_the_retention_are_kept(services: Services) -> None:
    await make_assets(services, [("a.jpg", {})])
    await services.tree.create_folder("/content/dam", "f", user="u")
    await index_up_to_head(services)
    await dispatch_up_to_head(services)
    before = await seqs_left(services)
    await backdate_outbox(services, before[:1], datetime.now(UTC) - timedelta(days=2))
    assert await services.maintenance.prune_outbox(DAY) == 1
    assert await seqs_left(services) == before[1:]
    assert await floor(services) == before[0]


@pytest.mark.parametrize("settings_overrides", [{"search_backend": "database"}])
async def test_on_the_database_search_backend_the_indexer_holds_nothing_back(
    services: Services,
) -> None:
    assert services.embedded_search is None
    # What an earlier embedded time left behind: an index at position 0.
    async with services.db.write() as conn:
        await conn.execute(
            insert(search_index_state).values(
                name=STATE, directory="index-old", position=0, updated_at=datetime.now(UTC)
            )
        )
    await make_assets(services, [("a.jpg", {}), ("b.jpg", {})])
    head = (await seqs_left(services))[-1]
    await dispatch_up_to_head(services)
    await age_everything(services)
    assert await services.maintenance.prune_outbox(DAY) == 2
    assert await seqs_left(services) == []
    assert await floor(services) == head


# -- finished jobs --------------------------------------------------------------------


async def add_job(services: Services, job_id: str, state: str, ended: datetime | None) -> None:
    now = datetime.now(UTC)
    async with services.db.write() as conn:
        await conn.execute(
            insert(jobs).values(
                id=job_id,
                kind="process",
                payload={},
                state=state,
                run_after=now - timedelta(days=30),
                created_at=now - timedelta(days=30),
                finished_at=ended,
            )
        )


async def add_import(services: Services, job_id: str, step: str, ended: datetime | None) -> None:
    now = datetime.now(UTC)
    async with services.db.write() as conn:
        await conn.execute(
            insert(import_jobs).values(
                id=job_id,
                operation="aem.assets.import.fromurl",
                user="u",
                folder_id="f",
                folder_path="/content/dam/f",
                config={},
                step=step,
                total=2,
                created_at=now - timedelta(days=30),
                updated_at=now - timedelta(days=30),
                finished_at=ended,
            )
        )
        for idx in range(2):
            await conn.execute(
                insert(import_files).values(
                    job_id=job_id,
                    idx=idx,
                    file_name=f"{idx}.jpg",
                    metadata={},
                    state="imported" if ended else "pending",
                    warnings=[],
                    updated_at=now,
                )
            )


async def job_ids(services: Services) -> tuple[set[str], set[str], set[str]]:
    async with services.db.read() as conn:
        found = {str(r[0]) for r in await conn.execute(select(jobs.c.id))}
        imports = {str(r[0]) for r in await conn.execute(select(import_jobs.c.id))}
        files = {str(r[0]) for r in await conn.execute(select(import_files.c.job_id))}
    return found, imports, files


async def test_jobs_that_ended_before_the_retention_are_forgotten_with_their_files(
    services: Services,
) -> None:
    # A steady load adds jobs without end: those long finished go, whatever their kind
    # and outcome; recent ones and those not yet finished stay, however old.
    old = datetime.now(UTC) - timedelta(days=8)
    recent = datetime.now(UTC) - timedelta(days=6)
    await add_job(services, "ok-old", "succeeded", old)
    await add_job(services, "failed-old", "failed", old)
    await add_job(services, "ok-recent", "succeeded", recent)
    await add_job(services, "queued-old", "queued", None)
    await add_job(services, "running-old", "running", None)
    await add_import(services, "import-old", "COMPLETED", old)
    await add_import(services, "import-errors-old", "COMPLETED_WITH_ERRORS", old)
    await add_import(services, "import-failed-old", "FAILED", old)
    await add_import(services, "import-recent", "COMPLETED", recent)
    await add_import(services, "import-running", "IMPORTING", None)

    assert await services.maintenance.forget_finished_jobs(7 * DAY) == 5

    found, imports, files = await job_ids(services)
    assert found == {"ok-recent", "queued-old", "running-old"}
    assert imports == {"import-recent", "import-running"}
    assert files == {"import-recent", "import-running"}
    # What is left reads as before; what went is unknown.
    assert (await services.imports.job("import-recent")).counts.imported == 2
    with pytest.raises(NotFound):
        await services.imports.job("import-old")


async def test_finished_jobs_go_in_short_transactions(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance_service, "PRUNE_BATCH", 2)
    old = datetime.now(UTC) - timedelta(days=8)
    for i in range(5):
        await add_job(services, f"j{i}", "succeeded", old)
    for i in range(3):
        await add_import(services, f"i{i}", "COMPLETED", old)
    assert await services.maintenance.forget_finished_jobs(7 * DAY) == 8
    assert await job_ids(services) == (set(), set(), set())


async def test_the_periodic_sweep_forgets_finished_jobs(services: Services) -> None:
    old = datetime.now(UTC) - timedelta(days=8)
    await add_job(services, "ok-old", "succeeded", old)
    await add_import(services, "import-old", "COMPLETED", old)
    await add_job(services, "ok-now", "succeeded", datetime.now(UTC))
    await sweep_once(services)
    assert await job_ids(services) == ({"ok-now"}, set(), set())
