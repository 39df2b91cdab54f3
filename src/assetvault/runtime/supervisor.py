"""The processes ``assetvault serve`` keeps besides its API processes (docs/runtime.md):
one worker process and one background process, started once the server's own start is
done, restarted when they die, and gone with the server (they receive SIGKILL when it
dies, however).

A process that keeps dying soon after its start (a full disk, a database it cannot
open) is restarted after a back-off that doubles with each such death up to a cap
(``restart_delay``), not in a loop; the log says so once per step of the back-off.

Both can run below the API processes' CPU priority (``lower_priority``; the setting
``roles_nice``, off by default): on two cores the event dispatcher's signing and sending,
the indexer and an ingest's renditions would otherwise take the cores from the requests,
and a PATCH would wait for a core behind them."""

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
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger("assetvault.supervisor")

PR_SET_PDEATHSIG = 1
READY_WAIT_SECONDS = 30.0  # the roles start then even if the API never answered
RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 60.0
# A process that ran this long before it died is restarted after the first delay again.
RESTART_HEALTHY_AFTER_SECONDS = 60.0
# glibc's malloc, as the roles' processes use it (an operator's own settings win):
# - it gives each thread that allocates its own arena (up to 8 per core) and keeps what
#   it touched: the background process's index commits and merges, on ever other
#   threads, grew it by some 3 MiB a minute under a steady load that way (the soak,
#   tests/soak). Two arenas.
# - it raises its mmap threshold to the size of every large block freed (up to 32 MiB)
#   and its trim threshold to twice that: after the first index commit, the writer's
#   buffers of a few MiB each (and any other large transient block) are carved out of
#   the arenas instead of being mapped and unmapped, long-lived small blocks settle
#   between them, and up to 64 MiB free at an arena's top is never given back. Under
#   the soak's steady load that held 20-40 MiB free in the background process and grew
#   it by 1-2 MiB a minute. Fixed thresholds (blocks of 256 KiB and more mapped on their
#   own, an arena's top trimmed past 1 MiB free) turn off that adjustment.
CHILD_ENV_DEFAULTS = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": str(256 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(1024 * 1024),
}


def restart_delay(
    quick_deaths: int, first: float = RESTART_FIRST_SECONDS, cap: float = RESTART_MAX_SECONDS
) -> float:
    """How long to wait before starting a process again after its ``quick_deaths``-th
    death in a row soon after its start (1 for a death after a healthy run): ``first``,
    doubled with each further quick death, at most ``cap``."""
    return min(cap, first * 2.0 ** max(0, min(quick_deaths - 1, 62)))


def answers(host: str, port: int) -> Callable[[], bool]:
    """Whether the server on ``host:port`` answers ``/health`` with 200 (a wildcard
    address is asked on the loopback)."""
    import http.client

    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)

    def probe() -> bool:
        conn = http.client.HTTPConnection(target, port, timeout=1.0)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    return probe


