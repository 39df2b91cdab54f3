"""The URL downloader and the guarded client's redirects, against loopback servers."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import AsyncIterable
from pathlib import Path

import pytest

from assetvault.adapters.blobs.base import BlobInfo
from assetvault.adapters.blobs.local import LocalBlobStore
from assetvault.adapters.fetch.client import GuardedClient
from assetvault.adapters.fetch.download import UrlDownloader
from assetvault.adapters.fetch.guard import AllowList, Guard
from assetvault.adapters.fetch.onedrive import OneDriveClient
from assetvault.imports.ports import DownloadLimits, FetchFailed
from tests.receivers import Reply, receiver


def limits(max_bytes: int = 10**9, probe: int = 10**12, seconds: float = 30) -> DownloadLimits:
    return DownloadLimits(max_bytes, probe, time.monotonic() + seconds)


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    blobs = LocalBlobStore(tmp_path / "blobs")

    async def put(chunks: AsyncIterable[bytes]) -> BlobInfo:
        return await blobs.put(chunks)

    return put


def client() -> GuardedClient:
    return GuardedClient(Guard(AllowList.parse("127.0.0.1")), timeout=2.0)


async def test_a_connection_cut_short_is_fetched_again(store) -> None:  # type: ignore[no-untyped-def]
    """The first answer promises 1000 bytes and ends after 10; the retry gets them all."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        served: list[int] = []

        def serve() -> None:
            for attempt in range(2):
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"
                    conn.sendall(head + (b"x" * (10 if attempt == 0 else 1000)))
                    served.append(attempt)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        async with client() as c:
            got = await UrlDownloader(c, retries=2, backoff=0.01).download(
                f"http://127.0.0.1:{port}/f", store, limits()
            )
        thread.join(5)
    assert got.blob.size == 1000 and served == [0, 1]


async def test_a_4xx_is_not_retried_and_says_its_status(store) -> None:  # type: ignore[no-untyped-def]
    with receiver(lambda r: Reply(404, b"no")) as server:
        async with client() as c:
            with pytest.raises(FetchFailed, match="404 Not Found") as caught:
                await UrlDownloader(c, retries=3).download(f"{server.url}/x", store, limits())
        assert len(server.received) == 1
    assert caught.value.status == 404


async def test_the_content_type_is_sniffed_from_the_first_bytes(store) -> None:  # type: ignore[no-untyped-def]
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
    with receiver(lambda r: Reply(200, png, {"content-type": "image/jpeg; q=1"})) as server:
        async with client() as c:
            got = await UrlDownloader(c).download(f"{server.url}/x", store, limits())
    assert got.sniffed == "image/png" and got.declared == "image/jpeg"


async def test_the_deadline_ends_a_slow_file(store) -> None:  # type: ignore[no-untyped-def]
    def slow(r: object) -> Reply:
        time.sleep(1.5)
        return Reply(200, b"late")

    with receiver(slow) as server:
        async with client() as c:
            with pytest.raises(FetchFailed, match="deadline") as caught:
                await UrlDownloader(c).download(f"{server.url}/x", store, limits(seconds=0.5))
    assert caught.value.status == 504


async def test_credentials_are_not_sent_to_a_redirect_elsewhere() -> None:
    with receiver(lambda r: Reply(200, b"ok")) as target:
        same_origin_hops: list[str] = []

        def hop(r: object) -> Reply:
            path = r.path  # type: ignore[attr-defined]
            same_origin_hops.append(path)
            if path == "/start":
                return Reply(302, headers={"location": "/next"})
            return Reply(302, headers={"location": f"{target.url}/file"})

        with receiver(hop) as origin:
            async with (
                client() as c,
                c.stream(
                    "GET", f"{origin.url}/start", headers={"authorization": "Bearer secret"}
                ) as fetched,
            ):
                await fetched.response.aread()
            assert [r.headers.get("authorization") for r in origin.received] == [
                "Bearer secret",
                "Bearer secret",
            ]
        assert "authorization" not in target.received[0].headers


