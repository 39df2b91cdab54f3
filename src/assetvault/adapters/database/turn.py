"""The write turn: a fair queue between the processes that write one SQLite database.

SQLite lets one transaction write at a time and has no queue: a writer that finds the
lock taken can only sleep and try again, so which process gets it next is luck, and a
request can wait behind the background's writes many times over. Here each process
takes a ticket before it begins a write transaction and waits until its number is
served: first come, first served, whatever the process.

The tickets live in a small shared file beside the database (``<database>-turn/``,
which holds nothing of the data: a copy of the database needs none of it), mapped into
every writer's memory:

- ``next`` (the next ticket to hand out) and ``serving`` (the ticket that may write) are
  32-bit counters; handing out a ticket, and moving ``serving`` on, happen under a short
  ``flock`` of that file (microseconds, never held across a transaction).
- Each ticket's slot records the pid that holds it. A process keeps an exclusive
  ``flock`` on its own file in that directory for its lifetime, so a waiter
  that sees the turn stuck can tell whether its holder is gone (its lock is free: a
  ``kill -9`` mid-transaction) and pass the turn on. Nobody waits on a dead process for
  longer than ``STUCK_SECONDS``.
- Waiting is a futex wait on ``serving`` (Linux), in a thread so the event loop runs on:
  the process that passes the turn on wakes the waiters at once, nobody polls. Where
  futexes are not to be had, the wait is a short sleep.

A ticket is taken per group of changes (connection.py's group commit), not per change:
a process that has more to write after its commit takes a new ticket and goes to the
back of the line, so no writer waits more than one turn of each other writer.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import mmap
import os
import platform
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SLOTS = 1024  # tickets in flight at once; far more than processes on one machine
_HEADER = 64
_SIZE = _HEADER + 4 * SLOTS
_NEXT, _SERVING = 0, 4
ABANDONED = 0  # the pid of a slot whose waiter gave up (a cancelled request)
STUCK_SECONDS = 0.1  # how long the turn may rest with one ticket before its holder is checked
# A live holder is passed over after this long too: the turn only orders the writers,
# SQLite's own lock still keeps them apart, so passing on is safe (a pid reused by a
# writer process right after a crash cannot hold the line).
OVERDUE_SECONDS = 30.0
_MASK = 0xFFFFFFFF
_WAIT_SLICE = 0.05  # a futex wait wakes at least this often to look at the holder

_FUTEX_WAIT, _FUTEX_WAKE = 0, 1
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98}.get(platform.machine())


class _Futex:
    def __init__(self) -> None:
        self._syscall = None
        if _SYS_FUTEX is not None:
            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(None, use_errno=True)
                self._syscall = libc.syscall

    @property
    def available(self) -> bool:
        return self._syscall is not None

    def wait(self, address: int, expected: int, seconds: float) -> None:
        if self._syscall is None:
            time.sleep(min(seconds, 0.001))
            return
        whole = int(seconds)
        timeout = struct.pack("qq", whole, int((seconds - whole) * 1e9))
        buf = ctypes.create_string_buffer(timeout)
        # Returns at once when the word no longer holds ``expected``; shared (not
        # FUTEX_PRIVATE), so a wake from another process's mapping of the file reaches it.
        self._syscall(_SYS_FUTEX, ctypes.c_void_p(address), _FUTEX_WAIT, expected, buf, None, 0)

    def wake_all(self, address: int) -> None:
        if self._syscall is not None:
            self._syscall(
                _SYS_FUTEX, ctypes.c_void_p(address), _FUTEX_WAKE, 2**31 - 1, None, None, 0
            )


_futex = _Futex()


def _alive_lock_path(directory: Path, pid: int) -> Path:
    return directory / f"{pid}.lock"


class WriteTurn:
    """The tickets of one database. ``take()`` blocks (call it on a thread); ``give()``
    passes the turn on; ``abandon(ticket)`` gives up a ticket not yet served."""

    def __init__(self, database_path: str) -> None:
        # flock excludes other processes only (a lock is the open file's, and this
        # process's threads share it): a commit's thread passes the turn on while the
        # loop may take a ticket.
        self._threads = threading.Lock()
        directory = Path(f"{database_path}-turn")
        directory.mkdir(exist_ok=True)
        self._path = directory / "tickets"
        self._writers = directory
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        with self._locked():
            if os.fstat(self._fd).st_size < _SIZE:
                os.ftruncate(self._fd, _SIZE)
        self._map = mmap.mmap(self._fd, _SIZE, mmap.MAP_SHARED)
        self._words = (ctypes.c_uint32 * (_SIZE // 4)).from_buffer(self._map)
        self._serving_address = ctypes.addressof(self._words) + _SERVING
        self._pid = os.getpid()
        self._alive = _hold_alive_lock(self._writers, self._pid)
        self._closed = threading.Event()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._threads:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _get(self, offset: int) -> int:
        return int(self._words[offset // 4])

    def _set(self, offset: int, value: int) -> None:
        self._words[offset // 4] = value & _MASK

    def _slot(self, ticket: int) -> int:
        return _HEADER + 4 * (ticket % SLOTS)

    def ticket(self) -> int:
        """A place in the line (cheap; never waits beyond the file lock)."""
        with self._locked():
            ticket = self._get(_NEXT)
            self._set(_NEXT, ticket + 1)
            self._set(self._slot(ticket), self._pid)
            return ticket

    def wait(self, ticket: int, deadline: float) -> bool:
        """Block until ``ticket`` is served; False at ``deadline`` (the ticket is then
        abandoned, so the line goes on without it)."""
        checked: tuple[int, float] | None = None  # (serving, since when)
        first_seen: tuple[int, float] | None = None
        while True:
            serving = self._get(_SERVING)
            if self.served(ticket, serving):
                return True
            now = time.monotonic()
            if now >= deadline:
                self.abandon(ticket)
                return False
            if first_seen is None or first_seen[0] != serving:
                first_seen = checked = (serving, now)
            elif checked is not None and now - checked[1] >= STUCK_SECONDS:
                overdue = now - first_seen[1] >= OVERDUE_SECONDS
                self._skip_if_gone(serving, overdue=overdue)
                checked = (serving, now)
            _futex.wait(self._serving_address, serving, _WAIT_SLICE)

    def current(self) -> int:
        """The ticket being served."""
        return self._get(_SERVING)

    @staticmethod
    def served(ticket: int, serving: int) -> bool:
        """Whether ``ticket``'s turn has come (or passed: it was skipped)."""
        return (serving - ticket) & _MASK < 2**31

    def _skip_if_gone(self, serving: int, *, overdue: bool) -> None:
        """Pass the turn on when the ticket being served belongs to no live process."""
        with self._locked():
            if self._get(_SERVING) != serving:
                return
            holder = self._get(self._slot(serving))
            if overdue or holder == ABANDONED or not _alive(self._writers, holder, self._pid):
                self._advance()

    def _advance(self) -> None:
        """Move ``serving`` past this ticket and any abandoned ones after it (under the
        file lock), and wake the waiters."""
        serving = (self._get(_SERVING) + 1) & _MASK
        while serving != self._get(_NEXT) and self._get(self._slot(serving)) == ABANDONED:
            serving = (serving + 1) & _MASK
        self._set(_SERVING, serving)
        _futex.wake_all(self._serving_address)

    def give(self, ticket: int) -> None:
        """The holder's turn is over: the next ticket may write."""
        with self._locked():
            if self._get(_SERVING) == ticket & _MASK:
                self._advance()

    def abandon(self, ticket: int) -> None:
        """Give up a ticket: if it is being served already, pass the turn on."""
        with self._locked():
            self._set(self._slot(ticket), ABANDONED)
            if self._get(_SERVING) == ticket & _MASK:
                self._advance()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            del self._words
            self._map.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)


_alive_locks: dict[tuple[Path, int], int] = {}
_alive_guard = threading.Lock()


def _hold_alive_lock(directory: Path, pid: int) -> int:
    """This process's lock file, held exclusively for its lifetime: while it is held the
    process is alive. One per process and directory, shared by its writers."""
    with _alive_guard:
        key = (directory, pid)
        if key not in _alive_locks:
            fd = os.open(_alive_lock_path(directory, pid), os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            _alive_locks[key] = fd
        return _alive_locks[key]


def _alive(directory: Path, pid: int, me: int) -> bool:
    if pid == me:
        return True
    path = _alive_lock_path(directory, pid)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        # Nobody holds it: that process is gone. Its file goes too.
        with contextlib.suppress(OSError):
            path.unlink()
        return False
    finally:
        os.close(fd)
