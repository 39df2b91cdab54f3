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
  starts another; no health pings every half second as uvicorn's manager sends. Each
  process writes a byte to a pipe of its own every few seconds while its event loop
  turns (``Server.heartbeat_fd``); one silent for ``hang_seconds`` (a loop blocked, a
  deadlock, a stopped process) is killed and replaced like one that exited. Serve
  wakes for those bytes, a few times a minute.
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
# An API process whose loop has not turned for this long is killed and replaced (what
# uvicorn's manager allowed its pings); its start counts, so it is far above a start.
HANG_SECONDS = 60.0

_FORK = multiprocessing.get_context("fork")


def preload() -> None:
    """Import, in the serve process, what every API process needs, then freeze what the
    imports built so the forked processes share it. Called before serve starts any
    thread: a fork copies only the thread that forks.

    The collector is off from the command's start until here (``cli.main``), as Python's
    documentation of ``gc.freeze`` advises for a parent that forks: the imports build
    some 200,000 objects that live as long as the process, and the collections they
    set off (a full one walks all of them) cost 15-20 % of the imports' CPU, all of it
    before ready. What they leave unreachable is about 3,000 objects: frozen with the
    rest rather than collected at the price of another full walk."""
    import uvicorn
    import uvicorn.lifespan.on  # noqa: F401  (each process's lifespan, named by string)

    import assetvault.app
    import assetvault.runtime.http  # noqa: F401  (the protocol, named by import string)

    gc.freeze()
    gc.enable()


def name_process(name: str) -> None:
    """Set this process's name as ``ps`` and psutil show it (Linux; else nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def _api_process(
    config: Any, sockets: list[socket.socket], close: list[int], heartbeat: int
) -> None:
    """The body of one API process (a fork of serve); ``heartbeat``: its pipe to serve."""
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
    server = Server(config)
    server.heartbeat_fd = heartbeat
    server.run(sockets=sockets)


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
        hang_seconds: float = HANG_SECONDS,
    ) -> None:
        self.count = count
        self.sockets = sockets
        self.config = config
        self.close_in_children = list(close_in_children or [])
        self.hang_seconds = hang_seconds
        self.processes: list[BaseProcess] = []
        self._heard: list[float] = []  # when each slot's process last beat (or started)
        self._beats: list[int] = []  # the read end of each slot's heartbeat pipe
        self._started: list[float] = []

    def _start(self, slot: int) -> BaseProcess:
        """Fork the process of ``slot`` with a fresh heartbeat pipe."""
        read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        process = _FORK.Process(
            target=_api_process,
            args=(self.config, self.sockets, [*self.close_in_children, *self._beats, read], write),
            name=API_PROCESS_NAME,
        )
        try:
            process.start()
        finally:
            os.close(write)  # the child's end
        if slot < len(self._beats):
            os.close(self._beats[slot])
            self._beats[slot] = read
            self._heard[slot] = time.monotonic()
        else:
            self._beats.append(read)
            self._heard.append(time.monotonic())
        return process

    def start(self) -> None:
        """Fork the processes (before serve starts any thread of its own)."""
        for slot in range(self.count):
            self.processes.append(self._start(slot))
        self._started = [time.monotonic()] * len(self.processes)

    def watch(self) -> int:
        """Keep the processes running until interrupted; returns ``STARTUP_FAILURE`` when
        one could not start (none would), and stops them however it ends."""
        started = self._started
        try:
            while True:
                sentinels = [p.sentinel for p in self.processes]
                woke = multiprocessing.connection.wait(
                    [*sentinels, *self._beats], timeout=self.hang_seconds / 4
                )
                self._listen(woke)
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
                    self.processes[i] = self._start(i)
                    started[i] = time.monotonic()
        finally:
            self.stop()

    def _listen(self, woke: list[Any]) -> None:
        """Take the beats that arrived; kill each process silent for ``hang_seconds``
        (its sentinel then wakes the watch, which starts another)."""
        now = time.monotonic()
        for slot, fd in enumerate(self._beats):
            if fd in woke:
                with contextlib.suppress(OSError):
                    while os.read(fd, 4096):
                        pass
                self._heard[slot] = now
        for slot, process in enumerate(self.processes):
            if process.exitcode is None and now - self._heard[slot] > self.hang_seconds:
                log.error(
                    "API process %d has not turned its loop for %.0f s; killing it",
                    process.pid,
                    now - self._heard[slot],
                )
                with contextlib.suppress(OSError):
                    process.kill()
                self._heard[slot] = now  # one kill; the exit starts its successor

    def stop(self) -> None:
        """SIGTERM to each process still running; SIGKILL to those not gone in 15 s."""
        for fd in self._beats:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._beats = []
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
