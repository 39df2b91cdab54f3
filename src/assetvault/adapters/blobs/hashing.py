"""One pass over each byte of a stream: received on the event loop, then hashed (SHA-256
for the blob key, SHA-1 for ``dam:sha1``) and written on threads while the loop receives
what follows.

``pump`` gathers a stream's chunks into batches of about ``FLUSH_BYTES`` and hands each
to a blocking sink on a thread, one batch in flight while the next is received; the
chunks are passed on as they came, never joined into a copy. ``HashingWriter`` is such a
sink: it writes a batch to a file descriptor with ``writev`` while two other threads
hash it, one per digest (hashlib releases the GIL on buffers this large, so the three
run side by side on as many cores as there are), and starts the kernel's write-back of
what it wrote, so the fsync at the end has little left to wait for.

Any code that stores a stream it hashes uses this: the local blob store's ``put`` and
its upload staging, and through ``put`` the imports from URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import hashlib
import os
from collections.abc import AsyncIterable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

FLUSH_BYTES = 4 * 1024 * 1024
IOV_MAX = 1024

# One thread per digest of each batch in flight; a few uploads at once share them.
_HASHERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="blob-hash")


def _new_pool_after_fork() -> None:
    """A forked process (serve forks its API processes) inherits the pool's bookkeeping
    but none of its threads: the pool would count idle threads that do not exist and
    queue work nobody runs. The child gets a pool of its own."""
    global _HASHERS
    _HASHERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="blob-hash")


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
    """A ``pump`` sink: writes each batch to ``fd`` at its current position while
    ``hashes`` (if any) takes it in on two other threads."""

    def __init__(self, fd: int, hashes: Hashes | None = None) -> None:
        self.fd = fd
        self.hashes = hashes

    def __call__(self, batch: list[bytes]) -> None:
        wait = self.hashes.start_batch(batch) if self.hashes is not None else None
        try:
            writev_all(self.fd, batch)
            length = sum(len(c) for c in batch)
            # Where the batch went: also right for a file opened to append.
            end = os.lseek(self.fd, 0, os.SEEK_CUR)
            start_writeback(self.fd, end - length, length)
        finally:
            if wait is not None:
                wait()


async def pump(
    chunks: AsyncIterable[bytes],
    sink: Callable[[list[bytes]], None],
    max_size: int | None = None,
) -> int:
    """Feed a byte stream to a blocking ``sink`` in batches of about FLUSH_BYTES on a
    thread, one batch in flight while the next is received. Returns the byte count;
    raises StreamTooLarge as soon as the stream passes ``max_size``."""
    batch: list[bytes] = []
    batched = 0
    total = 0
    pending: asyncio.Future[None] | None = None
    try:
        async for chunk in chunks:
            total += len(chunk)
            if max_size is not None and total > max_size:
                raise StreamTooLarge(f"more than {max_size} bytes")
            batch.append(chunk)
            batched += len(chunk)
            if batched >= FLUSH_BYTES:
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(asyncio.to_thread(sink, batch))
                batch, batched = [], 0
        if pending is not None:
            await pending
            pending = None
        if batch:
            await asyncio.to_thread(sink, batch)
    finally:
        if pending is not None:
            with contextlib.suppress(BaseException):
                await pending
    return total
