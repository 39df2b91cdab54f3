"""The import service on its own: two runs of one job at once (a worker whose lease ran
out while it still worked) import every file exactly once; the stored type comes from
the content."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assetvault.adapters.blobs.base import BlobInfo
from assetvault.adapters.queue.base import Job
from assetvault.imports.models import ImportFile
from assetvault.imports.ports import Downloaded
from assetvault.imports.requests import url_import
from assetvault.imports.service import IMPORT_RUN, choose_type
from assetvault.services import Services
from tests.factories import outbox_events
from tests.imports import files_handler, import_services
from tests.receivers import receiver


@pytest.fixture(params=["sqlite", "postgresql"])
async def services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    async for svc in import_services(request, tmp_path, import_concurrency=4):
        yield svc


async def test_two_runs_of_one_job_import_each_file_once(services: Services) -> None:
    served = {f"/d{i}/f{i}.txt": f"file {i}".encode() for i in range(30)}
    with receiver(files_handler(served)) as server:
        request = url_import(
            {
                "folder": "/content/dam/twice",
                "files": [
                    {"fileName": f"f{i}.txt", "url": f"{server.url}/d{i}/f{i}.txt"}
                    for i in range(30)
                ],
            }
        )
        job = await services.imports.submit_urls(request, user="writer")
        queued = Job("q", IMPORT_RUN, {"importId": job.id, "user": "writer"}, 1, 5)
        first, second = await asyncio.gather(
            services.imports.run(queued), services.imports.run(queued)
        )
    async with services.writes.change("writer") as ch:
        await first(ch)
    async with services.writes.change("writer") as ch:
        await second(ch)  # the job is terminal already: nothing more happens
    done = await services.imports.job(job.id)
    assert done.step == "COMPLETED" and done.counts.imported == 30
    events = await outbox_events(services)
    created = sorted(e.path for e in events if e.type == "asset.created")
    assert created == sorted(f"/content/dam/twice/f{i}.txt" for i in range(30))
    assert [e.type for e in events].count("import.completed") == 1


def test_the_type_comes_from_the_content_and_a_contradiction_is_a_warning() -> None:
    blob = BlobInfo("k", 1, "s")

    def file(name: str, mime: str | None) -> ImportFile:
        return ImportFile(
            "j", 0, name, "u", None, None, mime, None, {}, "pending", None, None, None, None, []
        )

    jpeg = Downloaded(blob, "image/jpeg", "application/octet-stream")
    assert choose_type(file("a.png", "image/png"), jpeg)[0] == "image/jpeg"
    assert "image/png" in choose_type(file("a.png", "image/png"), jpeg)[1][0]
    assert choose_type(file("a.jpg", "image/jpeg"), jpeg) == ("image/jpeg", [])
    text = Downloaded(blob, "text/plain", "text/csv")
    assert choose_type(file("a.csv", None), text) == ("text/csv", [])
    assert choose_type(file("a.csv", "text/x-custom"), text) == ("text/x-custom", [])
    unknown = Downloaded(blob, "application/octet-stream", None)
    assert choose_type(file("a.pdf", None), unknown) == ("application/pdf", [])
    assert choose_type(file("blob", None), unknown) == ("application/octet-stream", [])


async def test_the_parts_of_a_job_share_its_files_and_the_last_ends_it(
    services: Services,
) -> None:
    served = {f"/p{i}.txt": f"part file {i}".encode() for i in range(9)}
    with receiver(files_handler(served)) as server:
        request = url_import(
            {
                "folder": "/content/dam/parts",
                "files": [
                    {"fileName": f"p{i}.txt", "url": f"{server.url}/p{i}.txt"} for i in range(9)
                ],
            }
        )
        job = await services.imports.submit_urls(request, user="writer")
        parts = [
            Job(
                f"q{i}",
                IMPORT_RUN,
                {"importId": job.id, "user": "writer", "shard": i, "shards": 2},
                1,
                5,
            )
            for i in range(2)
        ]
        first = await services.imports.run(parts[0])
        async with services.writes.change("writer") as ch:
            await first(ch)  # the other part's files are still pending: the job goes on
        midway = await services.imports.job(job.id)
        assert midway.step == "IMPORTING" and midway.counts.imported == 5
        second = await services.imports.run(parts[1])
        async with services.writes.change("writer") as ch:
            await second(ch)
    done = await services.imports.job(job.id)
    assert done.step == "COMPLETED" and done.counts.imported == 9
    events = await outbox_events(services)
    assert [e.type for e in events].count("import.completed") == 1


async def test_a_part_that_failed_for_good_fails_its_files_only(services: Services) -> None:
    served = {f"/q{i}.txt": b"q" for i in range(4)}
    with receiver(files_handler(served)) as server:
        request = url_import(
            {
                "folder": "/content/dam/q",
                "files": [
                    {"fileName": f"q{i}.txt", "url": f"{server.url}/q{i}.txt"} for i in range(4)
                ],
            }
        )
        job = await services.imports.submit_urls(request, user="writer")
        parts = [
            Job(
                f"q{i}",
                IMPORT_RUN,
                {"importId": job.id, "user": "writer", "shard": i, "shards": 2},
                5,
                5,
            )
            for i in range(2)
        ]
        async with services.writes.change("writer") as ch:
            await services.imports.failed(ch, parts[1], "the worker stopped during every attempt")
        assert (await services.imports.job(job.id)).step == "QUEUED"
        finish = await services.imports.run(parts[0])
        async with services.writes.change("writer") as ch:
            await finish(ch)
    done = await services.imports.job(job.id)
    assert done.step == "COMPLETED_WITH_ERRORS"
    assert (done.counts.imported, done.counts.failed) == (2, 2)
    assert all("every attempt" in e["detail"] for e in done.errors)
