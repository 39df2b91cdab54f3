"""Worker processes for ``assetvault serve``: started after the start-up sweep, restarted
when they die, and gone with the server (they receive SIGKILL when it dies, however)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("assetvault.supervisor")

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Receive SIGKILL when the parent process dies, however it dies (Linux)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def workers_lock_path(data_dir: Path) -> Path:
    return data_dir / "workers.lock"


@contextlib.contextmanager
def no_workers_running(data_dir: Path, wait_seconds: float = 15.0) -> Iterator[bool]:
    """Hold the workers lock exclusively if no worker holds it within ``wait_seconds``.
    Yields whether it was taken (False: workers of another process are running)."""
    path = workers_lock_path(data_dir)
    with open(path, "a") as fh:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.1)
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def hold_worker_lock(data_dir: Path) -> object:
    """Called by each worker: a shared hold, released only when the process ends."""
    fh = open(workers_lock_path(data_dir), "a")  # noqa: SIM115 - held for the process
    fcntl.flock(fh, fcntl.LOCK_SH)
    return fh


class Supervisor:
    """Keeps ``count`` processes of ``assetvault <command>`` running (workers by default;
    ``serve`` also keeps one event dispatcher and one search indexer)."""

    def __init__(self, count: int, data_dir: Path, command: tuple[str, ...] = ("worker",)) -> None:
        self.count = count
        self.data_dir = data_dir
        self.command = command
        self.processes: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name=f"{'-'.join(command)}-supervisor", daemon=True
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "assetvault.cli",
                *self.command,
                "--data-dir",
                str(self.data_dir),
            ],
            preexec_fn=die_with_parent,
            env=os.environ.copy(),
        )

    def start(self) -> None:
        self.processes = [self._spawn() for _ in range(self.count)]
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            for i, p in enumerate(self.processes):
                if p.poll() is not None and not self._stopping.is_set():
                    log.warning(
                        "%s %d exited with %s; starting another",
                        " ".join(self.command),
                        p.pid,
                        p.returncode,
                    )
                    self.processes[i] = self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