async def test_a_forged_onedrive_cursor_cannot_send_the_token_elsewhere() -> None:
    from assetvault import cursors

    async with client() as c:
        graph = OneDriveClient(
            c,
            client_id="x",
            client_secret="",
            login_url="http://127.0.0.1:9/login",
            graph_url="http://127.0.0.1:9/v1.0",
        )
        forged = cursors.pack({"next": "http://127.0.0.1:8/steal", "queue": []})
        with pytest.raises(FetchFailed, match="cursor"):
            await graph.list("token", None, recursive=False, cursor=forged, limit=10)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_answer_is_stored_decoded(store, encoding: str) -> None:  # type: ignore[no-untyped-def]
    """Content-Length counts the encoded bytes (RFC 9110 section 8.6): the length check
    is of what came over the wire; the blob holds the representation, decoded."""
    original = b"the file's own bytes, several times over; " * 500
    encoded = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
    }[encoding](original)
    headers = {"content-encoding": encoding, "content-type": "text/plain"}
    with receiver(lambda r: Reply(200, encoded, headers)) as server:
        async with client() as c:
            got = await UrlDownloader(c, retries=0).download(f"{server.url}/x", store, limits())
    assert got.blob.size == len(original)
    # and a body cut short is still noticed, encoded or not
    with receiver(
        lambda r: Reply(200, encoded[:-10], {**headers, "content-length": str(len(encoded))})
    ) as server:
        async with client() as c:
            with pytest.raises(FetchFailed):
                await UrlDownloader(c, retries=0).download(f"{server.url}/x", store, limits())


async def test_a_bomb_is_cut_off_at_the_limit_of_decoded_bytes(store) -> None:  # type: ignore[no-untyped-def]
    bomb = gzip.compress(b"\x00" * 20_000_000)
    headers = {"content-encoding": "gzip"}
    with receiver(lambda r: Reply(200, bomb, headers)) as server:
        async with client() as c:
            with pytest.raises(FetchFailed, match="larger than") as caught:
                await UrlDownloader(c, retries=0).download(
                    f"{server.url}/x", store, limits(max_bytes=1_000_000)
                )
    assert caught.value.status == 413


async def test_a_large_compressed_answer_reaches_the_store_in_bounded_pieces(store) -> None:  # type: ignore[no-untyped-def]
    """A small gzip body of 20 MB of zeros is decoded a bounded piece at a time, never
    held whole, even when the limit lets it in."""
    blobs = store
    pieces: list[int] = []

    async def put(chunks: AsyncIterable[bytes]) -> BlobInfo:
        async def counted() -> AsyncIterable[bytes]:
            async for chunk in chunks:
                pieces.append(len(chunk))
                yield chunk

        return await blobs(counted())

    bomb = gzip.compress(b"\x00" * 20_000_000)
    with receiver(lambda r: Reply(200, bomb, {"content-encoding": "gzip"})) as server:
        async with client() as c:
            got = await UrlDownloader(c, retries=0).download(f"{server.url}/x", put, limits())
    assert got.blob.size == 20_000_000
    assert max(pieces) <= 1024 * 1024 and len(pieces) >= 19


async def test_a_kept_alive_connection_serves_one_name_only(store) -> None:  # type: ignore[no-untyped-def]
    """Two names that resolve to the same address each get their own connections: one
    made (and, over TLS, checked) for a name is never reused for another."""
    hosts: list[tuple[int, str]] = []  # (connection number, Host header) per request
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def serve_connection(conn: socket.socket, number: int) -> None:
            with conn:
                buffered = b""
                while True:
                    while b"\r\n\r\n" not in buffered:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffered += data
                    head, _, buffered = buffered.partition(b"\r\n\r\n")
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"host":
                            hosts.append((number, value.strip().decode()))
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

        def accept() -> None:
            for number in range(3):
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=serve_connection, args=(conn, number), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

        async def resolve(host: str, port: int) -> list[str]:
            return ["127.0.0.1"]

        guard = Guard(AllowList.parse("127.0.0.1"), resolver=resolve)
        async with GuardedClient(guard, timeout=2.0) as c:
            for name in ("a.example", "b.example", "a.example"):
                got = await UrlDownloader(c, retries=0).download(
                    f"http://{name}:{port}/f", store, limits()
                )
                assert got.blob.size == 2
    (first, a), (second, b), (third, again) = hosts
    assert (a, b, again) == (f"a.example:{port}", f"b.example:{port}", f"a.example:{port}")
    assert first == third and second != first


def test_the_warm_up_loads_what_the_first_file_would_load() -> None:
    """aiohttp, libmagic's database and the media-type table are loaded by the warm-up the
    process that runs imports starts with, not in the loop by the first file received."""
    code = (
        "import sys, mimetypes, magic\n"
        "from assetvault.adapters.fetch.download import warm_up\n"
        "assert 'aiohttp' not in sys.modules and not mimetypes.inited and not magic._instances\n"
        "warm_up()\n"
        "assert 'aiohttp' in sys.modules and mimetypes.inited and magic._instances\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
