"""A 2 GiB ZIP from POST /adobe/assets/archive is streamed as it is made: the server's
processes grow by less than 64 MiB while it goes out, and the archive that arrives is
whole (its central directory lists every member at its full size)."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser_runner import upload
from tests.e2e.test_import_large import tree_rss
from tests.live import LiveServer, create_token

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PART = 64 * 2**20
COPIES = 32  # 32 assets of 64 MiB: 2 GiB, sharing one blob (a copy shares its original)


def central_directory(tail: bytes, total: int) -> list[tuple[str, int]]:
    """(name, uncompressed size) of each member, read from the end of the archive."""
    at = tail.rindex(b"PK\x05\x06")
    entries, cd_size, cd_offset = struct.unpack("<HII", tail[at + 10 : at + 20])
    assert cd_offset + cd_size + 22 == total, "the directory is where the archive says"
    cd = tail[at - cd_size : at]
    found = []
    pos = 0
    for _ in range(entries):
        assert cd[pos : pos + 4] == b"PK\x01\x02"
        size = struct.unpack("<I", cd[pos + 24 : pos + 28])[0]
        name_len, extra_len, comment_len = struct.unpack("<HHH", cd[pos + 28 : pos + 34])
        found.append((cd[pos + 46 : pos + 46 + name_len].decode(), size))
        pos += 46 + name_len + extra_len + comment_len
    return found


def test_a_2_gib_archive_streams_in_bounded_memory(tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data", extra_args=["--workers", "0"])
    server.start()
    try:
        token = create_token(server.data_dir, "big")
        auth = {"Authorization": f"Bearer {token}"}
        http = httpx.Client(base_url=server.url, headers=auth, timeout=60)
        r = http.post("/api/assets/big", json={"class": "assetFolder", "properties": {}})
        assert r.status_code == 201, r.text
        upload(server, token, "/content/dam/big", "part-00.bin", bytes(PART))
        for i in range(1, COPIES):
            r = http.request(
                "COPY",
                "/api/assets/big/part-00.bin",
                headers={"X-Destination": f"/api/assets/big/part-{i:02}.bin"},
            )
            assert r.status_code == 201, r.text
        assert server.process is not None
        # A small archive first: what any first request loads is in the baseline.
        warm = http.post("/adobe/assets/archive", json={"paths": ["/content/dam/big/part-00.bin"]})
        assert warm.status_code == 200 and len(warm.content) > 0
        time.sleep(1)
        baseline = peak = tree_rss(server.process.pid)
        total = 0
        tail = b""
        started = time.monotonic()
        with http.stream(
            "POST", "/adobe/assets/archive", json={"paths": ["/content/dam/big"]}
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/zip"
            assert "content-length" not in r.headers
            last = 0.0
            for chunk in r.iter_raw():
                total += len(chunk)
                tail = (tail + chunk)[-65536:]
                if time.monotonic() - last > 0.1:
                    peak = max(peak, tree_rss(server.process.pid))
                    last = time.monotonic()
        seconds = time.monotonic() - started
        growth = peak - baseline
        print(
            f"\n{total / 2**30:.2f} GiB in {seconds:.1f} s; RSS baseline "
            f"{baseline / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB, "
            f"growth {growth / 2**20:.0f} MiB"
        )
        assert total > COPIES * PART, "every byte of every member went out"
        listed = central_directory(tail, total)
        expected = [(f"big/part-{i:02}.bin", PART) for i in range(COPIES)]
        assert sorted(listed) == expected
        assert growth < 64 * 2**20, f"the server grew by {growth / 2**20:.0f} MiB"
    finally:
        server.stop()
