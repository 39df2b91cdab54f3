"""The Import API 2025.04's from-url and jobs (/adobe/import/...), sharing the job store
with the Author API's fromUrl."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assetvault.services import Services
from tests.conftest import Tokens
from tests.imports import adobe, all_results, files_handler, import_services, run_imports
from tests.receivers import receiver


@pytest.fixture(params=["sqlite", "postgresql"])
async def services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    async for svc in import_services(request, tmp_path):
        yield svc


@pytest.fixture
def server() -> Any:
    with receiver(files_handler({"/a.txt": b"a", "/b.txt": b"b"})) as r:
        yield r


def body(server: Any, folder: str = "/content/dam/api") -> dict[str, Any]:
    return {
        "folder": folder,
        "sourceName": "Assets Workbench",
        "files": [{"fileName": n, "url": f"{server.url}/{n}"} for n in ("a.txt", "b.txt")],
    }


async def test_from_url_answers_202_with_its_status_url(
    client: Any, tokens: Tokens, services: Services, server: Any
) -> None:
    r = await client.post("/adobe/import/from-url", json=body(server), headers=adobe(tokens.write))
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/adobe/import/jobs/{job['id']}/status"
    assert job["operation"] == "aem.assets.import.fromurl" and job["status"] == 202
    assert job["data"]["config"]["sourceName"] == "Assets Workbench"
    await run_imports(services)
    status = await client.get(r.headers["location"], headers=adobe(tokens.read))
    assert status.json()["state"] == "COMPLETED" and status.json()["status"] == 200
    head = await client.head(r.headers["location"], headers=adobe(tokens.read))
    assert head.status_code == 200 and head.headers["etag"] == status.headers["etag"]
    items = await all_results(client, tokens.read, f"/adobe/import/jobs/{job['id']}/result")
    assert [i["status"] for i in items] == ["imported", "imported"]
    # One store: the Author API's paths show the same job.
    same = await client.get(
        f"/adobe/assets/import/jobs/{job['id']}/status", headers=adobe(tokens.read)
    )
    assert same.json() == status.json()


async def test_from_url_refuses_what_the_seed_refuses(
    client: Any, tokens: Tokens, services: Services, server: Any
) -> None:
    wrong = await client.post(
        "/adobe/import/from-url", json=body(server, "content/dam/x"), headers=adobe(tokens.write)
    )
    assert wrong.status_code == 400 and "folder" in wrong.json()["detail"]
    assert (await client.post("/adobe/import/from-url", json=body(server))).status_code == 401


async def test_jobs_are_listed_newest_first_with_cursor_and_operation_filter(
    client: Any, tokens: Tokens, services: Services, server: Any
) -> None:
    ids = []
    for i in range(5):
        r = await client.post(
            "/adobe/import/from-url",
            json=body(server, f"/content/dam/j{i}"),
            headers=adobe(tokens.write),
        )
        ids.append(r.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await client.get("/adobe/import/jobs", params=params, headers=adobe(tokens.read))
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= 2
        seen.extend(j["id"] for j in page.json()["items"])
        cursor = page.json().get("cursor")
        if not cursor:
            break
    assert seen == list(reversed(ids))
    first = (await client.get("/adobe/import/jobs", headers=adobe(tokens.read))).json()["items"][0]
    assert first["progress"]["total"] == 2 and first["state"] == "PROCESSING"
    by_url = await client.get(
        "/adobe/import/jobs",
        params={"operation": "aem.assets.import.fromurl"},
        headers=adobe(tokens.read),
    )
    assert len(by_url.json()["items"]) == 5
    by_source = await client.get(
        "/adobe/import/jobs",
        params={"operation": "aem.assets.import.fromsource"},
        headers=adobe(tokens.read),
    )
    assert by_source.json()["items"] == [] and "cursor" not in by_source.json()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"operation": "aem.assets.import.other"}, "operation"),
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": ""}, "cursor"),
    ],
)
async def test_bad_listing_parameters_are_400(
    client: Any, tokens: Tokens, params: dict[str, Any], field: str
) -> None:
    r = await client.get("/adobe/import/jobs", params=params, headers=adobe(tokens.read))
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"]
    assert r.headers["content-type"] == "application/problem+json"
