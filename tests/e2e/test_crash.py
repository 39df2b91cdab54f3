"""kill -9 the server mid-upload and mid-complete: after a restart no partial asset is
visible, acknowledged parts are still there, and no orphan blob survives the sweep."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, create_token

pytestmark = pytest.mark.e2e

MiB = 2**20


def blob_files(data_dir: Path) -> set[str]:
    root = data_dir / "blobs"
    return {p.name for p in root.glob("??/??/*") if p.is_file()}


def referenced_blobs(data_dir: Path) -> set[str]:
    db = sqlite3.connect(f"file:{data_dir / 'assetvault.db'}?mode=ro", uri=True)
    try:
        keys = {k for (k,) in db.execute("SELECT blob_key FROM nodes") if k}
        keys |= {k for (k,) in db.execute("SELECT blob_key FROM asset_versions")}
        keys |= {k for (k,) in db.execute("SELECT blob_key FROM renditions")}
        return keys
    finally:
        db.close()


def staged_blobs(data_dir: Path) -> set[str]:
    import json

    return {
        json.loads(p.read_text())["key"]
        for p in (data_dir / "blobs" / ".uploads").glob("*/assembled.json")
    }


def jobs_settled(data_dir: Path, timeout: float = 120) -> None:
    """Wait until the workers have no job queued or running: a job's scratch files and
    its renditions' blobs exist only until it commits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db = sqlite3.connect(f"file:{data_dir / 'assetvault.db'}?mode=ro", uri=True)
        try:
            busy = db.execute(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"
            ).fetchone()[0]
        finally:
            db.close()
        if not busy:
            return
        time.sleep(0.2)
    raise AssertionError("jobs did not settle")


def assert_no_orphans(data_dir: Path) -> None:
    jobs_settled(data_dir)
    assert blob_files(data_dir) <= referenced_blobs(data_dir) | staged_blobs(data_dir)
    assert not list((data_dir / "blobs" / ".tmp").iterdir())


