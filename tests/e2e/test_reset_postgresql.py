"""Reset of a running ``assetvault serve`` on PostgreSQL: the admin API and the CLI bring
a DAM of a few hundred assets back to an empty one within a second (tokens kept), the
blobs gone with the rows; afterwards the server is used as a fresh one: an upload, a
search that finds it, and the events of a registration made after the reset."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.test_events import ENV, adobe, make_and_delete, wait_for
from tests.e2e.test_snapshots import found, names
from tests.factories import upload
from tests.live import ASSETVAULT, LiveServer, create_token
from tests.pg import create_test_database, drop_database
from tests.receivers import Received, Reply, receiver

pytestmark = pytest.mark.e2e

ASSETS = 300


@pytest.fixture
def postgres_env(postgres_admin_url: str) -> Iterator[dict[str, str]]:
    url = asyncio.run(create_test_database(postgres_admin_url))
    yield {"ASSETVAULT_DATABASE_URL": url}
    asyncio.run(drop_database(postgres_admin_url, url))


def fill(server: LiveServer, token: str, n: int) -> None:
    async def run() -> None:
        limit = asyncio.Semaphore(8)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:

            async def one(i: int) -> None:
                async with limit:
                    r = await upload(client, token, "/content/dam", f"rock{i}.txt", b"rock %d" % i)
                    assert r.status_code == 200, r.text

            await asyncio.gather(*(one(i) for i in range(n)))

    asyncio.run(run())


def blob_files(data_dir: Path) -> list[Path]:
    root = data_dir / "blobs"
    found: list[Path] = []
    # What the store holds; a cleared store's trash under .tmp is on its way out (being
    # removed while this walks, so it is not entered).
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(here) / f for f in files if not f.startswith("."))
    return found


def test_reset_on_postgresql(tmp_path: Path, postgres_env: dict[str, str]) -> None:
    def hook_answer(r: Received) -> Reply:
        if r.method == "GET":
            return Reply(200, parse_qs(urlsplit(r.path).query)["challenge"][0].encode())
        return Reply(200)

    with receiver(hook_answer) as before_hook, receiver(hook_answer) as after_hook:
        # No worker: a rendition a job in flight stores after the reset is an orphan the
        # sweep removes (docs/ci.md), and would make the count of blobs left a race.
        server = LiveServer(
            data_dir=tmp_path / "data",
            env={**ENV, **postgres_env},
            extra_args=["--workers", "0"],
        ).start()
        try:
            token = create_token(server.data_dir, "e2e-admin", "admin", env=server.env)
            http = httpx.Client(base_url=server.url, headers=adobe(token), timeout=60)

            def register(url: str, name: str) -> None:
                made = http.post(
                    "/adobe/events/registrations",
                    json={
                        "name": name,
                        "client_id": "e2e-client",
                        "delivery_type": "webhook",
                        "webhook_url": url + "/hook",
                        "events_of_interest": ["aem.assets.asset.deleted"],
                    },
                )
                assert made.status_code == 201, made.text

            register(before_hook.url, "before")
            fill(server, token, ASSETS)
            listed = http.get("/api/assets.json")
            assert listed.json()["properties"]["srn:paging"]["total"] == ASSETS, listed.text
            assert found(http, "rock7.txt") == ["rock7.txt"]
            stored = blob_files(server.data_dir)
            assert len(stored) >= ASSETS  # the originals

            # The admin API: a few hundred assets gone within a second, the token kept.
            started = time.monotonic()
            r = http.post("/_assetvault/reset")
            took = time.monotonic() - started
            assert r.status_code == 200, r.text
            print(f"reset of {ASSETS} assets: {r.json()['seconds']:.3f} s, {took:.3f} s round trip")
            assert server.log_path is not None
            said = [x for x in server.log_path.read_text().splitlines() if "data reset" in x]
            print(said)
            assert r.json()["seconds"] < 1.0, (r.json(), said)
            assert names(http) == []
            assert found(http, "rock7.txt") == []
            assert blob_files(server.data_dir) == []
            # No delete event for what the reset removed (the registration went too).
            assert [x for x in before_hook.received if x.method == "POST"] == []

            # The CLI against the running server, asking first unless --yes.
            env = {**os.environ, "ASSETVAULT_URL": server.url, "ASSETVAULT_TOKEN": token}
            asked = subprocess.run(
                [ASSETVAULT, "reset"], capture_output=True, text=True, timeout=120, env=env
            )
            assert asked.returncode == 2 and "pass --yes" in asked.stderr
            fill(server, token, 3)
            done = subprocess.run(
                [ASSETVAULT, "reset", "--yes"], capture_output=True, text=True, timeout=120, env=env
            )
            assert done.returncode == 0, done.stderr
            assert "reset in" in done.stdout
            assert names(http) == []

            # Then used as a fresh server: an upload, a search, the events of a new
            # registration.
            register(after_hook.url, "after")
            fill(server, token, 1)
            assert names(http) == ["rock0.txt"]
            assert found(http, "rock0.txt") == ["rock0.txt"]
            make_and_delete(server, token, 1)
            posts = lambda: [x for x in after_hook.received if x.method == "POST"]  # noqa: E731
            wait_for(lambda: len(posts()) == 1)
            assert b"aem.assets.asset.deleted" in posts()[0].body
            assert [x for x in before_hook.received if x.method == "POST"] == []

            # Without the tokens: the admin token is refused afterwards.
            r = http.post("/_assetvault/reset", json={"keepTokens": False})
            assert r.status_code == 200, r.text
            assert http.get("/api/assets.json").status_code == 401
        finally:
            server.stop()
