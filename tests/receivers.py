"""Real HTTP servers on loopback for tests of outgoing requests (imports, webhooks):
each records what it received and answers with what the test scripts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # written as it is instead of an HTTP answer (junk, cut short)
    delay: float = 0.0  # seconds to wait before answering
    trickle: float = 0.0  # seconds between the body's bytes (0: all at once)


Handler = Callable[[Received], Reply]


@dataclass
class Receiver:
    host: str
    port: int
    received: list[Received]
    handler: list[Handler]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def answer(self, handler: Handler) -> None:
        self.handler[0] = handler


@contextmanager
def receiver(handler: Handler | None = None, host: str = "127.0.0.1") -> Iterator[Receiver]:
    """A threaded HTTP server; ``handler`` picks each reply (default: 200, empty)."""
    with _serving((host, 0), handler) as found:
        yield found


@contextmanager
def _serving(address: tuple[str, int], handler: Handler | None) -> Iterator[Receiver]:
    received: list[Received] = []
    current: list[Handler] = [handler or (lambda _r: Reply())]

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Received(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            received.append(seen)
            reply = current[0](seen)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.raw is not None:
                self.wfile.write(reply.raw)
                self.close_connection = True
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            names = {k.lower() for k in reply.headers}
            if "content-length" not in names and "transfer-encoding" not in names:
                self.send_header("content-length", str(len(reply.body)))
            # No keep-alive: a receiver that was shut down must really be gone, not
            # live on in the thread of a connection a client kept open.
            self.send_header("connection", "close")
            self.close_connection = True
            self.end_headers()
            if self.command != "HEAD" and reply.trickle:
                for i in range(len(reply.body)):
                    try:
                        self.wfile.write(reply.body[i : i + 1])
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        return
                    time.sleep(reply.trickle)
            elif self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _serve

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(address, _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Receiver(address[0], server.server_address[1], received, current)
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def receiver_on(port: int, handler: Handler | None = None) -> Iterator[Receiver]:
    """A receiver on a given port (one that was closed, to come back)."""
    with _serving(("127.0.0.1", port), handler) as found:
        yield found
