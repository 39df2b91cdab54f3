"""What ``assetvault serve`` does around uvicorn: the listening socket bound once by the
parent (so ``--port 0`` picks one free port that every API process shares), the ready
line on stdout, the temporary data directory of ``--ephemeral``, and the signals that
end a server with its clean-up (docs/ci.md, "Ephemeral servers")."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any

log = logging.getLogger("assetvault.serve")

READY_POLL_SECONDS = 0.01
LISTEN_BACKLOG = 2048  # uvicorn's own default
EPHEMERAL_PREFIX = "assetvault-ephemeral-"


def bind(host: str, port: int) -> socket.socket:
    """The server's listening socket (``port`` 0: a free one, chosen by the kernel). The
    parent binds it once and hands it to its API processes, as uvicorn's own manager
    does, so all of them serve the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        sys.exit(f"assetvault: cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.set_inheritable(True)
    # Listening at once: a client that connects while serve starts waits in the queue
    # and is answered by the first API process ready to serve, instead of being refused
    # and trying again later (a process takes connections only once its start is done).
    sock.listen(LISTEN_BACKLOG)
    return sock


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches the server at (a wildcard address is
    reached on the loopback)."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{target}]:{port}" if ":" in target else f"http://{target}:{port}"


def take_stdout() -> IO[str]:
    """A private copy of stdout for the ready line; stdout itself (file descriptor 1,
    inherited by every child) becomes stderr, so nothing else ever lands on it."""
    sys.stdout.flush()
    private = os.dup(1)  # not inherited by children (PEP 446): closing it ends the stream
    os.dup2(2, 1)
    return os.fdopen(private, "w", buffering=1)


def ready_document(url: str, token: str | None, data_dir: Path) -> str:
    """The ready line: one JSON object on one line."""
    return json.dumps({"url": url, "token": token, "data_dir": str(data_dir)}) + "\n"


class ReadyLine:
    """Writes the ready line once ``ready()`` says /health answers 200, then closes its
    stream (a reader sees the end of it), in a thread of its own."""

    def __init__(self, out: IO[str], ready: Callable[[], bool], line: str) -> None:
        self.out = out
        self.ready = ready
        self.line = line
        self.written = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ready-line", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.ready():
                with contextlib.suppress(OSError):  # a reader that went away hears nothing
                    self.out.write(self.line)
                    self.out.flush()
                    self.out.close()
                self.written.set()
                return
            self._stop.wait(READY_POLL_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if not self.out.closed:
            with contextlib.suppress(OSError):
                self.out.close()


def temporary_data_dir() -> Path:
    """A fresh data directory for ``--ephemeral`` (short: the wake-up sockets' paths
    below it must fit a Unix socket name)."""
    return Path(tempfile.mkdtemp(prefix=EPHEMERAL_PREFIX)).resolve()


def remove_data_dir(path: Path) -> None:
    """Removes an ephemeral data directory; called once every child process is gone. A
    file a dying helper made meanwhile is taken on a second pass."""
    for _ in range(3):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.1)
    log.warning("could not remove the ephemeral data directory %s", path)


class Stopped(SystemExit):
    """SIGTERM or SIGINT arrived: the server ends with its clean-up and exit status 0."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped(0)


def exit_on_signals() -> None:
    """SIGTERM and SIGINT end ``serve`` through its ``finally`` blocks (uvicorn, once it
    has shut down, raises the signal again; it reaches this handler)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)


def ignore_signals() -> None:
    """While the clean-up runs: a second Ctrl-C must not leave children or files behind."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def uvicorn_config(app: Any, **config: Any) -> Any:
    """uvicorn's configuration of an API process serving ``app``."""
    import uvicorn

    # asyncio's own loop, not uvloop (which uvicorn picks when it is installed): with the
    # processes busy, uvloop took connections from the shared socket's accept queue a
    # few a second, so of 200 clients connecting at once the last waited seconds for
    # their first answer (p99 4-6 s against 0.8 s with asyncio's loop, which accepts all
    # that wait each time the socket is ready; docs/runtime.md).
    config.setdefault("loop", "asyncio")
    # No WebSocket route: each API process would otherwise import a WebSocket library
    # (uvicorn's "auto") at its start, before it serves.
    config.setdefault("ws", "none")
    return uvicorn.Config(app, **config)


def run_uvicorn(sock: socket.socket, processes: int, app: Any, **config: Any) -> None:
    """Serves ``sock`` with one API process (this one) or ``processes`` of them (uvicorn's
    manager, each process building the app from ``app``, an import string). ``serve``
    forks its API processes itself (runtime/api.py) and uses this for one process."""
    from uvicorn.supervisors import Multiprocess

    from assetvault.runtime.http import Server

    settings = uvicorn_config(app, workers=processes, factory=processes > 1, **config)
    if processes == 1:
        Server(settings).run(sockets=[sock])
    else:
        Multiprocess(settings, sockets=[sock]).run()
