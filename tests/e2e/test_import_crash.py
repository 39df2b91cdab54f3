"""kill -9 the server in the middle of a URL import: after a restart the job resumes
and ends COMPLETED with every file imported exactly once, none lost."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, create_token
from tests.receivers import Received, Reply, receiver

pytestmark = pytest.mark.e2e

COUNT = 40


def slow_files(delay: float):  # type: ignore[no-untyped-def]
    def handle(r: Received) -> Reply:
        time.sleep(delay)  # slow enough for the kill to land mid-job
        name = r.path.strip("/")
        return Reply(200, f"content of {name}\n".encode() * 50)

    return handle


def status(http: httpx.Client, url: str) -> dict[str, Any]:
    r = http.get(url)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def created_events(data_dir: Path) -> list[str]:
    db = sqlite3.connect(f"file:{data_dir / 'assetvault.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT path FROM outbox WHERE type = 'asset.created' AND path LIKE ?",
            ("/content/dam/crash/%",),
        ).fetchall()
        return [r[0] for r in rows]
    finally:
        db.close()


def test_kill_9_mid_import_resumes_without_duplicates_or_losses(tmp_path: Path) -> None:
    hits: dict[str, int] = {}
    lock = threading.Lock()
    handler = slow_files(0.15)

    def counting(r: Received) -> Reply:
        with lock:
            hits[r.path] = hits.get(r.path, 0) + 1
        return handler(r)

    env = {
        "ASSETVAULT_FETCH_ALLOW": "127.0.0.1",
        "ASSETVAULT_IMPORT_CONCURRENCY": "2",
        "ASSETVAULT_JOB_LEASE_SECONDS": "2",
    }
    with receiver(counting) as files:
        server = LiveServer(data_dir=tmp_path / "data", env=env, extra_args=["--workers", "1"])
        server.start()
        try:
            token = create_token(server.data_dir, "crash")
            http = httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {token}", "X-Api-Key": "e2e"},
                timeout=30,
            )
            body = {
                "folder": "/content/dam/crash",
                "files": [
                    {"fileName": f"f{i:02}.txt", "url": f"{files.url}/f{i:02}.txt"}
                    for i in range(COUNT)
                ],
            }
            r = http.post("/adobe/assets/import/fromUrl", json=body)
            assert r.status_code == 202, r.text
            status_url = r.headers["location"]
            deadline = time.monotonic() + 60
            while status(http, status_url)["progress"]["imported"] < 6:
                assert time.monotonic() < deadline, "the import made no progress"
                time.sleep(0.05)
            server.kill()  # kill -9: the API processes and the worker go with it
            before = len(created_events(server.data_dir))
            assert 0 < before < COUNT, "the kill came too late to test anything"

            server.start()
            deadline = time.monotonic() + 120
            while (doc := status(http, status_url))["state"] == "PROCESSING":
                assert time.monotonic() < deadline, doc
                time.sleep(0.2)
            assert doc["state"] == "COMPLETED" and doc["progress"]["step"] == "COMPLETED", doc
            assert doc["progress"]["imported"] == COUNT and doc["progress"]["failed"] == 0

            items: list[dict[str, Any]] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 50}
                if cursor:
                    params["cursor"] = cursor
                page = http.get(status_url.replace("status", "result"), params=params).json()
                items.extend(page["items"])
                cursor = page.get("cursor")
                if not cursor:
                    break
            assert [i["fileName"] for i in items] == [f"f{i:02}.txt" for i in range(COUNT)]
            assert all(i["status"] == "imported" for i in items)
            assert len({i["assetId"] for i in items}) == COUNT
            # Exactly one asset per file: one creation event each, nothing twice.
            created = created_events(server.data_dir)
            assert sorted(created) == [f"/content/dam/crash/f{i:02}.txt" for i in range(COUNT)]
            listing = http.get("/api/assets/crash.json", params={"limit": 100}).json()
            assert len(listing["entities"]) == COUNT
            # Files the kill interrupted were fetched again; the imported ones were not.
            assert sum(hits.values()) < 2 * COUNT
        finally:
            server.stop()
