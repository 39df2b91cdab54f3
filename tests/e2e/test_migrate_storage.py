"""``assetvault migrate-storage`` as a user runs it: an embedded installation filled
through a real server, refused while that server runs, moved to PostgreSQL + Ceph RGW
once stopped, run again without copying anything twice, and then served by a new
``assetvault serve`` on the new engines with the old tokens (the bytes through S3)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import ASSETVAULT, LiveServer, create_token
from tests.media import jpeg_with_metadata
from tests.s3 import S3Server

pytestmark = [pytest.mark.e2e, pytest.mark.s3]


@pytest.fixture
def target_database(postgres_admin_url: str) -> Iterator[str]:
    import asyncio

    from tests.pg import create_test_database, drop_database

    url = asyncio.run(create_test_database(postgres_admin_url))
    yield url
    asyncio.run(drop_database(postgres_admin_url, url))


def migrate(
    data_dir: Path, database: str, blobs: str, *more: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            ASSETVAULT,
            "migrate-storage",
            "--data-dir",
            str(data_dir),
            "--to-database",
            database.replace("postgresql+asyncpg://", "postgresql://"),
            "--to-blobs",
            blobs,
            *more,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def wait_processed(http: httpx.Client, name: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = http.post(
            "/adobe/assets/search?allowUnsafeSearch=true",
            json={"query": [{"match": {"text": name.rsplit(".", 1)[0]}}]},
            headers={"X-Api-Key": "e2e"},
        )
        assert r.status_code == 200, r.text
        states = [
            h["repositoryMetadata"].get("aem:assetState")
            for h in r.json()["hits"]["results"]
            if h["repositoryMetadata"]["repo:name"] == name
        ]
        if states == ["processed"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} not processed in {seconds} s")


def test_an_installation_moves_to_postgresql_and_s3_and_serves_from_there(
    tmp_path: Path, target_database: str, s3_server: S3Server
) -> None:
    source_dir = tmp_path / "embedded"
    files = tmp_path / "files"
    files.mkdir()
    photo = jpeg_with_metadata(files / "harbour.jpg", 800, 600).read_bytes()
    (files / "notes.txt").write_text("minutes of the meeting")
    blobs = s3_server.fresh_url()

    server = LiveServer(source_dir).start()
    token = create_token(source_dir, "admin")
    try:
        up = subprocess.run(
            [
                *(ASSETVAULT, "upload", str(files), "--folder", "/content/dam/moved"),
                *("--url", server.url, "--token", token),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as h:
            wait_processed(h, "harbour.jpg")
        running = migrate(source_dir, target_database, blobs)
        assert running.returncode == 2
        assert "a server is running" in running.stderr
    finally:
        server.stop()

    first = migrate(source_dir, target_database, blobs, "--verify-content")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "verified:" in first.stdout and "NOT" not in first.stdout
    again = migrate(source_dir, target_database, blobs)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "blobs: 0 copied" in again.stdout
    assert migrate(source_dir, target_database, blobs, "--verify-only").returncode == 0

    moved = LiveServer(
        tmp_path / "elsewhere",
        env={
            "ASSETVAULT_DATABASE_URL": target_database,
            "ASSETVAULT_BLOBS_URL": blobs,
            **s3_server.env(),
        },
    ).start()
    try:
        with httpx.Client(base_url=moved.url, headers={"Authorization": f"Bearer {token}"}) as h:
            listing = h.get("/api/assets/moved/files.json")
            assert listing.status_code == 200, listing.text
            names = sorted(e["properties"]["name"] for e in listing.json()["entities"])
            assert names == ["harbour.jpg", "notes.txt"]
            original = h.get("/api/assets/moved/files/harbour.jpg/renditions/original")
            got = original
            if original.status_code == 302:
                got = httpx.get(original.headers["location"])
            assert got.status_code == 200, got.text
            assert got.content == photo
    finally:
        moved.stop()
