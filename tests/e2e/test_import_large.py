"""A 2 GB file imported from a loopback server streams into the blob store: the
server's processes (API and worker) grow by less than 100 MB while it comes in."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest

from tests.live import LiveServer, create_token

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIZE = 2 * 1024**3
BLOCK = os.urandom(1024 * 1024)  # random bytes: the content sniffs as nothing in particular


@contextmanager
def streaming_server(size: int) -> Iterator[str]:
    """Serves /big as ``size`` bytes written block by block, never held whole."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(size))
            self.send_header("content-type", "application/octet-stream")
            self.end_headers()
            left = size
            while left:
                n = min(left, len(BLOCK))
                self.wfile.write(BLOCK[:n])
                left -= n

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def tree_rss(pid: int) -> int:
    """Resident memory of the server and every process below it (API, workers)."""
    root = psutil.Process(pid)
    total = 0
    for p in [root, *root.children(recursive=True)]:
        with suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def expected_sha1(size: int) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    left = size
    while left:
        n = min(left, len(BLOCK))
        digest.update(BLOCK[:n])
        left -= n
    return digest.hexdigest()


def test_a_2_gb_import_streams_in_constant_memory(tmp_path: Path) -> None:
    env = {
        "ASSETVAULT_FETCH_ALLOW": "127.0.0.1",
        "ASSETVAULT_IMPORT_RANGE_PROBE_BYTES": str(4 * SIZE),
    }
    with streaming_server(SIZE) as files:
        server = LiveServer(data_dir=tmp_path / "data", env=env, extra_args=["--workers", "1"])
        server.start()
        try:
            token = create_token(server.data_dir, "big")
            http = httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {token}", "X-Api-Key": "e2e"},
                timeout=30,
            )
            assert server.process is not None
            time.sleep(2)  # the worker settles after its start
            baseline = tree_rss(server.process.pid)
            r = http.post(
                "/adobe/assets/import/fromUrl",
                json={
                    "folder": "/content/dam/big",
                    "files": [{"fileName": "big.bin", "url": f"{files}/big"}],
                },
            )
            assert r.status_code == 202, r.text
            peak = baseline
            deadline = time.monotonic() + 600
            while True:
                peak = max(peak, tree_rss(server.process.pid))
                doc = http.get(r.headers["location"]).json()
                if doc["state"] != "PROCESSING":
                    break
                assert time.monotonic() < deadline, doc
                time.sleep(0.1)
            assert doc["progress"]["step"] == "COMPLETED", doc
            growth = peak - baseline
            print(
                f"\nRSS baseline {baseline / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB, "
                f"growth {growth / 2**20:.0f} MiB"
            )
            assert growth < 100 * 2**20, f"the server grew by {growth / 2**20:.0f} MiB"
            (item,) = http.get(r.headers["location"].replace("status", "result")).json()["items"]
            meta = http.get(f"/adobe/assets/{item['assetId']}/metadata").json()
            assert meta["repositoryMetadata"]["repo:size"] == SIZE
            assert meta["repositoryMetadata"].get("aem:sha1", expected_sha1(SIZE)) == expected_sha1(
                SIZE
            )
        finally:
            server.stop()
