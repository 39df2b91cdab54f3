"""The API processes of ``assetvault serve`` (docs/runtime.md, "Ready means requests
succeed"): forked from the serve process once it has imported the app, instead of each
starting a fresh interpreter that imports it again.

- **Start**: the imports (FastAPI, SQLAlchemy, the services and their routes: most of a
  start) are done once, in the serve process, before any thread of it starts; each API
  process is then a fork that builds its app and serves. What the imports built is
  frozen out of the collector's way first (``gc.freeze``), so the processes share those
  pages with the serve process instead of each holding a copy (PSS).
- **Ready**: all of them serve the one listening socket, and a process takes
  connections from it only once its start is done, so the first ``/health`` that
  answers 200 means every request from then on meets a process that can serve it.
- **At rest**: the serve process sleeps until one of them exits (their sentinels), then
  starts another; no health pings every half second as uvicorn's manager sends.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("assetvault.serve")

# What an API process calls itself (/proc/<pid>/comm; psutil's name()): how tools and
# tests tell it from the other children of serve, which are ``assetvault.cli <role>``.
API_PROCESS_NAME = "assetvault-api"
PR_SET_NAME = 15
# uvicorn's exit status for a process whose start failed (the app, the lifespan): every
# new one would fail alike, so serve ends instead of starting them over and over.
STARTUP_FAILURE = 3
# The least time between two starts of the same slot: a process that dies at once is
# not forked again in a tight loop.
RESTART_SECONDS = 1.0
STOP_SECONDS = 15.0

_FORK = multiprocessing.get_context("fork")


def preload() -> None:
    """Import, in the serve process, what every API process needs, then freeze what the
    imports built so the forked processes share it. Called before serve starts any
    thread: a fork copies only the thread that forks."""
    import uvicorn  # noqa: F401

    import assetvault.app
    import assetvault.runtime.http  # noqa: F401  (the protocol, named by import string)

    gc.collect()
    gc.freeze()


def name_process(name: str) -> None:
    """Set this process's name as ``ps`` and psutil show it (Linux; else nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def _api_process(config: Any, sockets: list[socket.socket], close: list[int]) -> None:
    """The body of one API process (a fork of serve)."""
    from assetvault.runtime.http import Server
    from assetvault.runtime.supervisor import die_with_parent

    die_with_parent()
    parent = multiprocessing.parent_process()
    if parent is None or os.getppid() != parent.pid:
        os._exit(1)  # serve died before this process could follow it
    name_process(API_PROCESS_NAME)
    for fd in close:  # serve's own files (its data directory lock, the ready line)
        with contextlib.suppress(OSError):
            os.close(fd)
    # serve's handlers raise into its own clean-up; uvicorn installs its own once it runs.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    Server(config).run(sockets=sockets)


class ApiProcesses:
    """``count`` API processes serving ``sockets`` with uvicorn's ``config`` (an app
    factory named by import string, built in each process), kept running until
    ``run`` is interrupted (serve's signal handlers raise in its thread)."""

    def __init__(
        self,
        count: int,
        sockets: list[socket.socket],
        config: Any,
        *,
        close_in_children: list[int] | None = None,
    ) -> None:
        self.count = count
        self.sockets = sockets
        self.config = config
        self.close_in_children = list(close_in_children or [])
        self.processes: list[BaseProcess] = []
        self._started: list[float] = []

    def _start(self) -> BaseProcess:
        process = _FORK.Process(
            target=_api_process,
            args=(self.config, self.sockets, self.close_in_children),
            name=API_PROCESS_NAME,
        )
        process.start()
        return process

    def start(self) -> None:
        """Fork the processes (before serve starts any thread of its own)."""
        for _ in range(self.count):
            self.processes.append(self._start())
        self._started = [time.monotonic()] * len(self.processes)

    def watch(self) -> int:
        """Keep the processes running until interrupted; returns ``STARTUP_FAILURE`` when
        one could not start (none would), and stops them however it ends."""
        started = self._started
        try:
            while True:
                sentinels = [p.sentinel for p in self.processes]
                multiprocessing.connection.wait(sentinels)
                for i, process in enumerate(self.processes):
                    if process.exitcode is None:
                        continue
                    if process.exitcode == STARTUP_FAILURE:
                        log.error("API process %d could not start; stopping", process.pid)
                        return STARTUP_FAILURE
                    log.warning(
                        "API process %d exited with %s; starting another",
                        process.pid,
                        process.exitcode,
                    )
                    process.close()
                    time.sleep(max(0.0, started[i] + RESTART_SECONDS - time.monotonic()))
                    self.processes[i] = self._start()
                    started[i] = time.monotonic()
        finally:
            self.stop()

    def stop(self) -> None:
        """SIGTERM to each process still running; SIGKILL to those not gone in 15 s."""
        for process in self.processes:
            with contextlib.suppress(ValueError, OSError):
                if process.exitcode is None:
                    process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for process in self.processes:
            with contextlib.suppress(ValueError, OSError):
                process.join(max(0.0, deadline - time.monotonic()))
                if process.exitcode is None:
                    process.kill()
                    process.join()