class Client:
    def __init__(self, server: LiveServer, token: str) -> None:
        self.server = server
        self.auth = {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(base_url=server.url, timeout=60)

    def initiate(self, folder: str, name: str, size: int) -> dict[str, object]:
        r = self.http.post(
            f"{folder}.initiateUpload.json",
            data={"fileName": name, "fileSize": str(size)},
            headers=self.auth,
        )
        assert r.status_code == 201, r.text
        return r.json()["files"][0]  # type: ignore[no-any-return]

    def complete(self, folder: str, file: dict[str, object], size: int) -> httpx.Response:
        return self.http.post(
            f"{folder}.completeUpload.json",
            data={
                "fileName": str(file["fileName"]),
                "fileSize": str(size),
                "uploadToken": str(file["uploadToken"]),
                "createVersion": "false",
                "replace": "false",
            },
            headers=self.auth,
        )


def parts_of(file: dict[str, object], data: bytes) -> list[bytes]:
    uris = file["uploadURIs"]
    assert isinstance(uris, list)
    size = max(math.ceil(len(data) / len(uris)), int(file["minPartSize"]))  # type: ignore[call-overload]
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    # A kill while a worker processes the new asset leaves its job running under a lease
    # no one extends; jobs_settled waits for the next worker to take it over when the
    # lease runs out: after 3 s here, not the default minute (workers extend a lease every
    # third of it, so a live worker keeps its job).
    s = LiveServer(data_dir=tmp_path / "data", env={"ASSETVAULT_JOB_LEASE_SECONDS": "3"}).start()
    yield s
    s.stop()


def restart(server: LiveServer) -> None:
    server.kill()
    server.start()


def test_kill_during_part_upload(server: LiveServer) -> None:
    token = create_token(server.data_dir, "crash", "admin")
    c = Client(server, token)
    assert (
        c.http.post("/api/assets/crash", json={"class": "assetFolder"}, headers=c.auth).status_code
        == 201
    )
    data = os.urandom(48 * MiB)
    file = c.initiate("/content/dam/crash", "big.bin", len(data))
    parts = parts_of(file, data)
    uris = file["uploadURIs"]
    assert isinstance(uris, list) and len(parts) == 3
    assert httpx.put(uris[0], content=parts[0], timeout=60).status_code == 201

    # Part 2 trickles in; the server dies halfway through it.
    halfway = threading.Event()

    def trickle() -> Iterator[bytes]:
        for i in range(0, len(parts[1]), MiB):
            if i >= len(parts[1]) // 2:
                halfway.set()
                time.sleep(30)
            yield parts[1][i : i + MiB]

    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.put(uris[1], content=trickle(), timeout=60)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    assert halfway.wait(30)
    time.sleep(0.3)
    restart(server)

    c = Client(server, token)
    assert c.http.get("/content/dam/crash/big.bin", headers=c.auth).status_code == 404
    assert_no_orphans(server.data_dir)
    # Part 1 was acknowledged, so it survived: resend 2 and 3 only, then complete.
    early = c.complete("/content/dam/crash", file, len(data))
    assert early.status_code == 400  # parts missing: refused, nothing made
    assert c.http.get("/content/dam/crash/big.bin", headers=c.auth).status_code == 404
    for uri, part in zip(uris[1:], parts[1:], strict=False):
        assert httpx.put(uri, content=part, timeout=60).status_code == 201
    done = c.complete("/content/dam/crash", file, len(data))
    assert done.status_code == 200, done.text
    got = c.http.get("/content/dam/crash/big.bin", headers=c.auth)
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    assert_no_orphans(server.data_dir)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, 0.6])
def test_kill_during_complete(server: LiveServer, delay: float) -> None:
    """Kill at several moments of a complete (hashing, rename, commit); whatever the
    moment, the asset is either absent or whole, and a retried complete finishes it."""
    token = create_token(server.data_dir, "crash", "admin")
    c = Client(server, token)
    c.http.post("/api/assets/crash", json={"class": "assetFolder"}, headers=c.auth)
    data = os.urandom(96 * MiB)
    file = c.initiate("/content/dam/crash", "c.bin", len(data))
    for uri, part in zip(file["uploadURIs"], parts_of(file, data), strict=False):  # type: ignore[call-overload]
        assert httpx.put(uri, content=part, timeout=60).status_code == 201
    # A restart drops the running hashes, so the complete must re-read 96 MiB: a window.
    restart(server)

    def fire() -> None:
        with contextlib.suppress(httpx.HTTPError):
            Client(server, token).complete("/content/dam/crash", file, len(data))

    t = threading.Thread(target=fire, daemon=True)
    t.start()
    time.sleep(delay)
    restart(server)
    t.join(5)

    c = Client(server, token)
    got = c.http.get("/content/dam/crash/c.bin", headers=c.auth)
    assert got.status_code in (200, 404)
    if got.status_code == 200:
        assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    assert_no_orphans(server.data_dir)
    retry = c.complete("/content/dam/crash", file, len(data))
    if got.status_code == 404:
        assert retry.status_code == 200, retry.text
    got = c.http.get("/content/dam/crash/c.bin", headers=c.auth)
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    assert_no_orphans(server.data_dir)
    assert blob_files(server.data_dir) == referenced_blobs(server.data_dir)


def test_abandoned_uploads_are_swept(server: LiveServer) -> None:
    token = create_token(server.data_dir, "crash", "admin")
    c = Client(server, token)
    file = c.initiate("/content/dam", "gone.bin", 10)
    assert httpx.put(file["uploadURIs"][0], content=b"0123456789").status_code == 201  # type: ignore[index]
    server.kill()
    staging = server.data_dir / "blobs" / ".uploads"
    assert len(list(staging.iterdir())) == 1
    # Young staging areas survive a restart: their parts were acknowledged.
    server.start()
    assert len(list(staging.iterdir())) == 1
    server.stop()
    # Once older than an upload token lives, the sweep removes them.
    import subprocess

    from tests.live import ASSETVAULT

    subprocess.run(
        [ASSETVAULT, "sweep", "--data-dir", str(server.data_dir)],
        check=True,
        env={**os.environ, "ASSETVAULT_UPLOAD_TOKEN_TTL_SECONDS": "0"},
        capture_output=True,
    )
    assert list(staging.iterdir()) == []
    assert blob_files(server.data_dir) == set()