def die_with_parent() -> None:
    """Receive SIGKILL when the parent process dies, however it dies (Linux)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def lower_priority(nice: int) -> None:
    """This process, and every process it starts, below the others' CPU priority:
    ``nice`` more niceness (nice 10 weighs a tenth of nice 0 when the cores are
    contended) and, on Linux, SCHED_BATCH (it does not preempt a woken request's
    process). Idle cores are still all theirs. 0 leaves the process as it is."""
    if nice <= 0:
        return
    os.nice(nice)
    with contextlib.suppress(AttributeError, OSError):  # SCHED_BATCH is Linux's own
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


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
    """Keeps ``count`` processes of ``assetvault <command> --data-dir D`` running,
    restarting one that dies after ``restart_delay`` (``first``, ``cap``; a process that
    lived ``healthy_after`` seconds starts the back-off over); each at ``nice``
    (``lower_priority``)."""

    TICK_SECONDS = 1.0

    def __init__(
        self,
        count: int,
        data_dir: Path,
        command: tuple[str, ...] = ("worker",),
        *,
        first: float = RESTART_FIRST_SECONDS,
        cap: float = RESTART_MAX_SECONDS,
        healthy_after: float = RESTART_HEALTHY_AFTER_SECONDS,
        nice: int = 0,
    ) -> None:
        self.count = count
        self.nice = nice
        self.data_dir = data_dir
        self.command = command
        self.first = first
        self.cap = cap
        self.healthy_after = healthy_after
        self.processes: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name=f"{'-'.join(command)}-supervisor", daemon=True
        )

    def argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "assetvault.cli",
            *self.command,
            "--data-dir",
            str(self.data_dir),
        ]

    def _spawn(self) -> subprocess.Popen[bytes]:
        nice = self.nice

        def in_child() -> None:
            die_with_parent()
            lower_priority(nice)

        return subprocess.Popen(
            self.argv(), preexec_fn=in_child, env={**CHILD_ENV_DEFAULTS, **os.environ}
        )

    def start(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        # Every process is started, watched and stopped by this thread, which lives as
        # long as they do: the kernel sends a child its parent-death signal when the
        # thread that started it ends, not only when the process does.
        if not self._stopping.is_set():
            self.processes = [self._spawn() for _ in range(self.count)]
        now = time.monotonic()
        started = [now] * len(self.processes)
        quick_deaths = [0] * len(self.processes)
        due: list[float | None] = [None] * len(self.processes)  # when a dead one restarts
        while not self._stopping.wait(self.TICK_SECONDS):
            now = time.monotonic()
            for i, p in enumerate(self.processes):
                if due[i] is None and p.poll() is not None:
                    quick = now - started[i] < self.healthy_after
                    quick_deaths[i] = quick_deaths[i] + 1 if quick else 1
                    delay = restart_delay(quick_deaths[i], self.first, self.cap)
                    before = restart_delay(quick_deaths[i] - 1, self.first, self.cap)
                    if quick_deaths[i] == 1 or delay != before:  # once per step
                        log.warning(
                            "%s %d exited with %s; starting another in %g s%s",
                            " ".join(self.command),
                            p.pid,
                            p.returncode,
                            delay,
                            " (and so after each such exit)" if delay >= self.cap else "",
                        )
                    due[i] = now + delay
                when = due[i]
                if when is not None and now >= when and not self._stopping.is_set():
                    self.processes[i] = self._spawn()
                    started[i] = now
                    due[i] = None
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop(self) -> None:
        """Stop the processes (SIGTERM, SIGKILL after 15 s) and return once they are gone."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()


class Roles:
    """The worker role (one process running up to ``jobs`` processing jobs at once; none
    when ``jobs`` is 0) and the background role (one process) of one ``serve``, both at
    ``nice`` (``lower_priority``: the API processes win the cores).

    ``start`` returns at once: a thread first makes sure no worker of another process is
    running (such a worker may hold a blob it has stored and not yet committed), then
    starts both. The background role's start-up sweep then removes, with no grace, the
    unreferenced blobs older than the server's start: whatever this server's requests
    and jobs store is younger (a blob they reuse is touched when stored). If a worker of
    another process still runs after ``wait_seconds``, the sweep keeps the usual grace.
    """

    def __init__(
        self, data_dir: Path, *, jobs: int, wait_seconds: float = 15.0, nice: int = 0
    ) -> None:
        self.data_dir = data_dir
        self.jobs = jobs
        self.nice = nice
        self.wait_seconds = wait_seconds
        self.supervisors: list[Supervisor] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()
        self._starter: threading.Thread | None = None

    def start(self, started: float, ready: Callable[[], bool] | None = None) -> None:
        """Start the roles in a thread, once ``ready()`` (polled; bounded) says the API
        answers: on two cores their start would otherwise delay the API's."""
        self._starter = threading.Thread(
            target=self._start, args=(started, ready), name="roles-start", daemon=True
        )
        self._starter.start()

    def _start(self, started: float, ready: Callable[[], bool] | None) -> None:
        deadline = time.monotonic() + READY_WAIT_SECONDS
        while ready is not None and not ready() and time.monotonic() < deadline:
            if self._stopped.wait(0.05):
                return
        with no_workers_running(self.data_dir, self.wait_seconds) as alone:
            pass
        sweep = ["--alone-before", repr(started)] if alone else []
        with self._lock:
            if self._stopping:
                return
            if self.jobs > 0:
                worker = ("worker", "--jobs", str(self.jobs))
                self.supervisors.append(Supervisor(1, self.data_dir, worker, nice=self.nice))
            background = ("background", *sweep)
            self.supervisors.append(Supervisor(1, self.data_dir, background, nice=self.nice))
            for supervisor in self.supervisors:
                supervisor.start()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            self._stopping = True
            supervisors = list(self.supervisors)
        for supervisor in supervisors:
            supervisor.stop()
