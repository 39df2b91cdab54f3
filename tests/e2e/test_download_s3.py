"""The real @adobe/httptransfer client (AEMDownload) downloads an original of a server
whose blobs are on S3 (Ceph RGW): it follows the API's 302 to the presigned URL, sends
its Range blocks to the bucket, never sends the API's credentials there, and the file it
writes is the original byte for byte (docs/deploy.md, "Downloads: redirects to the
bucket")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.factories import upload
from tests.live import LiveServer, create_token
from tests.s3 import S3Server

pytestmark = [pytest.mark.e2e, pytest.mark.s3]

HERE = Path(__file__).parent
PACKAGE = HERE / "node_modules" / "@adobe" / "httptransfer"

if shutil.which("node") is None or not PACKAGE.is_dir():
    pytest.skip(
        "needs node and `npm install` in tests/e2e (scripts/bootstrap.sh)",
        allow_module_level=True,
    )

SIZE = 3 * 1024 * 1024 + 12345
BLOCK = 1024 * 1024


@pytest.fixture
def server(tmp_path: Path, s3_server: S3Server) -> Iterator[LiveServer]:
    live = LiveServer(
        data_dir=tmp_path / "data", env={"ASSETVAULT_BLOBS_URL": s3_server.fresh_url()}
    )
    live.start()
    yield live
    live.stop()


async def test_httptransfer_follows_the_redirect_to_the_bucket(
    server: LiveServer, s3_server: S3Server, tmp_path: Path
) -> None:
    token = create_token(server.data_dir, "download-e2e", "write")
    data = os.urandom(SIZE)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        r = await upload(client, token, "/content/dam", "big.bin", data)
        assert r.status_code == 200, r.text
    target = tmp_path / "out" / "big.bin"
    target.parent.mkdir()
    proc = subprocess.run(
        [
            "node",
            str(HERE / "download.js"),
            # The API by another name than the bucket's 127.0.0.1, as in a deployment
            # (clients drop their Authorization only when the host name changes).
            f"http://localhost:{server.port}/content/dam/big.bin",
            token,
            str(target),
            str(SIZE),
            str(BLOCK),
        ],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["errors"] == []
    assert target.read_bytes() == data

    api, bucket = f"localhost:{server.port}", urlparse(s3_server.endpoint).netloc
    to_api = [e for e in summary["exchanges"] if e["host"] == api]
    to_bucket = [e for e in summary["exchanges"] if e["host"] == bucket]
    # Every block asked of the API, answered 302, and fetched from the bucket with its
    # Range and without the API's credentials.
    assert to_api and all(e["status"] == 302 and e["authorization"] for e in to_api), to_api
    assert len(to_bucket) == len(to_api), summary
    assert all(e["status"] == 206 and e["range"] for e in to_bucket), to_bucket
    assert not any(e["authorization"] for e in to_bucket), to_bucket
    assert sorted(e["range"] for e in to_bucket) == sorted(e["range"] for e in to_api)
