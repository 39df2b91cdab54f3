"""A client that sends its whole body before reading (Python's urllib) gets the answer
the server gave early (a 413, a refusal) on every interface's bounded body, not a
connection reset; and a body past the bound of that lingering read still ends: the
server neither reads it forever nor hangs the client."""

from __future__ import annotations

import errno
import json
import select
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live import LiveServer, create_token

pytestmark = pytest.mark.e2e

LIMIT = 64 * 1024
# Larger than what the kernel's socket buffers absorb on loopback, smaller than the
# server's default lingering bound (8 MiB).
OVERSIZED = 6 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"ASSETVAULT_JSON_MAX_BYTES": str(LIMIT), "ASSETVAULT_FORM_MAX_BYTES": str(LIMIT)}
    s = LiveServer(data_dir=tmp_path_factory.mktemp("early") / "data", env=env)
    s.start(timeout=120)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def token(server: LiveServer) -> str:
    return create_token(server.data_dir, "early", "admin")


def send(
    url: str, body: bytes, headers: dict[str, str], method: str = "POST"
) -> tuple[int, str, bytes]:
    """What urllib sees: it writes the whole body, then reads the answer."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read()


def json_case(path: str, token: str) -> tuple[str, bytes, dict[str, str]]:
    body = b'{"query": [{"match": {"text": "' + b"x" * OVERSIZED + b'"}}]}'
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Api-Key": "test-client",
        "Content-Type": "application/json",
    }
    return path, body, headers


def multipart(name: str, filename: str | None, data: bytes) -> tuple[bytes, str]:
    boundary = "early-answer-boundary"
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    body = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_author_api_json_body_over_the_limit(server: LiveServer, token: str) -> None:
    path, body, headers = json_case("/adobe/assets/search?allowUnsafeSearch=true", token)
    status, ctype, text = send(server.url + path, body, headers)
    assert (status, ctype) == (413, "application/problem+json")
    assert json.loads(text)["status"] == 413


def test_import_request_over_the_limit(server: LiveServer, token: str) -> None:
    path, body, headers = json_case("/adobe/import/from-url", token)
    status, ctype, text = send(server.url + path, body, headers)
    assert (status, ctype) == (413, "application/problem+json")
    assert json.loads(text)["status"] == 413


def test_classic_form_over_the_limit(server: LiveServer, token: str) -> None:
    body = b"name=" + b"x" * OVERSIZED
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    status, ctype, text = send(server.url + "/api/assets/early-form", body, headers)
    assert status == 413
    assert "siren" in ctype or json.loads(text)["properties"]["status.code"] == 413


def test_classic_refusal_of_a_file_part(server: LiveServer, token: str) -> None:
    """Not a size refusal: the classic API refuses a file part as soon as its headers
    are read, the file itself unread."""
    body, ctype = multipart("file", "big.bin", b"\0" * OVERSIZED)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": ctype}
    status, _, text = send(server.url + "/api/assets/early-file", body, headers)
    assert status == 400
    assert "direct binary upload" in json.loads(text)["properties"]["status.message"]


def test_refused_credentials_before_an_upload(server: LiveServer) -> None:
    body, ctype = multipart("file", "big.bin", b"\0" * OVERSIZED)
    status, ctype_, _ = send(
        server.url + "/adobe/assets/search?allowUnsafeSearch=true",
        body,
        {"Content-Type": ctype, "X-Api-Key": "test-client"},
    )
    assert (status, ctype_) == (401, "application/problem+json")


def test_part_put_beyond_the_files_size(server: LiveServer, token: str) -> None:
    status, _, text = send(
        server.url + "/content/dam.initiateUpload.json",
        b"fileName=early.bin&fileSize=1000",
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 201, text
    uri = json.loads(text)["files"][0]["uploadURIs"][0]
    status, _, _ = send(
        uri, b"\0" * OVERSIZED, {"Content-Type": "application/octet-stream"}, method="PUT"
    )
    assert status == 413
    # The upload is still usable: the refused part changed nothing.
    status, _, _ = send(uri, b"\0" * 1000, {"Content-Type": "application/octet-stream"}, "PUT")
    assert status == 201


def test_a_body_far_past_the_bound_ends(server: LiveServer, token: str) -> None:
    """64 MiB at a 64 KiB limit: the server does not read it all (the client sees the
    413 or a closed connection, soon), and answers the next request."""
    path, _, headers = json_case("/adobe/import/from-url", token)
    body = b"[" + b" " * (64 * 1024 * 1024) + b"]"
    started = time.monotonic()
    try:
        status: int | None = send(server.url + path, body, headers)[0]
    except urllib.error.URLError as e:
        assert isinstance(e.reason, ConnectionError), e
        status = None
    assert status in (None, 413)
    assert time.monotonic() - started < 30
    status, _, _ = send(server.url + path, b"{}", headers)
    assert status == 400


def stream_until_closed(server: LiveServer, head: bytes, chunk: bytes, pause: float) -> Any:
    """Send ``head``, then chunks of a never-ending chunked body every ``pause`` seconds,
    reading whatever comes back, until the server ends the connection or 60 s pass.
    Returns (seconds until the end or None, the bytes the server answered)."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(head)
    sock.setblocking(False)
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    answer = b""
    started = time.monotonic()
    try:
        while time.monotonic() - started < 60:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    return time.monotonic() - started, answer
                if not data:
                    return time.monotonic() - started, answer
                answer += data
            if writable:
                try:
                    sock.send(frame)
                except BlockingIOError:
                    pass
                except OSError as e:
                    if e.errno in (errno.EPIPE, errno.ECONNRESET):
                        # The reset can overtake our read of the answer that came before
                        # it: what arrived stays readable after the reset.
                        return time.monotonic() - started, answer + _rest(sock)
                    raise
                if pause:
                    time.sleep(pause)
        return None, answer
    finally:
        sock.close()


def _rest(sock: socket.socket) -> bytes:
    """What the peer sent and we have not read yet, up to its end or its reset."""
    sock.setblocking(True)
    sock.settimeout(5)
    got = b""
    try:
        while data := sock.recv(65536):
            got += data
    except OSError:
        pass
    return got


@pytest.mark.parametrize(("chunk", "pause"), [(64 * 1024, 0.0), (1024, 0.05)])
def test_a_never_ending_body_on_a_kept_alive_connection_ends(
    server: LiveServer, token: str, chunk: int, pause: float
) -> None:
    """HTTP/1.1 without Connection: close, a chunked body that never ends, fast (past the
    byte bound) or trickling (past the time bound): the server answers 413 and closes
    the connection instead of reading on."""
    head = (
        "POST /adobe/import/from-url HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "X-Api-Key: test-client\r\n"
        "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    ended, answer = stream_until_closed(server, head, b" " * chunk, pause)
    assert ended is not None, "the server read on for 60 s"
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower()
