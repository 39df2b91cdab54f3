"""The largest URL import the seed allows: 300 files from a loopback file server, a few
of them broken in different ways; the rest import, the broken ones say why."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from assetvault.services import Services
from tests.conftest import Tokens
from tests.imports import adobe, all_results, import_services, run_imports
from tests.receivers import Received, Reply, receiver

COUNT = 300
BROKEN = {
    "/f007.txt": (404, "404"),
    "/f100.txt": (410, "410"),
    "/f150.txt": (500, "500"),  # every attempt: retried, then failed
    "/f299.txt": (403, "403"),
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    async for svc in import_services(request, tmp_path, import_max_file_size=4096):
        yield svc


def handle(r: Received) -> Reply:
    if r.path in BROKEN:
        return Reply(BROKEN[r.path][0], b"broken")
    if r.path == "/f200.txt":
        return Reply(200, b"x" * 5000)  # over the file size limit of this test
    return Reply(200, f"file {r.path}\n".encode() * 20)


async def test_300_files_with_a_few_broken_urls(
    client: Any, tokens: Tokens, services: Services
) -> None:
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    with receiver(handle) as server:
        files = [
            {"fileName": f"f{i:03}.txt", "url": f"{server.url}/f{i:03}.txt"} for i in range(COUNT)
        ]
        files[250]["url"] = f"http://127.0.0.1:{dead_port}/f250.txt"
        r = await client.post(
            "/adobe/assets/import/fromUrl",
            json={"folder": "/content/dam/bulk", "files": files},
            headers=adobe(tokens.write),
        )
        assert r.status_code == 202, r.text
        await run_imports(services)
    doc = (await client.get(r.headers["location"], headers=adobe(tokens.read))).json()
    failed = len(BROKEN) + 2
    assert doc["state"] == "COMPLETED" and doc["progress"]["step"] == "COMPLETED_WITH_ERRORS"
    assert doc["progress"]["imported"] == COUNT - failed
    assert doc["progress"]["failed"] == failed
    items = await all_results(
        client, tokens.read, r.headers["location"].replace("status", "result")
    )
    assert len(items) == COUNT
    bad = {i["fileName"]: i["error"] for i in items if i["status"] == "failed"}
    assert set(bad) == {"f007.txt", "f100.txt", "f150.txt", "f299.txt", "f200.txt", "f250.txt"}
    for path, (_, code) in BROKEN.items():
        assert code in bad[path.strip("/")]["detail"]
    assert bad["f200.txt"]["status"] == 413
    assert "connection" in bad["f250.txt"]["detail"]
    folder = await services.tree.get_folder("/content/dam/bulk")
    _, total = await services.tree.list_children(folder)
    assert total == COUNT - failed
