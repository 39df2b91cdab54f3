"""One pass over each byte of a stream: received on the event loop, then hashed (SHA-256
for the blob key, SHA-1 for ``dam:sha1``) and written on threads while the loop receives
what follows.

``pump`` gathers a stream's chunks into batches of about ``BATCH_BYTES`` (the chunks as
they came, never joined into a copy) and pushes each into three lanes: one writes it to
a file descriptor with ``writev`` and starts the kernel's write-back of what it wrote
(so the fsync at the end has little left to wait for), the others each update one
digest (hashlib releases the GIL on buffers this large, so the three run side by side on
as many cores as there are). Each lane takes its batches in order on a thread of a pool
and runs on while more are queued; the loop waits only when ``IN_FLIGHT_BYTES`` are
received and not through every lane, and, after the last byte, for the little left.

Any code that stores a stream it hashes uses this: the local blob store's ``put`` and
its upload staging, and through ``put`` the imports from URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import hashlib
import os
import threading
from collections import deque
from collections.abc import AsyncIterable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

FLUSH_BYTES = 4 * 1024 * 1024  # a read of a whole file to hash
# A stream goes through its lanes in batches of this size: small, so that what is left to
# do after its last byte (before the fsync) is little, and large enough that a lane's
# steps (a lock, a digest update, a writev) are few.
BATCH_BYTES = 1024 * 1024
# Bytes of a stream received and not yet through every lane: the loop waits beyond.
IN_FLIGHT_BYTES = 8 * 1024 * 1024
RUN_BATCHES = 16  # batches a lane's runner takes before it lets other lanes go first
IOV_MAX = 1024
POOL_THREADS = 8

# One thread per digest of a file hashed whole; a few at once share them.
_HASHERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="blob-hash")
# The lanes of the streams being stored (three per stream: the write and two digests).
_LANES = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="blob-lane")


def _new_pool_after_fork() -> None:
    """A forked process (serve forks its API processes) inherits the pools' bookkeeping
    but none of their threads: a pool would count idle threads that do not exist and
    queue work nobody runs. The child gets pools of its own."""
    global _HASHERS, _LANES
    _HASHERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="blob-hash")
    _LANES = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="blob-lane")


os.register_at_fork(after_in_child=_new_pool_after_fork)


class StreamTooLarge(Exception):
    """The stream went past the ``max_size`` given to ``pump``."""


class _Hash(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...


@dataclass(frozen=True)
class Digests:
    """The hashes of the first ``size`` bytes of a stream."""

    size: int
    sha256: str
    sha1: str


class Hashes:
    """SHA-256 and SHA-1 of a stream, and its length, updated one batch at a time."""

    def __init__(self) -> None:
        self.sha1 = hashlib.sha1(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        """Both digests of one buffer, on the calling thread."""
        self.sha1.update(data)
        self.sha256.update(data)
        self.size += len(data)

    def start_batch(self, batch: list[bytes]) -> Callable[[], None]:
        """Hash a batch on two threads, one digest each; returns the wait for both (which
        re-raises what either raised). The batch must not change until then."""
        jobs = [_HASHERS.submit(_update_all, h, batch) for h in (self.sha1, self.sha256)]
        self.size += sum(len(c) for c in batch)

        def wait() -> None:
            for job in jobs:
                job.result()

        return wait

    def lanes(self) -> list[Callable[[list[bytes]], None]]:
        """One digest's update per lane (``pump``); the first also counts the bytes."""

        def sha1(batch: list[bytes]) -> None:
            _update_all(self.sha1, batch)
            self.size += sum(len(c) for c in batch)

        return [sha1, functools.partial(_update_all, self.sha256)]

    def digests(self) -> Digests:
        return Digests(self.size, self.sha256.hexdigest(), self.sha1.hexdigest())


def _update_all(h: _Hash, batch: list[bytes]) -> None:
    for chunk in batch:
        h.update(chunk)


