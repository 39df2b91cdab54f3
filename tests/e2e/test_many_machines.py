"""Many machines on one PostgreSQL and one S3 bucket (issue 21; docs/deploy.md): two
``serve --role api`` processes with data directories of their own, two ``worker``
processes and two ``background`` roles, sharing no local file.

An asset uploaded through one API is read, searched, patched and deleted through the
other; upload tokens minted by one are accepted by the other; a batch of small images
(200; ``ASSETVAULT_TEST_MANY_ASSETS`` to change it) is processed while one worker is
killed with SIGKILL, every job completed once; the background role that holds the
dispatcher's lease is killed with SIGKILL while a delivery is in flight, and the other
takes over within the lease's time: every event delivered, none under a second id.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from assetvault.adapters.database.secrets import plain_dsn
from assetvault.events.dispatcher import LEASE_SECONDS
from assetvault.tree import events as tree_events
from tests import media
from tests.factories import bearer, complete, initiate, make_folder, upload
from tests.live import ASSETVAULT, LiveServer
from tests.pg import create_test_database, drop_database
from tests.receivers import Received, Reply, receiver
from tests.s3 import S3Server

pytestmark = [pytest.mark.e2e, pytest.mark.s3]

ASSETS = int(os.environ.get("ASSETVAULT_TEST_MANY_ASSETS", "200"))
ANNOUNCED = (
    tree_events.PROCESSING_COMPLETED,
    tree_events.METADATA_UPDATED["asset"],
    tree_events.DELETED["asset"],
)
TYPES = [
    "aem.assets.asset.processing_completed",
    "aem.assets.asset.metadata_updated",
    "aem.assets.asset.deleted",
]
SEARCH = "/adobe/assets/search?allowUnsafeSearch=true"


def adobe(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Api-Key": "e2e"}


def query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(plain_dsn(url))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.1)


class Role:
    """``assetvault worker`` or ``assetvault background`` as a machine of its own: its own
    data directory, its own process group (a kill takes the whole machine's role)."""

    def __init__(self, command: list[str], data_dir: Path, env: dict[str, str]) -> None:
        data_dir.mkdir(parents=True)
        self.log = data_dir.parent / f"{data_dir.name}.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [ASSETVAULT, *command, "--data-dir", str(data_dir)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def database_url(postgres_admin_url: str) -> Iterator[str]:
    url = asyncio.run(create_test_database(postgres_admin_url))
    yield url
    asyncio.run(drop_database(postgres_admin_url, url))


def test_every_role_on_machines_of_its_own(
    tmp_path: Path, database_url: str, s3_server: S3Server
) -> None:
    env = {
        **os.environ,
        **s3_server.env(),
        "ASSETVAULT_DATABASE_URL": database_url,
        "ASSETVAULT_BLOBS_URL": s3_server.fresh_url(),
        "ASSETVAULT_BLOBS_REDIRECT": "false",
        "ASSETVAULT_FETCH_ALLOW": "127.0.0.1",
        "ASSETVAULT_EVENTS_RETRY_UNIT_SECONDS": "0.2",
        "ASSETVAULT_JOB_LEASE_SECONDS": "3",
    }
    env.pop("ASSETVAULT_DATA_DIR", None)
    held: list[str] = []  # the outbox id of the delivery the hook holds
    holding = threading.Event()
    release = threading.Event()
    posts: list[tuple[float, dict[str, Any]]] = []

    def answer(r: Received) -> Reply:
        if r.method == "GET":
            return Reply(200, parse_qs(urlsplit(r.path).query)["challenge"][0].encode())
        event = json.loads(r.body)
        posts.append((time.monotonic(), event))
        if holding.is_set() and not held and event["type"] == TYPES[2]:
            held.append(event["id"])
            release.wait(60)  # in flight until its dispatcher is dead
        return Reply(200)

    machines: list[Role] = []
    apis: list[LiveServer] = []
    with receiver(answer) as hook:
        try:
            for n in (1, 2):
                api = LiveServer(
                    data_dir=tmp_path / f"api{n}",
                    env=env,
                    extra_args=["--role", "api", "--processes", "1"],
                )
                apis.append(api.start(timeout=180))
            one, two = apis
            token = subprocess.run(
                [
                    ASSETVAULT,
                    "token",
                    "create",
                    "--data-dir",
                    str(tmp_path / "cli"),
                    "--name",
                    "t",
                    "--scope",
                    "admin",
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
            made = httpx.post(
                one.url + "/adobe/events/registrations",
                json={
                    "name": "hook",
                    "client_id": "e2e",
                    "delivery_type": "webhook",
                    "webhook_url": hook.url + "/hook",
                    "events_of_interest": TYPES,
                },
                headers=adobe(token),
                timeout=60,
            )
            assert made.status_code == 201, made.text
            background = [Role(["background"], tmp_path / f"background{n}", env) for n in (1, 2)]
            workers = [
                Role(["worker", "--jobs", "2"], tmp_path / f"worker{n}", env) for n in (1, 2)
            ]
            machines += [*background, *workers]
            for d in ("api1", "api2", "background1", "worker1"):
                assert not (tmp_path / d / "secret.key").exists()
                assert not (tmp_path / d / "event-keys").exists()

            asyncio.run(one_asset_through_both(one, two, token, database_url))
            many_assets_while_a_worker_dies(tmp_path, one, two, token, database_url, workers)
            killed = the_dispatcher_dies_mid_delivery(
                two, token, database_url, background, holding, held, release
            )
            # Every event of the registration's types is delivered, each under one id.
            wanted = {
                r["id"]: r
                for r in query(
                    database_url,
                    "SELECT id, type, node_id FROM outbox WHERE type = ANY($1)",
                    list(ANNOUNCED),
                )
            }
            wait_for(
                lambda: {e["id"] for _, e in posts} >= set(wanted),
                120,
                "every event delivered",
            )
            ids: dict[str, set[str]] = defaultdict(set)
            for _, e in posts:
                ids[e["id"]].add(e["event_id"])
            assert set(ids) == set(wanted)
            assert all(len(v) == 1 for v in ids.values()), "an event under a second id"
            # Each sent once, but for those in flight when the dispatcher was killed (the
            # held one, and any whose answer it had not yet recorded): those again, under
            # the same id and with the same body, by the other background role.
            again = Counter(e["id"] for _, e in posts)
            first = {e["id"]: t for t, e in reversed(posts)}
            twice = {k for k, n in again.items() if n > 1}
            assert all(first[k] < killed and again[k] == 2 for k in twice), [
                (wanted[k]["type"], again[k], first[k] - killed) for k in twice
            ]
            for k in twice:
                assert len({json.dumps(e, sort_keys=True) for _, e in posts if e["id"] == k}) == 1
            # One processing_completed per asset: no job completed twice.
            completed = Counter(r["node_id"] for r in wanted.values() if r["type"] == ANNOUNCED[0])
            assert len(completed) == ASSETS + 2 and set(completed.values()) == {1}
            # The held delivery came again from the other background role, within the
            # lease's time of the kill (and its answer was recorded).
            assert again[held[0]] == 2
            takeover = min(t for t, e in posts if e["id"] == held[0] and t > killed) - killed
            assert takeover <= LEASE_SECONDS + 10, takeover
            print(f"the held delivery was sent again {takeover:.1f} s after the kill")
        finally:
            release.set()
            for m in machines:
                m.stop()
            for api in apis:
                api.stop()
        for d in ("api1", "api2", "background1", "background2", "worker1", "worker2"):
            assert not (tmp_path / d / "secret.key").exists()
            assert not (tmp_path / d / "event-keys").exists()


async def one_asset_through_both(
    one: LiveServer, two: LiveServer, token: str, database_url: str
) -> None:
    a = httpx.AsyncClient(base_url=one.url, timeout=60)
    b = httpx.AsyncClient(base_url=two.url, timeout=60)
    try:
        photo = media.jpeg_with_metadata(Path(f"/tmp/assetvault-mm-{os.getpid()}.jpg"), 64, 48)
        data = photo.read_bytes()
        photo.unlink()
        done = await upload(a, token, "/content/dam", "harbour.jpg", data)
        assert done.status_code == 200, done.text
        read = await b.get("/api/assets/harbour.jpg.json", headers=bearer(token))
        assert read.status_code == 200, read.text
        got = await b.get("/content/dam/harbour.jpg", headers=bearer(token))
        assert got.status_code == 200 and got.content == data
        patched = await b.put(
            "/api/assets/harbour.jpg",
            json={"class": "asset", "properties": {"dc:title": "Lighthouse at dusk"}},
            headers=bearer(token),
        )
        assert patched.status_code == 200, patched.text
        for client in (a, b):  # the database's full text: searched through either
            found = await client.post(
                SEARCH, json={"query": [{"match": {"text": "lighthouse"}}]}, headers=adobe(token)
            )
            assert found.status_code == 200, found.text
            hits = found.json()["hits"]["results"]
            assert [h["repositoryMetadata"]["repo:name"] for h in hits] == ["harbour.jpg"]
        # An upload token and part URIs minted by one machine, used on the other.
        init = await initiate(a, token, "/content/dam", [("crossed.jpg", len(data) + 1)])
        assert init.status_code == 201, init.text
        file = init.json()["files"][0]
        for uri in file["uploadURIs"]:
            # Blobs on S3: a presigned part URL of the bucket (which answers 200), not the
            # API's; the token minted by one machine is then completed on the other.
            direct = not uri.startswith(one.url)
            put = await b.put(uri.replace(one.url, two.url), content=data + b"x")
            assert put.status_code == (200 if direct else 201), put.text
        crossed = await complete(b, token, "/content/dam", file, len(data) + 1)
        assert crossed.status_code == 200, crossed.text
        assert (await a.get("/content/dam/crossed.jpg", headers=bearer(token))).content == (
            data + b"x"
        )
        # Processed (by either worker) before it is deleted, so its events are all there.
        processed = "SELECT 1 FROM nodes WHERE name = 'harbour.jpg' AND asset_state = 'processed'"
        await asyncio.to_thread(wait_for, lambda: query(database_url, processed), 120, "processed")
        deleted = await b.delete("/api/assets/harbour.jpg", headers=bearer(token))
        assert deleted.status_code == 200, deleted.text
        gone = await a.get("/api/assets/harbour.jpg.json", headers=bearer(token))
        assert gone.status_code == 404
    finally:
        await a.aclose()
        await b.aclose()


def many_assets_while_a_worker_dies(
    tmp_path: Path,
    one: LiveServer,
    two: LiveServer,
    token: str,
    database_url: str,
    workers: list[Role],
) -> None:
    base = media.jpeg_with_metadata(tmp_path / "small.jpg", 48, 32).read_bytes()

    async def send() -> None:
        clients = [httpx.AsyncClient(base_url=s.url, timeout=120) for s in (one, two)]
        gate = asyncio.Semaphore(6)

        async def put(i: int) -> None:
            async with gate:
                # Distinct content: bytes after the JPEG's end marker.
                body = base + i.to_bytes(4, "big")
                r = await upload(clients[i % 2], token, "/content/dam/many", f"m{i}.jpg", body)
                assert r.status_code == 200, r.text

        try:
            made = await make_folder(clients[0], token, "/many")
            assert made.status_code == 201, made.text
            await asyncio.gather(*(put(i) for i in range(ASSETS)))
        finally:
            for c in clients:
                await c.aclose()

    def states() -> dict[str, int]:
        rows = query(
            database_url,
            "SELECT asset_state, count(*) AS n FROM nodes WHERE kind = 'asset' GROUP BY 1",
        )
        return {r["asset_state"]: r["n"] for r in rows}

    failed: list[BaseException] = []

    def sending() -> None:
        try:
            asyncio.run(send())
        except BaseException as exc:  # reported by the test's thread
            failed.append(exc)

    sender = threading.Thread(target=sending)
    sender.start()
    doomed = workers[0]

    def doomed_is_busy() -> bool:
        if failed:
            raise failed[0]
        running = query(
            database_url,
            "SELECT id FROM jobs WHERE state = 'running' AND worker LIKE $1",
            f"%:{doomed.pid}:%",
        )
        return len(running) >= 1 and states().get("processed", 0) >= min(20, ASSETS // 4)

    wait_for(doomed_is_busy, 300, "the first worker running a job after a few were processed")
    doomed.kill()  # kill -9 of the worker's machine role, jobs in flight
    sender.join()
    if failed:
        raise failed[0]
    total = ASSETS + 1  # and the one left of the first part
    wait_for(lambda: states() == {"processed": total}, 600, "all processed")
    jobs = query(
        database_url, "SELECT state, attempts, worker FROM jobs WHERE kind = 'process-asset'"
    )
    # One job per asset (the first part's two included), each succeeded.
    assert len(jobs) == total + 1 and {j["state"] for j in jobs} == {"succeeded"}
    # The jobs the dead worker held were taken over and completed by the other.
    taken_over = [j for j in jobs if j["attempts"] > 1]
    assert taken_over and all(f":{doomed.pid}:" not in j["worker"] for j in taken_over)


def the_dispatcher_dies_mid_delivery(
    api: LiveServer,
    token: str,
    database_url: str,
    background: list[Role],
    holding: threading.Event,
    held: list[str],
    release: threading.Event,
) -> float:
    """The instant (monotonic) the lease holder was killed."""

    def lease_holder() -> int:
        value = query(database_url, "SELECT value FROM event_state WHERE key = 'dispatcher_lease'")[
            0
        ]["value"]
        return int(value.split(":")[1]) if value else 0

    holding.set()
    with httpx.Client(base_url=api.url, timeout=60) as http:
        for i in range(3):
            r = http.delete(f"/api/assets/many/m{i}.jpg", headers=bearer(token))
            assert r.status_code == 200, r.text
    wait_for(lambda: held, 60, "the deletion's delivery in flight")
    holder = lease_holder()
    dying = next(b for b in background if b.pid == holder)
    other = next(b for b in background if b is not dying)
    dying.kill()
    killed = time.monotonic()
    release.set()  # the dead dispatcher never records this answer
    with httpx.Client(base_url=api.url, timeout=60) as http:  # events after the kill too
        r = http.delete("/api/assets/crossed.jpg", headers=bearer(token))
        assert r.status_code == 200, r.text
    wait_for(lambda: lease_holder() == other.pid, LEASE_SECONDS + 30, "the takeover")
    return killed


def test_serve_role_api_refuses_the_embedded_engines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETVAULT_")}
    out = subprocess.run(
        [ASSETVAULT, "serve", "--role", "api", "--data-dir", str(tmp_path / "d"), "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "serve --role api" in out.stderr
    assert "ASSETVAULT_DATABASE_URL=postgresql://" in out.stderr
    assert "ASSETVAULT_BLOBS_URL=s3://" in out.stderr
    assert not (tmp_path / "d" / "assetvault.db").exists()  # refused before anything
