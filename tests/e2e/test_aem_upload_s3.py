"""The real @adobe/aem-upload client uploads a large file into a server whose blobs are on
S3 (Ceph RGW): its parts go straight to the bucket through the presigned part URLs of one
multipart upload, the API receives only the small initiate/complete forms (counted by the
server's own request journal), the file comes back byte for byte, and processing records
its SHA-1 (docs/direct-binary-upload.md, "On an object store")."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_aem_upload import CLIENT, run_client
from tests.live import LiveServer, create_token
from tests.s3 import S3Server

pytestmark = [pytest.mark.e2e, pytest.mark.s3]

MiB = 2**20
# 200 MB by default; ASSETVAULT_TEST_S3_UPLOAD_MB makes it smaller for a quick run.
SIZE = int(os.environ.get("ASSETVAULT_TEST_S3_UPLOAD_MB", "200")) * 1000 * 1000
BODY_LIMIT = 1024 * 1024  # what the API may receive for it in all

assert CLIENT.exists()


@pytest.fixture
def server(tmp_path: Path, s3_server: S3Server) -> Iterator[LiveServer]:
    live = LiveServer(
        data_dir=tmp_path / "data",
        env={"ASSETVAULT_BLOBS_URL": s3_server.fresh_url()},
        extra_args=["--journal", "10000"],
    )
    live.start()
    yield live
    live.stop()


def request_bytes(server: LiveServer) -> list[tuple[str, str, int]]:
    db = sqlite3.connect(f"file:{server.data_dir / 'journal.db'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT method, path, request_bytes FROM entries").fetchall()
    finally:
        db.close()


def test_aem_upload_sends_the_parts_to_the_bucket(
    server: LiveServer, s3_server: S3Server, tmp_path: Path
) -> None:
    token = create_token(server.data_dir, "s3-upload-e2e", "admin")
    local = tmp_path / "upload"
    local.mkdir()
    path = local / "large file.bin"
    sha1, sha256 = hashlib.sha1(), hashlib.sha256()
    with open(path, "wb") as fh:
        left = SIZE
        while left:
            chunk = os.urandom(min(MiB, left))
            sha1.update(chunk)
            sha256.update(chunk)
            fh.write(chunk)
            left -= len(chunk)

    summary = run_client(server, token, path, "/content/dam/s3 e2e")
    assert summary["totalFiles"] == summary["completedFiles"] == 1, summary
    store = httpx.URL(s3_server.endpoint)
    puts = [e for e in summary["http"] if e["method"] == "PUT"]
    expected_parts = -(-SIZE // (16 * MiB))
    assert len(puts) == expected_parts, puts
    for e in puts:  # each part to the bucket, none to the API
        assert e["host"] == f"{store.host}:{store.port}", e
        assert e["path"].startswith(f"/{s3_server.bucket}/"), e
        assert e["status"] == 200, e
    api = [e for e in summary["http"] if e not in puts]
    assert {e["status"] for e in api} <= {200, 201, 409}, api

    journal = request_bytes(server)
    assert [p for m, p, _ in journal if p.endswith(".completeUpload.json")] == [
        "/content/dam/s3 e2e.completeUpload.json"
    ]
    received = sum(n for _, _, n in journal)
    assert received < BODY_LIMIT, journal

    auth = {"Authorization": f"Bearer {token}"}
    url = f"{server.url}/content/dam/s3%20e2e/large%20file.bin"
    got = hashlib.sha256()
    with (
        httpx.Client(timeout=300, follow_redirects=True) as http,
        http.stream("GET", url, headers=auth) as r,
    ):
        assert r.status_code == 200
        for chunk in r.iter_bytes(MiB):
            got.update(chunk)
    assert got.hexdigest() == sha256.hexdigest()

    # The server never read the bytes on the way in: processing records the SHA-1.
    db = sqlite3.connect(f"file:{server.data_dir / 'assetvault.db'}?mode=ro", uri=True)
    deadline = time.monotonic() + 240
    try:
        while True:
            [(sha1_seen, state, size)] = db.execute(
                "SELECT sha1, asset_state, size FROM nodes WHERE path = ?",
                ("/content/dam/s3 e2e/large file.bin",),
            ).fetchall()
            if sha1_seen is not None or time.monotonic() > deadline:
                break
            assert state == "processing"
            time.sleep(1)
    finally:
        db.close()
    assert (sha1_seen, state, size) == (sha1.hexdigest(), "processed", SIZE)