def writev_all(fd: int, batch: list[bytes]) -> None:
    """Write every byte of the batch at the descriptor's position (``writev``, retried
    after short writes)."""
    views = [memoryview(c) for c in batch if c]
    while views:
        written = os.writev(fd, views[:IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _libc_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now, without waiting for it
    (Linux's ``sync_file_range(SYNC_FILE_RANGE_WRITE)``), so a later fsync finds most of
    the file written already instead of all of it dirty. Only a hint: durability still
    comes from the fsync; where the call is missing or fails, nothing happens."""
    if _SYNC_FILE_RANGE is not None and length > 0:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


class HashingWriter:
    """What ``pump`` feeds a stream to: writes it to ``fd`` at its current position
    (starting the kernel's write-back as it goes) while ``hashes`` (if any) takes it in,
    each digest on a lane of its own."""

    def __init__(self, fd: int, hashes: Hashes | None = None) -> None:
        self.fd = fd
        self.hashes = hashes

    def write(self, batch: list[bytes]) -> None:
        writev_all(self.fd, batch)
        length = sum(len(c) for c in batch)
        # Where the batch went: also right for a file opened to append.
        end = os.lseek(self.fd, 0, os.SEEK_CUR)
        start_writeback(self.fd, end - length, length)

    def lanes(self) -> list[Callable[[list[bytes]], None]]:
        """The work each batch goes through, every lane in order on a thread of its own
        while the others (and the event loop) run beside it."""
        work: list[Callable[[list[bytes]], None]] = [self.write]
        if self.hashes is not None:
            work += self.hashes.lanes()
        return work


class _Lane:
    """One kind of work (a write, a digest) over a stream's batches, in their order, on
    the lane pool: a runner takes the batches queued so far one after another and
    leaves when none is left (or after ``RUN_BATCHES``, to let other streams' lanes
    have the thread), so a lane that keeps up costs one thread wake-up per batch and
    one that falls behind none."""

    def __init__(self, work: Callable[[list[bytes]], None], progress: Callable[[], None]) -> None:
        self.work = work
        self.progress = progress
        self.queue: deque[list[bytes]] = deque()
        self.lock = threading.Lock()
        self.running = False
        self.stopped = False
        self.done = 0  # bytes through this lane
        self.error: BaseException | None = None

    def push(self, batch: list[bytes]) -> None:
        with self.lock:
            self.queue.append(batch)
            if self.running:
                return
            self.running = True
        _LANES.submit(self._run)

    def stop(self) -> None:
        """Take no further batch (the one in hand is finished)."""
        with self.lock:
            self.stopped = True
            self.queue.clear()

    def idle(self) -> bool:
        with self.lock:
            return not self.running

    def _run(self) -> None:
        for _ in range(RUN_BATCHES):
            with self.lock:
                if not self.queue or self.stopped:
                    self.running = False
                    break
                batch = self.queue[0]
            try:
                self.work(batch)
            except BaseException as exc:
                with self.lock:
                    self.error = exc
                    self.stopped = True
                    self.queue.clear()
                    self.running = False
                self.progress()
                return
            with self.lock:
                if self.queue:
                    self.queue.popleft()
                self.done += sum(len(c) for c in batch)
            self.progress()
        else:
            _LANES.submit(self._run)  # still running: back in the pool's line
            return
        self.progress()


class _Lanes:
    """A stream's lanes, and the event loop's wait for them: for room (no more than
    ``IN_FLIGHT_BYTES`` pushed and not through every lane) or for all to end."""

    def __init__(self, work: list[Callable[[list[bytes]], None]]) -> None:
        self.loop = asyncio.get_running_loop()
        self.lanes = [_Lane(w, self._progress) for w in work]
        self.pushed = 0
        self.waiter: asyncio.Future[None] | None = None
        self.wanted: Callable[[], bool] = lambda: True
        self.lock = threading.Lock()

    def push(self, batch: list[bytes]) -> None:
        self.pushed += sum(len(c) for c in batch)
        for lane in self.lanes:
            lane.push(batch)

    def _error(self) -> BaseException | None:
        return next((lane.error for lane in self.lanes if lane.error is not None), None)

    def _room(self) -> bool:
        slowest = min(lane.done for lane in self.lanes)
        return self.pushed - slowest <= IN_FLIGHT_BYTES or self._error() is not None

    def _ended(self) -> bool:
        return all(lane.idle() for lane in self.lanes)

    def _progress(self) -> None:
        """On a lane's thread, after each batch: wakes the loop if it waits and may go."""
        with self.lock:
            waiter = self.waiter
            if waiter is None or not self.wanted():
                return
            self.waiter = None
        self.loop.call_soon_threadsafe(_resolve, waiter)

    async def _until(self, condition: Callable[[], bool]) -> None:
        while True:
            with self.lock:
                if condition():
                    return
                self.waiter = self.loop.create_future()
                self.wanted = condition
                waiter = self.waiter
            await waiter

    async def room(self) -> None:
        """Returns when there is room for another batch; raises what a lane raised."""
        await self._until(self._room)
        if (error := self._error()) is not None:
            raise error

    async def end(self) -> None:
        """Returns when every batch went through every lane; raises what a lane raised."""
        await self._until(self._ended)
        if (error := self._error()) is not None:
            raise error

    async def stop(self) -> None:
        """No lane takes another batch; returns when none is at work any more."""
        for lane in self.lanes:
            lane.stop()
        await self._until(self._ended)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def pump(
    chunks: AsyncIterable[bytes],
    sink: HashingWriter,
    max_size: int | None = None,
) -> int:
    """Feed a byte stream through the sink's lanes in batches of about BATCH_BYTES, each
    lane on a thread while the loop receives what follows. Returns the byte count;
    raises StreamTooLarge as soon as the stream passes ``max_size``. Whatever happens,
    no lane is at work when this returns (the caller may close the file)."""
    lanes = _Lanes(sink.lanes())
    batch: list[bytes] = []
    batched = 0
    total = 0
    try:
        async for chunk in chunks:
            total += len(chunk)
            if max_size is not None and total > max_size:
                raise StreamTooLarge(f"more than {max_size} bytes")
            batch.append(chunk)
            batched += len(chunk)
            if batched >= BATCH_BYTES:
                await lanes.room()
                lanes.push(batch)
                batch, batched = [], 0
        if batch:
            await lanes.room()
            lanes.push(batch)
        await lanes.end()
    except BaseException:
        # The lanes finish the batch in hand before the caller may close the file, even
        # if this task is cancelled again meanwhile.
        stopping = asyncio.ensure_future(lanes.stop())
        while not stopping.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(stopping)
        raise
    return total
