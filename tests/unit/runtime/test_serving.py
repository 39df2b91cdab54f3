"""The pieces of ``serve`` around uvicorn: the socket bound once, the ready line and how
it is read back (``runtime/serving.py``, ``runtime/ephemeral.py``)."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from assetvault.runtime import http, serving
from assetvault.runtime.ephemeral import StartFailed, parse_ready_line, read_ready_line


def test_port_zero_binds_a_free_port() -> None:
    sock = serving.bind("127.0.0.1", 0)
    sock.listen()
    try:
        port = sock.getsockname()[1]
        assert port > 0
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
    finally:
        sock.close()


def test_the_socket_listens_from_the_start_and_a_client_waits_instead_of_being_refused() -> None:
    """serve binds before its imports and its API processes' start: a client that
    connects meanwhile is queued, and answered once a process takes it (never refused,
    never answered by something that cannot serve it)."""
    sock = serving.bind("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname(), timeout=5) as client:
            client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            served, _ = sock.accept()  # what an API process does once it can serve
            with served:
                assert served.recv(1024).startswith(b"GET /health ")
    finally:
        sock.close()


def test_a_taken_port_stops_the_start_with_a_reason() -> None:
    sock = serving.bind("127.0.0.1", 0)
    sock.listen()  # another server, serving
    try:
        with pytest.raises(SystemExit, match="cannot listen"):
            serving.bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8"),
        ("0.0.0.0", "http://127.0.0.1:8"),
        ("::", "http://[::1]:8"),
        ("localhost", "http://localhost:8"),
    ],
)
def test_the_url_a_client_uses(host: str, url: str) -> None:
    assert serving.client_url(host, 8) == url


def test_the_ready_line_round_trips() -> None:
    line = serving.ready_document("http://127.0.0.1:9", "av_x", Path("/tmp/d"))
    assert line.endswith("\n") and line.count("\n") == 1
    ready = parse_ready_line(line)
    assert (ready.url, ready.token, ready.data_dir) == (
        "http://127.0.0.1:9",
        "av_x",
        Path("/tmp/d"),
    )
    assert parse_ready_line(serving.ready_document("u", None, Path("/d"))).token is None


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[1]",
        '{"url": 1, "data_dir": "/d"}',
        '{"url": "u", "data_dir": "/d", "token": 3}',
    ],
)
def test_a_bad_ready_line_is_refused(line: str) -> None:
    with pytest.raises(StartFailed):
        parse_ready_line(line)


def test_the_ready_line_waits_for_ready_and_then_ends_the_stream() -> None:
    out = io.StringIO()
    answers = iter([False, False, True])
    line = serving.ReadyLine(out, lambda: next(answers), "{}\n")
    closed: list[str] = []
    out.close = lambda: closed.append(out.getvalue())  # type: ignore[method-assign]
    line.start()
    assert line.written.wait(5)
    line.stop()
    assert closed[0] == "{}\n"


def test_reading_the_ready_line_of_a_process_that_dies_first() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.exit(3)"], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    with pytest.raises(StartFailed, match="exited with 3"):
        read_ready_line(process.stdout, time.monotonic() + 30, process)
    process.stdout.close()


def test_reading_the_ready_line_gives_up_at_the_deadline() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        with pytest.raises(StartFailed, match="in time"):
            read_ready_line(process.stdout, time.monotonic() + 0.5, process)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def _api_configs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The uvicorn configs serve's API processes would run with (none is started)."""
    import uvicorn

    seen: list[uvicorn.Config] = []

    class Server:
        def __init__(self, config: uvicorn.Config) -> None:
            seen.append(config)

        def run(self, sockets: list[socket.socket]) -> None:
            pass

    monkeypatch.setattr(http, "Server", Server)
    with socket.socket() as sock:
        serving.run_uvicorn(sock, 1, "assetvault.app:app_from_environment", access_log=False)
    return seen


def test_the_api_processes_run_asyncios_loop_not_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvloop drained the shared socket's accept queue a few connections a second while
    # the processes were busy: 200 clients connecting at once waited seconds.
    assert [c.loop for c in _api_configs(monkeypatch)] == ["asyncio"]


def test_the_api_processes_load_no_websocket_library(monkeypatch: pytest.MonkeyPatch) -> None:
    # The app has no WebSocket route; uvicorn's "auto" imported one in each API process
    # at its start, before it served.
    assert [c.ws for c in _api_configs(monkeypatch)] == ["none"]


async def test_an_idle_api_process_wakes_once_a_second_and_exits_at_once() -> None:
    """uvicorn's server wakes ten times a second to refresh its Date header and look for
    an exit; ours once a second, and a signal ends its wait at once."""
    import asyncio
    import signal

    import uvicorn

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    config = uvicorn.Config(app, lifespan="off")
    config.load()
    server = http.Server(config)
    ticks: list[float] = []
    real = server.on_tick

    async def on_tick(counter: int) -> bool:
        ticks.append(time.monotonic())
        return await real(counter)

    server.on_tick = on_tick  # type: ignore[method-assign]
    loop = asyncio.create_task(server.main_loop())
    await asyncio.sleep(2.5)
    assert 2 <= len(ticks) <= 4, ticks  # uvicorn's own: 25
    asked = time.monotonic()
    server.handle_exit(signal.SIGTERM, None)
    await asyncio.wait_for(loop, 5)
    assert time.monotonic() - asked < 0.5
    assert any(name == b"date" for name, _ in server.server_state.default_headers)
