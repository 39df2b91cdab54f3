"""A full disk under the data directory: every write answers 507 in its interface's
format (never a 500, never a dropped connection), changes nothing, and once there is room
again the same requests succeed; the database passes its integrity check and every
acknowledged asset keeps its bytes.

The data directory sits on a small tmpfs mounted for the test (root, as the project's CI
and development machines run; elsewhere the test says why it cannot run)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, create_token
from tests.soak import checks

pytestmark = pytest.mark.e2e

MiB = 2**20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def resize(mount: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)


class Client:
    def __init__(self, server: LiveServer, token: str) -> None:
        self.http = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {token}", "X-Api-Key": "disk"},
            timeout=60,
        )

    def upload(self, name: str, data: bytes) -> httpx.Response:
        """The whole direct binary upload; the first answer that is not a success."""
        r = self.http.post(
            "/content/dam.initiateUpload.json",
            data={"fileName": name, "fileSize": str(len(data))},
        )
        if r.status_code != 201:
            return r
        file = r.json()["files"][0]
        part = httpx.put(file["uploadURIs"][0], content=data, timeout=60)
        if part.status_code != 201:
            return part
        return self.http.post(
            "/content/dam.completeUpload.json",
            data={
                "fileName": name,
                "fileSize": str(len(data)),
                "uploadToken": file["uploadToken"],
                "mimeType": "application/octet-stream",
            },
        )


def assert_clean_refusal(r: httpx.Response) -> None:
    assert r.status_code == 507, (r.request.url, r.status_code, r.text)
    if r.request.url.path.startswith(("/api", "/content")):
        assert r.json()["properties"]["status.code"] == 507, r.text
    else:
        assert r.headers["content-type"].startswith("application/problem+json"), r.headers
        assert r.json()["status"] == 507, r.text


def test_a_full_disk_answers_507_changes_nothing_and_recovers(small_disk: Path) -> None:
    server = LiveServer(data_dir=small_disk / "data", log_dir=small_disk.parent).start()
    try:
        client = Client(server, create_token(server.data_dir, "disk"))
        kept = {}
        for i in range(3):
            data = os.urandom(MiB) + bytes([i])
            r = client.upload(f"kept{i}.bin", data)
            assert r.status_code == 200, r.text
            kept[f"kept{i}.bin"] = hashlib.sha1(data).hexdigest()

        # Fill the disk with uploads until they are refused; every refusal is clean.
        refused = []
        for i in range(40):
            r = client.upload(f"fill{i}.bin", os.urandom(2 * MiB))
            if r.status_code != 200:
                assert_clean_refusal(r)
                refused.append(f"fill{i}.bin")
        assert len(refused) >= 5, "the disk never filled"

        # Metadata writes once the database itself has no room left.
        for i in range(200):
            r = client.http.put(
                "/api/assets/kept0.bin",
                json={"class": "asset", "properties": {f"x:big{i}": "v" * 200_000}},
            )
            if r.status_code != 200:
                assert_clean_refusal(r)
                break
        else:
            pytest.fail("the database never filled")
        folder = client.http.post(
            "/api/assets/after-full", json={"class": "assetFolder", "properties": {}}
        )
        assert folder.status_code in (201, 507), folder.text
        if folder.status_code == 507:
            assert_clean_refusal(folder)

        # Nothing refused was made.
        for name in refused:
            assert client.http.get(f"/api/assets/{name}.json").status_code == 404, name

        # Room again: the same requests succeed, on the same running server.
        resize(small_disk, "200m")
        again = os.urandom(2 * MiB)
        r = client.upload(refused[0], again)
        assert r.status_code == 200, r.text
        kept[refused[0]] = hashlib.sha1(again).hexdigest()
        r = client.http.put(
            "/api/assets/kept1.bin", json={"class": "asset", "properties": {"dc:title": "room"}}
        )
        assert r.status_code == 200, r.text

        for name, sha1 in kept.items():
            body = client.http.get(f"/content/dam/{name}")
            assert body.status_code == 200, name
            assert hashlib.sha1(body.content).hexdigest() == sha1, name
    finally:
        server.stop()
    db = sqlite3.connect(server.data_dir / "assetvault.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    checks.sweep(server.data_dir)
    assert not checks.orphans(server.data_dir)
