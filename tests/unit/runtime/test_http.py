"""The API processes' HTTP protocol (runtime/http.py), served by a real uvicorn on a
loopback port: files sent with sendfile, whole and in ranges, and request bodies that
reach the application in chunks larger than uvicorn's 64 KiB."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from assetvault.runtime.http import BODY_HIGH_WATER, SENDFILE
from tests.live import free_port

DATA = os.urandom(5 * 1024 * 1024 + 123)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    file = tmp_path / "blob"
    file.write_bytes(DATA)
    seen: dict[str, Any] = {"chunks": []}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "PUT":
            await asyncio.sleep(0.5)  # the body gathers meanwhile, up to the high water
            while True:
                message = await receive()
                seen["chunks"].append(len(message.get("body", b"")))
                if not message.get("more_body"):
                    break
            await send({"type": "http.response.start", "status": 201, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        seen["extensions"] = scope.get("extensions")
        first, _, last = scope["query_string"].decode().partition("-")
        start, count = int(first or 0), int(last or len(DATA) - 1) - int(first or 0) + 1
        headers = [(b"content-length", str(count).encode())]
        fd = os.open(file, os.O_RDONLY)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": SENDFILE, "file": fd, "offset": start, "count": count})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            os.close(fd)

    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http="assetvault.runtime.http:Protocol",
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.should_exit = True
        thread.join(30)


def test_whole_files_and_ranges_are_sent_with_sendfile(served: tuple[str, dict[str, Any]]) -> None:
    url, seen = served
    with httpx.Client(base_url=url) as http:  # one kept-alive connection for all
        assert http.get("/").content == DATA
        assert SENDFILE in seen["extensions"]
        assert http.get("/?1000-2999").content == DATA[1000:3000]
        assert http.get(f"/?{len(DATA) - 10}-").content == DATA[-10:]
        assert http.get("/").content == DATA  # the connection still frames responses


def test_a_client_gone_mid_file_leaves_the_server_serving(
    served: tuple[str, dict[str, Any]],
) -> None:
    url, _ = served
    host, port = url.removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # closed with most of the file unsent
    assert httpx.get(url + "/?0-99").content == DATA[:100]


def test_request_bodies_arrive_in_chunks_past_uvicorns_64_kib(
    served: tuple[str, dict[str, Any]],
) -> None:
    url, seen = served
    assert httpx.put(url + "/", content=DATA).status_code == 201
    assert sum(seen["chunks"]) == len(DATA)
    # Each chunk is a socket read as it came (uvicorn's own protocol hands over what
    # gathered, joined, up to its 64 KiB high water plus one read).
    assert max(seen["chunks"]) > 64 * 1024
    assert 0 not in seen["chunks"][:-1]  # no empty message before the last


async def test_a_body_piece_reaches_the_application_without_a_copy() -> None:
    """Each piece httptools hands over is passed on as it is (uvicorn copies every byte
    twice: into a bytearray, then out of it), also the pieces that gathered while the
    application was busy: one message each, never joined into a copy."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from assetvault.runtime.http import Protocol

    given: list[bytes] = []
    paused: list[int] = []  # bytes given when reading paused
    received: list[Any] = []
    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message["body"])
            if not message.get("more_body"):
                break
            if len(received) == 1:
                await asyncio.sleep(0.2)  # busy: the next pieces gather meanwhile
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        done.set()

    class Recording(Protocol):
        def on_body(self, body: bytes) -> None:
            given.append(body)
            super().on_body(body)

    class Transport(asyncio.Transport):
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name)

        def write(self, data: Any) -> None:
            pass

        def is_closing(self) -> bool:
            return False

        def pause_reading(self) -> None:
            paused.append(sum(len(g) for g in given))

    config = Config(app, http="assetvault.runtime.http:Protocol", lifespan="off")
    config.load()
    protocol = Recording(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(Transport())
    pieces = [os.urandom(100_000) for _ in range(4)]
    protocol.data_received(
        b"PUT / HTTP/1.1\r\nhost: x\r\ncontent-length: 400000\r\n\r\n" + pieces[0]
    )
    while not received:  # the application takes the first piece
        await asyncio.sleep(0.001)
    for piece in pieces[1:]:
        protocol.data_received(piece)
    await asyncio.wait_for(done.wait(), 10)
    assert b"".join(received) == b"".join(pieces) and len(given) == 4
    assert len(received) == 4
    assert not paused and BODY_HIGH_WATER > 400_000  # past uvicorn's 64 KiB, not paused
    assert all(r is g for r, g in zip(received, given, strict=True))  # as they came


class _RecordingTransport(asyncio.Transport):
    """What the protocol writes to the connection, write by write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name)

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def _answer(method: str, messages: list[dict[str, Any]]) -> _RecordingTransport:
    """The writes of one request answered with ``messages``."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from assetvault.runtime.http import Protocol

    done = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in messages:
            await send(message)
            await asyncio.sleep(0)
        done.set()

    config = Config(app, http="assetvault.runtime.http:Protocol", lifespan="off")
    config.load()
    protocol = Protocol(config=config, server_state=ServerState(), app_state={})
    transport = _RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(f"{method} / HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    await asyncio.wait_for(done.wait(), 10)
    return transport


def _start(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http.response.start", "status": 200, "headers": headers}


async def test_a_response_of_known_length_goes_out_in_one_write() -> None:
    """The status line and headers are written with the body, not before it: one send
    on the socket and one wake-up of the client per answer."""
    body = b'{"a":1}'
    length = [(b"content-type", b"application/json"), (b"content-length", b"7")]
    answer = [_start(length), {"type": "http.response.body", "body": body}]
    transport = await _answer("GET", answer)
    assert len(transport.writes) == 1
    head, _, sent = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 7" in head
    assert sent == body
    # A HEAD's answer has no body to join: the headers go alone, once.
    transport = await _answer("HEAD", answer)
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"\r\n\r\n")


async def test_a_large_or_streamed_body_is_not_copied_onto_the_headers() -> None:
    large = os.urandom(256 * 1024)
    length = [(b"content-length", str(len(large)).encode())]
    transport = await _answer(
        "GET", [_start(length), {"type": "http.response.body", "body": large}]
    )
    assert len(transport.writes) == 2 and transport.writes[1] == large
    # Of unknown length (chunked): the headers go first, as uvicorn writes them.
    pieces = [
        _start([]),
        {"type": "http.response.body", "body": b"one", "more_body": True},
        {"type": "http.response.body", "body": b"two"},
    ]
    transport = await _answer("GET", pieces)
    assert len(transport.writes) == 3 and transport.writes[0].endswith(b"\r\n\r\n")


async def test_held_headers_go_out_before_the_connection_closes() -> None:
    """An application that starts a response of known length and fails before its body
    (uvicorn then closes the connection) still sends the headers it started with."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from assetvault.runtime.http import Protocol

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(_start([(b"content-length", b"5")]))
        raise RuntimeError("the body never comes")

    config = Config(app, http="assetvault.runtime.http:Protocol", lifespan="off")
    config.load()
    protocol = Protocol(config=config, server_state=ServerState(), app_state={})
    transport = _RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    for _ in range(100):
        if transport.closed:
            break
        await asyncio.sleep(0.01)
    assert transport.closed
    assert len(transport.writes) == 1 and transport.writes[0].startswith(b"HTTP/1.1 200 OK")
