"""The restore gate: no process of a data directory serves a half-restored state.

A restore (or a reset) replaces the database's content, the search index and the keys
underneath running processes: the API processes, the background role, the worker. The
gate is how they all agree on "not now":

- A small shared file ``<data dir>/run/gate`` (mapped into every process's memory) holds
  two 32-bit words: whether the gate is closed, and a generation that every restore
  moves on.
- A process that works (an API process serving a request, the periodic sweep) *enters*
  the gate: while it has anything inside it holds a shared ``flock`` on
  ``<data dir>/run/gate.lock`` and it checks, after taking that lock, that the gate is
  open. A closed gate makes it wait (a request waits up to ``gate_wait_seconds``, then
  is answered 503 with Retry-After).
- The restorer closes the gate (the word), then takes ``gate.lock`` exclusively: it gets
  it once everything that entered before has left (bounded: a restore that cannot drain
  gives up and changes nothing). It swaps, moves the generation on and opens the gate.
- A process that sees the generation moved closes and reopens what it holds of the old
  state before its next request (the API processes: database connections, the search
  reader, caches), or ends and is started again by ``serve``'s supervisor (the
  background and worker roles, whose tasks keep positions in memory).

The order (lock, then look at the word; close the word, then lock) leaves no gap: a
process that saw the gate open holds its shared lock already, so the restorer waits for
it. One restore at a time: a third file, ``restore.lock``, held exclusively by the
restorer for its whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import mmap
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from assetvault.errors import Conflict, Unavailable

_SIZE = 8
_STATE, _GENERATION = 0, 1
OPEN, CLOSED = 0, 1
_POLL_SECONDS = 0.01


class GateClosed(Unavailable):
    """The data directory is being restored or reset: try again shortly."""

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Gate:
    """One process's view of the gate of a data directory (see the module's docstring)."""

    def __init__(self, data_dir: Path) -> None:
        directory = data_dir / "run"
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._fd = os.open(directory / "gate", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if os.fstat(self._fd).st_size < _SIZE:
                os.ftruncate(self._fd, _SIZE)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._map = mmap.mmap(self._fd, _SIZE, mmap.MAP_SHARED)
        self._words = (ctypes.c_uint32 * 2).from_buffer(self._map)
        self._lock_fd = os.open(
            directory / "gate.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        self._inside = 0
        # The generation this process's state belongs to.
        self.seen = self.generation

    @property
    def closed(self) -> bool:
        return int(self._words[_STATE]) == CLOSED

    @property
    def generation(self) -> int:
        return int(self._words[_GENERATION])

    def moved(self) -> bool:
        """Whether a restore happened since this process last caught up (``caught_up``)."""
        return self.generation != self.seen

    def caught_up(self) -> None:
        self.seen = self.generation

    # -- the processes that work ---------------------------------------------------------

    def try_enter(self) -> bool:
        """Enter if the gate is open (never blocks)."""
        if self.closed:
            return False
        if self._inside == 0:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a restorer holds it
            if self.closed:  # closed between the look and the lock: step back
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                return False
        self._inside += 1
        return True

    def leave(self) -> None:
        self._inside -= 1
        if self._inside == 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    async def enter(self, wait_seconds: float) -> None:
        """Enter, waiting up to ``wait_seconds`` while the gate is closed (GateClosed
        after that)."""
        deadline = time.monotonic() + wait_seconds
        while not self.try_enter():
            if time.monotonic() >= deadline:
                raise GateClosed("the data is being restored or reset; try again shortly")
            await asyncio.sleep(_POLL_SECONDS)

    async def wait_open(self) -> None:
        """Until the gate is open (no bound: for the roles, which have nothing to answer)."""
        while True:  # a shared word, no event to wait on: looked at every 10 ms
            if not self.closed:
                return
            await asyncio.sleep(_POLL_SECONDS)

    @contextlib.asynccontextmanager
    async def held(self, wait_seconds: float) -> AsyncIterator[None]:
        await self.enter(wait_seconds)
        try:
            yield
        finally:
            self.leave()

    # -- the restorer --------------------------------------------------------------------

    @contextlib.contextmanager
    def closed_for_restore(self, drain_seconds: float) -> Iterator[None]:
        """Close the gate and wait (blocking: run it on a thread) until nothing is inside
        any process; the block then runs alone. On leaving, the generation moves on (only
        if the block succeeded) and the gate opens. Conflict if another restore runs;
        GateClosed if what is inside does not leave within ``drain_seconds``."""
        restore_fd = os.open(
            self._directory / "restore.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            try:
                fcntl.flock(restore_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise Conflict("another restore or reset of this data is running") from exc
            drain_fd = os.open(self._directory / "gate.lock", os.O_RDWR | os.O_CLOEXEC)
            try:
                self._words[_STATE] = CLOSED
                try:
                    deadline = time.monotonic() + drain_seconds
                    while True:
                        try:
                            fcntl.flock(drain_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                            break
                        except BlockingIOError:
                            if time.monotonic() >= deadline:
                                raise GateClosed(
                                    f"requests in flight did not finish within "
                                    f"{drain_seconds:g} s; nothing was restored",
                                    retry_after=5,
                                ) from None
                            time.sleep(0.002)
                    yield
                    self._words[_GENERATION] = (self.generation + 1) & 0xFFFFFFFF
                finally:
                    self._words[_STATE] = OPEN
            finally:
                os.close(drain_fd)  # releases the exclusive lock
        finally:
            os.close(restore_fd)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            del self._words
            self._map.close()
        for fd in (self._fd, self._lock_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
